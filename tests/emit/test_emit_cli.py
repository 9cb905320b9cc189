"""The generate-time commands through the real typer app: exit codes 0 / 1 / 2, the IR's JSON
shape, `--check` diffs, and the standalone client."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from golden import CASES
from pikku_queue.options import ProcessorOptions
from pikkugen.cli import app
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture
def basic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "basic"
    shutil.copytree(CASES / "basic", project, ignore=shutil.ignore_patterns("expected", "use_*"))
    monkeypatch.chdir(project)
    return project


def test_scan_then_check_then_edit_then_check(basic: Path) -> None:
    assert runner.invoke(app, ["scan", "--check", "--no-cache"]).exit_code == 1  # nothing yet
    written = runner.invoke(app, ["scan", "--no-cache"])
    assert written.exit_code == 0, written.stderr
    assert "2 queue(s)" in written.stdout
    clean = runner.invoke(app, ["scan", "--check", "--no-cache"])
    assert (clean.exit_code, clean.stdout) == (0, "")
    jobs = basic / "src" / "basic_app" / "jobs.py"
    jobs.write_text(jobs.read_text().replace("concurrency=5", "concurrency=6"))
    stale = runner.invoke(app, ["scan", "--check", "--no-cache"])
    assert stale.exit_code == 1
    assert '-                    "concurrency": 5,\n+                    "concurrency": 6,' in (
        stale.stdout
    )
    assert "are stale" in stale.stderr


def test_errors_exit_2_and_print_positions(basic: Path) -> None:
    jobs = basic / "src" / "basic_app" / "jobs.py"
    jobs.write_text(jobs.read_text().replace('"cleanup-task"', '"cleanup task"'))
    result = runner.invoke(app, ["scan", "--no-cache"])
    assert result.exit_code == 2
    assert "src/basic_app/jobs.py:18:18: error[PK103]" in result.stderr
    assert not (basic / "src" / "basic_gen").exists()


def test_list_json_has_exactly_the_documented_shape(basic: Path) -> None:
    result = runner.invoke(app, ["list", "--format", "json", "--no-cache", "--runtime", "sqs"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == ["processors", "diagnostics"]
    names = [p["name"] for p in data["processors"]]
    assert names == sorted(names) == ["cleanup-task", "email-queue"]
    email = data["processors"][1]
    assert list(email) == ["name", "function", "input", "output", "location", "options"]
    assert email["function"] == "basic_app.jobs.process_email"
    assert (email["input"], email["output"]) == ("basic_app.models.Email", "basic_app.models.Sent")
    assert email["location"] == {"path": "src/basic_app/jobs.py", "line": 8, "column": 2}
    assert email["options"]["retry_options"] == {
        "attempts": 3,
        "backoff": "exponential",
        "delay": 1000,
        "max_delay": None,
        "factor": 2.0,
        "jitter": 0.0,
    }
    assert email["options"]["batch"] is None and email["options"]["priority"] is None
    # every option, defaults filled in (the runtime's model decides which options exist)
    assert list(email["options"]) == list(ProcessorOptions.model_fields)
    assert data["diagnostics"] == []


def test_list_json_diagnostics_have_the_documented_shape(basic: Path) -> None:
    jobs = basic / "src" / "basic_app" / "jobs.py"
    jobs.write_text(jobs.read_text().replace("concurrency=5,", "concurrency=5, priority=4,"))
    result = runner.invoke(app, ["list", "--format", "json", "--no-cache", "--runtime", "sqs"])
    assert result.exit_code == 0, result.stderr
    (warning,) = [d for d in json.loads(result.stdout)["diagnostics"] if d["code"] == "PK801"]
    assert list(warning) == ["level", "code", "message", "hint", "path", "line", "column"]
    assert (warning["level"], warning["path"]) == ("warning", "src/basic_app/jobs.py")
    assert isinstance(warning["line"], int) and isinstance(warning["column"], int)


def test_list_table_and_its_diagnostics(basic: Path) -> None:
    jobs = basic / "src" / "basic_app" / "jobs.py"
    jobs.write_text(jobs.read_text().replace("concurrency=5,", "concurrency=5, priority=4,"))
    result = runner.invoke(app, ["list", "--no-cache", "--runtime", "sqs"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    assert "email-queue" in result.stdout and "priority=4" in result.stdout
    assert 'retry_options.backoff="exponential"' in result.stdout
    assert "dict[str, typing.Any] ->" in result.stdout  # brackets are text, not markup
    assert "warning[PK801]" in result.stderr
    strict = runner.invoke(app, ["list", "--no-cache", "--runtime", "sqs", "--strict"])
    assert strict.exit_code == 2 and "error[PK801]" in strict.stderr


def test_a_bad_config_exits_2_naming_the_key(basic: Path) -> None:
    (basic / "pyproject.toml").write_text('[tool.pikkugen]\nruntime = ["sqs"]\n')
    result = runner.invoke(app, ["scan"])
    assert result.exit_code == 2
    assert "pyproject.toml: error[PK601]: unknown key 'runtime'" in result.stderr
    assert "did you mean 'runtimes'?" in result.stderr


def test_standalone_client_from_the_schemas_folder(basic: Path) -> None:
    schemas = CASES / "basic" / "expected" / "schemas"
    out = basic / "other_service" / "queues_client"
    result = runner.invoke(app, ["client", str(schemas), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (out / "models").iterdir()) == [
        "__init__.py",
        "q_cleanup_task.py",
        "q_email_queue.py",
    ]
    client = (out / "client.py").read_text()
    assert "from queues_client.models.q_email_queue import (\n    EmailQueueInput," in client
    assert "basic_app" not in client  # the worker's code base is not imported
    models = (out / "models" / "q_email_queue.py").read_text()
    assert "class Email(BaseModel):" in models and "EmailQueueInput = Email" in models
    again = runner.invoke(app, ["client", str(schemas), "--out", str(out), "--check"])
    assert (again.exit_code, again.stdout) == (0, "")


def test_standalone_client_refuses_a_folder_without_an_index(basic: Path) -> None:
    result = runner.invoke(app, ["client", str(basic), "--out", "x"])
    assert result.exit_code == 2
    assert "error[PK401]: no queues.json" in result.stderr


def test_the_output_folder_is_not_scanned(basic: Path) -> None:
    assert runner.invoke(app, ["scan", "--no-cache"]).exit_code == 0
    # a generated file that declares a processor must not count as a second declaration
    stray = basic / "src" / "basic_gen" / "wiring.py"
    stray.write_text(
        "from pikku_queue import queue_processor\n\n\n"
        '@queue_processor("email-queue")\nasync def again(data: int) -> int:\n    return data\n'
    )
    result = runner.invoke(app, ["list", "--format", "json", "--no-cache"])
    assert result.exit_code == 0, result.stdout
    assert [p["name"] for p in json.loads(result.stdout)["processors"]] == [
        "cleanup-task",
        "email-queue",
    ]


def test_the_cache_lives_at_the_project_root_and_no_cache_writes_none(basic: Path) -> None:
    assert runner.invoke(app, ["scan", "--no-cache"]).exit_code == 0
    assert not (basic / ".pikkugen_cache").exists()
    # scanning a sub-folder: the cache still goes to the root (the pyproject's folder)
    inner = basic / "src" / "basic_app"
    result = runner.invoke(app, ["scan", str(inner.relative_to(basic))])
    assert result.exit_code == 0, result.stderr
    entries = list((basic / ".pikkugen_cache" / "scan").glob("*.json"))
    assert entries, "a scan with the cache on stores the summaries it parsed"
    assert (basic / ".pikkugen_cache" / ".gitignore").read_text().endswith("*\n")
    assert not (inner / ".pikkugen_cache").exists()
