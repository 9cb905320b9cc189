"""The generated SAM template: cfn-lint passes on examples/shop's, and the numbers AWS cares
about (which cfn-lint does not check) hold for every function."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pikku_queue.options import ProcessorOptions
from pikkugen.config import Config, load_config
from pikkugen.emit.base import EmitInput
from pikkugen.generate import generate
from pikkugen.model import Location, ProcessorDecl, ScanResult, TypeRef
from pikkugen.runtimes.sqs import sam, sqs_lambda

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
#: The cfn-lint console script installed beside this interpreter (the dev extra).
CFN_LINT = Path(sys.executable).with_name("cfn-lint")


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Sub, !GetAtt, !Ref) read as {tag: value}."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    return {suffix: loader.construct_mapping(node)}  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _tagged)


def load(text: str) -> dict[str, Any]:
    return yaml.load(text, Loader=_CfnLoader)


def decl(name: str, **options: Any) -> ProcessorDecl:
    return ProcessorDecl(
        name=name,
        function=f"app.jobs.{name.replace('-', '_').replace('.', '_')}",
        module="app.jobs",
        input=TypeRef(annotation="int"),
        output=TypeRef(annotation="int"),
        is_async=True,
        location=Location(path="src/app/jobs.py", line=1, column=1),
        options=ProcessorOptions.model_validate(options),
    )


def emit(tmp_path: Path, *decls: ProcessorDecl) -> dict[str, str]:
    config = Config(
        root=tmp_path,
        paths=(tmp_path / "src",),
        out=tmp_path / "src" / "app" / "generated",
        out_package="app.generated",
        exclude=(),
        runtimes=("sqs",),
        services=None,
        strict=False,
        backend=None,
        cache=False,
    )
    data = EmitInput(config=config, scan=ScanResult(processors=decls), schemas={})
    return {**sam.emit(data), **sqs_lambda.emit(data)}


@pytest.fixture(scope="module")
def shop_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = generate(load_config(SHOP))
    assert not result.has_errors, result.diagnostics
    path = tmp_path_factory.mktemp("sam") / "template.yaml"
    path.write_text(result.files["template.yaml"], encoding="utf-8")
    return path


def test_cfn_lint_passes_on_the_shop_template(shop_template: Path) -> None:
    run = subprocess.run(
        [str(CFN_LINT), str(shop_template)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_cfn_lint_catches_a_broken_template(shop_template: Path, tmp_path: Path) -> None:
    """The lint above is not vacuous: the same template with an impossible value fails."""
    broken = tmp_path / "broken.yaml"
    text = shop_template.read_text(encoding="utf-8")
    broken.write_text(text.replace("VisibilityTimeout: 360", "VisibilityTimeout: 50000"))
    run = subprocess.run(
        [str(CFN_LINT), str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode != 0 and "43200" in run.stdout


def test_every_function_is_wired_the_way_aws_requires(shop_template: Path) -> None:
    template = load(shop_template.read_text(encoding="utf-8"))
    resources = template["Resources"]
    functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    assert len(functions) == 6
    for function in functions.values():
        props = function["Properties"]
        source = props["Events"]["Queue"]["Properties"]
        queue = resources[source["Queue"]["GetAtt"].split(".")[0]]["Properties"]
        assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert queue["VisibilityTimeout"] >= 6 * props["Timeout"]
        assert queue["RedrivePolicy"]["maxReceiveCount"] >= 5
        dlq_id = queue["RedrivePolicy"]["deadLetterTargetArn"]["GetAtt"].split(".")[0]
        assert resources[dlq_id]["Type"] == "AWS::SQS::Queue"
        assert props["Environment"]["Variables"]["PIKKU_QUEUE"]
        # it may enqueue (follow-up jobs, dead-letter records) and hide its own messages
        producer, own = props["Policies"]
        assert producer == {"Ref": "ProducerPolicy"}
        [statement] = own["Statement"]
        assert statement["Action"] == ["sqs:ChangeMessageVisibility"]
        assert statement["Resource"] == source["Queue"]
    assert template["Globals"]["Function"]["Handler"] == "shop.generated.sqs_lambda.handler"
    assert template["Globals"]["Function"]["CodeUri"] == "../.."
    image = functions["FunctionImageProcessing"]["Properties"]
    assert image["Timeout"] == 302  # 300 s processor timeout + a margin to settle
    assert image["Events"]["Queue"]["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 10}
    policy = resources["ProducerPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    queues = sorted(k for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue")
    assert sorted(r["GetAtt"].removesuffix(".Arn") for r in policy["Resource"]) == queues
    assert "sqs:SendMessage" in policy["Action"]
    email = resources["QueueEmailQueue"]["Properties"]
    assert email["RedrivePolicy"]["deadLetterTargetArn"] == {"GetAtt": "QueueEmailDlq.Arn"}
    text = shop_template.read_text(encoding="utf-8")
    assert "AKIA" not in text and "SecretAccessKey" not in text  # credentials never appear


def test_options_become_mapping_and_queue_settings(tmp_path: Path) -> None:
    files = emit(
        tmp_path,
        decl("bulk", batch={"size": 50, "timeout": 200}, retry_options={"attempts": 8}),
        decl("ordered.fifo", batch={"size": 50, "timeout": 2500}),
        decl("capped", max_concurrency=1, concurrency=25, timeout=2_000_000),
        decl("a-b", dead_letter_queue="shared-dlq"),
        decl("a_b", dead_letter_queue="shared-dlq"),
        decl("shared-dlq"),
    )
    template = load(files["template.yaml"])
    res = template["Resources"]

    def source(name: str) -> dict[str, Any]:
        return res[f"Function{name}"]["Properties"]["Events"]["Queue"]["Properties"]

    assert source("Bulk")["BatchSize"] == 50
    assert source("Bulk")["MaximumBatchingWindowInSeconds"] == 1  # > 10 records needs a window
    assert res["QueueBulk"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 8
    assert source("OrderedFifo")["BatchSize"] == 10  # FIFO mappings take at most 10
    assert source("OrderedFifo")["MaximumBatchingWindowInSeconds"] == 3
    assert res["QueueOrderedFifo"]["Properties"]["FifoQueue"] is True
    dlq = res["QueueOrderedDlqFifo"]["Properties"]
    assert dlq["FifoQueue"] is True and dlq["QueueName"] == {
        "Sub": "${QueuePrefix}ordered-dlq.fifo"
    }
    assert source("Capped")["ScalingConfig"] == {"MaximumConcurrency": 2}  # SQS's minimum
    assert source("Capped")["BatchSize"] == 10
    assert res["FunctionCapped"]["Properties"]["Timeout"] == 900  # Lambda's maximum
    assert res["QueueCapped"]["Properties"]["VisibilityTimeout"] == 5400
    # "a-b" and "a_b" would both be "AB": the ids stay distinct
    ids = [k for k in res if k.startswith("QueueAB")]
    assert len(ids) == 2
    # one shared DLQ, itself a processor's queue with its own DLQ
    assert [k for k in res if k.startswith("QueueSharedDlq")] == [
        "QueueSharedDlq",
        "QueueSharedDlqDlq",
    ]
    assert "RedrivePolicy" in res["QueueSharedDlq"]["Properties"]
    assert sam.default_dead_letter_queue("x" * 80) == "x" * 76 + "-dlq"


def test_output_is_deterministic(tmp_path: Path) -> None:
    decls = [decl("one"), decl("two", timeout=5_000)]
    first = emit(tmp_path, *decls)
    again = emit(tmp_path, *reversed(decls))
    assert first == again
    assert first["template.yaml"].startswith("# Code generated by pikkugen. DO NOT EDIT.\n")
    assert "from .registry import REGISTRY" in first["sqs_lambda.py"]
