"""`sqs_lambda.py`: the Lambda handler module the SAM template's functions point at.

All the behaviour lives in `pikku_queue.adapters.sqs.lambda_handler`; the generated module only binds it to
this package's registry, so regenerating never changes how records are handled.
"""

from __future__ import annotations

from pikkugen.emit.base import EmitInput, header, render

MODULE = "sqs_lambda"


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
    return {f"{MODULE}.py": text}
