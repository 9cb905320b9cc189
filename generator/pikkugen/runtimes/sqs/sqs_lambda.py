"""`sqs_lambda.py`: the Lambda handler module the SAM template's functions point at, and
`requirements.txt`, the bundle's one dependency: `pikku-queue[sqs]` at the generator's version
(`sam build --manifest requirements.txt` in the package's folder; the runtime, never the
generator, goes into the function).

All the behaviour lives in `pikku_queue.adapters.sqs.lambda_handler`; the generated module only binds it to
this package's registry, so regenerating never changes how records are handled.
"""

from __future__ import annotations

from pikkugen import __version__
from pikkugen.emit.base import EmitInput, header, render

MODULE = "sqs_lambda"
REQUIREMENTS = "requirements.txt"


def runtime_requirement() -> str:
    """The Lambda bundle's requirement: the runtime with the SQS extra, pinned to this
    generator's version (the distributions are released together)."""
    return f"pikku-queue[sqs]=={__version__}"


def handler_path(out_package: str) -> str:
    """The dotted `Handler:` of the SAM functions."""
    return f"{out_package}.{MODULE}.handler"


def emit(data: EmitInput) -> dict[str, str]:
    config = data.config
    text = render(
        "sqs/sqs_lambda.py.j2",
        header=header(config.relative_paths()),
        handler=handler_path(config.out_package),
    )
    requirements = (
        header(config.relative_paths())
        + "# The Lambda bundle's dependencies, for template.yaml's functions: in this folder run\n"
        + f"# `sam build --manifest {REQUIREMENTS}`. Your processors' own dependencies go in a\n"
        + "# requirements file of yours that includes this one (`-r`), passed as --manifest.\n"
        + "# While pikku-queue is not on PyPI, build its wheel from the pikkugen checkout first:\n"
        + "# `pip wheel --no-deps -w wheels <pikkugen checkout>/runtime`, then\n"
        + '# `PIP_FIND_LINKS="$PWD/wheels" sam build --manifest requirements.txt`.\n'
        + runtime_requirement()
        + "\n"
    )
    return {f"{MODULE}.py": text, REQUIREMENTS: requirements}
