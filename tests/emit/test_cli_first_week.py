"""A new user's first week: each mistake a newcomer makes gets a message that points at the
fix, and nothing writes where the user did not ask. Every test runs the real command (the
installed `pikkugen`, `python -m pikku_queue`, `pytest` itself) in a subprocess, on a copy of
the `basic` case."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from golden import CASES

PIKKUGEN = str(Path(sys.executable).parent / "pikkugen")


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NO_COLOR", "FORCE_COLOR", "PIKKU_QUEUE_URL", "PYTHONPATH")
    }
    env.update(extra)
    return env


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIKKUGEN, *args], cwd=cwd, capture_output=True, text=True, env=_env(**env), timeout=120
    )


def python(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=_env(**env),
        timeout=180,
    )


@pytest.fixture
def basic(tmp_path: Path) -> Path:
    project = tmp_path / "basic"
    shutil.copytree(CASES / "basic", project, ignore=shutil.ignore_patterns("expected", "use_*"))
    return project


@pytest.fixture
def scanned(basic: Path) -> Path:
    done = run(basic, "scan", "--no-cache")
    assert done.returncode == 0, done.stderr
    return basic


# -- the memory_backend fixture is the default backend ----------------------------------------

USER_TESTS = """
from typing import Any

from basic_app.models import Email
from basic_gen.client import enqueue_cleanup_task, enqueue_email_queue_sync, queue_job_sync
from pikku_queue import JobContext
from pikku_queue.testing import run_queue_processor


def test_the_typed_client_and_queue_job_use_the_fixture(memory_backend: Any) -> None:
    handle = enqueue_email_queue_sync(Email(to="a@b.c", subject="s", body="b"))
    assert handle.backend is memory_backend
    assert queue_job_sync("cleanup-task", {}).backend is memory_backend


async def fan_out(ctx: JobContext, data: dict[str, Any]) -> str:
    return (await enqueue_cleanup_task({})).backend.url


def test_a_processor_under_run_queue_processor_enqueues_in_memory() -> None:
    assert run_queue_processor(fan_out, {}).output.startswith("memory://")
"""


@pytest.mark.slow
def test_the_memory_backend_fixture_keeps_tests_off_the_project_queue(scanned: Path) -> None:
    (scanned / "tests").mkdir()
    (scanned / "tests" / "conftest.py").write_text('pytest_plugins = ["pikku_queue.testing"]\n')
    (scanned / "tests" / "test_jobs.py").write_text(USER_TESTS)
    done = python(
        scanned, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", PYTHONPATH="src"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert not (scanned / ".pikku").exists()
    assert not list(scanned.rglob("*.db"))


@pytest.mark.slow
def test_the_memory_backend_fixture_leaves_an_existing_queue_untouched(scanned: Path) -> None:
    sent = run(scanned, "enqueue", "cleanup-task")
    assert sent.returncode == 0, sent.stderr
    folder = scanned / ".pikku"
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()}
    assert "queue.db" in before
    (scanned / "tests").mkdir()
    (scanned / "tests" / "conftest.py").write_text('pytest_plugins = ["pikku_queue.testing"]\n')
    (scanned / "tests" / "test_jobs.py").write_text(USER_TESTS)
    done = python(
        scanned, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", PYTHONPATH="src"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()}
    assert after == before


# -- sync paths carry no spurious "no running event loop" ------------------------------------

SYNC_FAILURES = """
import traceback

from pydantic import TypeAdapter

from pikku_queue.client import TypedQueue
from pikku_queue.testing import run_queue_processor


async def broken(data: dict) -> None:
    raise ValueError("the processor broke")


try:
    run_queue_processor(broken, {})
except AssertionError:
    traceback.print_exc()
import sys
print("=" * 20, file=sys.stderr, flush=True)
queue = TypedQueue("q", TypeAdapter(dict), TypeAdapter(dict))
queue.enqueue_sync({}, backend="redis://127.0.0.1:1/0")
"""


def test_sync_paths_have_no_spurious_exception_chain(tmp_path: Path) -> None:
    pytest.importorskip("redis")
    (tmp_path / "sync_failures.py").write_text(SYNC_FAILURES)
    done = python(tmp_path, "sync_failures.py")
    assert done.returncode == 1
    processor, _, connection = done.stderr.partition("=" * 20)
    assert "ValueError: the processor broke" in done.stderr
    assert "Traceback" in connection and "127.0.0.1" in connection, done.stderr
    for text in (processor, connection):
        assert "During handling of the above exception" not in text, text
        assert "no running event loop" not in text, text


# -- generate-time commands refuse outside a project ------------------------------------------


@pytest.mark.parametrize("command", ["scan", "list", "watch"])
def test_scan_list_and_watch_refuse_outside_a_project(tmp_path: Path, command: str) -> None:
    (tmp_path / "jobs.py").write_text(
        "from pikku_queue import queue_processor\n\n\n"
        '@queue_processor("q")\nasync def f(data: int) -> int:\n    return data\n'
    )
    refused = run(tmp_path, command)
    assert refused.returncode == 2
    worker = run(tmp_path, "worker")
    assert worker.returncode == 2
    message = f"error: no pyproject.toml with a [tool.pikkugen] table in {tmp_path} or any folder"
    assert refused.stderr.startswith(message), refused.stderr
    assert worker.stderr.splitlines()[0] == refused.stderr.splitlines()[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.py"]


def test_explicit_paths_still_scan_outside_a_project(tmp_path: Path) -> None:
    (tmp_path / "jobs.py").write_text(
        "from pikku_queue import queue_processor\n\n\n"
        '@queue_processor("q")\nasync def f(data: int) -> int:\n    return data\n'
    )
    listed = run(tmp_path, "list", "--no-cache", "jobs.py")
    assert listed.returncode == 0, listed.stderr
    assert "1 queue processor(s)" in listed.stdout


# -- a project of one's own, scanned --------------------------------------------------------

MYAPP_JOBS = """
from pydantic import BaseModel

from pikku_queue import JobContext, NonRetryableError, queue_processor


class Invoice(BaseModel):
    number: int
    email: str


@queue_processor("invoices", dead_letter_queue="invoices-dlq")
async def send_invoice(ctx: JobContext, data: Invoice) -> str:
    if data.number < 0:
        raise NonRetryableError("negative invoice number")
    return f"sent {data.number}"
"""


@pytest.fixture
def myapp(tmp_path: Path) -> Path:
    project = tmp_path / "myapp"
    package = project / "src" / "myapp"
    package.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[project]\nname = "myapp"\nversion = "0.1.0"\n\n[tool.pikkugen]\n'
    )
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text(MYAPP_JOBS)
    done = run(project, "scan")
    assert done.returncode == 0, done.stderr
    return project


def _dead_letter(project: Path) -> str:
    """Enqueue a job that dead-letters, run a burst worker; the job id."""
    sent = run(project, "enqueue", "invoices", "--data", '{"number": -1, "email": "a@b.c"}')
    assert sent.returncode == 0, sent.stderr
    worker = run(project, "worker", "--burst")
    assert "dead_lettered=1" in worker.stdout, worker.stdout + worker.stderr
    return sent.stdout.strip()


# -- dlq: typos and wrong ids are errors -----------------------------------------------------


def test_dlq_refuses_an_unknown_queue_with_a_did_you_mean(myapp: Path) -> None:
    for command in ("list", "replay"):
        typo = run(myapp, "dlq", command, "invoice")
        assert typo.returncode == 2, typo.stdout + typo.stderr
        assert "no queue or dead-letter queue 'invoice'" in typo.stderr
        assert "did you mean 'invoices'?" in typo.stderr
    assert run(myapp, "dlq", "list", "invoices-dlq").returncode == 0


def test_dlq_replay_refuses_an_id_that_matches_nothing(myapp: Path) -> None:
    _dead_letter(myapp)
    nope = run(myapp, "dlq", "replay", "invoices", "--id", "nope")
    assert nope.returncode == 2
    assert "no dead-letter record 'nope' in invoices-dlq: --id takes a record id" in nope.stderr
    assert "replayed" not in nope.stdout
    assert "1 record(s)" in run(myapp, "dlq", "list", "invoices").stderr


def test_dlq_replay_recognises_a_job_id(myapp: Path) -> None:
    job_id = _dead_letter(myapp)
    listed = run(myapp, "dlq", "list", "invoices")
    assert f"invoices/{job_id}" in listed.stdout
    replayed = run(myapp, "dlq", "replay", "invoices", "--id", job_id)
    assert replayed.returncode == 0, replayed.stderr
    assert f"note: {job_id!r} is a job id" in replayed.stderr
    assert "replayed 1 job(s) from invoices-dlq" in replayed.stdout
    assert "0 record(s)" in run(myapp, "dlq", "list", "invoices").stderr


# -- a processor without a payload parameter -------------------------------------------------


def test_a_processor_without_a_payload_parameter_is_named_so(myapp: Path) -> None:
    jobs = myapp / "src" / "myapp" / "nightly.py"
    jobs.write_text(
        "from pikku_queue import JobContext, queue_processor\n\n\n"
        '@queue_processor("nightly")\n'
        "async def nightly(ctx: JobContext) -> None:\n"
        "    return None\n"
    )
    scanned = run(myapp, "scan")
    assert scanned.returncode == 2
    assert (
        "src/myapp/nightly.py:5:19: error[PK305]: missing payload parameter: `nightly` takes "
        "only the job context `ctx`" in scanned.stderr
    ), scanned.stderr
    assert "hint: add the payload after it" in scanned.stderr
    assert "PK702" not in scanned.stderr and "pydantic-core" not in scanned.stderr


# -- small things people notice --------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def in_terminal(cwd: Path, *args: str, **env: str) -> str:
    """Output of `pikkugen ARGS` with stdout and stderr on a pseudo-terminal, ANSI removed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [PIKKUGEN, *args], cwd=cwd, stdout=follower, stderr=follower, env=_env(**env)
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=120) == 0, b"".join(chunks).decode()
    os.close(leader)
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


def test_short_version_flag(tmp_path: Path) -> None:
    short, long = run(tmp_path, "-V"), run(tmp_path, "--version")
    assert short.returncode == 0, short.stderr
    assert short.stdout == long.stdout and short.stdout.startswith("pikkugen ")


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        (("enqueue",), "pikkugen enqueue [OPTIONS] QUEUE"),
        (("dlq", "list"), "pikkugen dlq list [OPTIONS] QUEUE"),
        (("dlq", "replay"), "pikkugen dlq replay [OPTIONS] QUEUE"),
        (("client",), "pikkugen client [OPTIONS] SCHEMAS_DIR"),
        (("scan",), "pikkugen scan [OPTIONS] [PATHS]..."),
    ],
)
def test_usage_lines_name_arguments_as_click_does(
    tmp_path: Path, command: tuple[str, ...], usage: str
) -> None:
    shown = run(tmp_path, *command, "--help", COLUMNS="120")
    assert shown.returncode == 0, shown.stderr
    assert f"Usage: {usage}" in shown.stdout, shown.stdout
    assert "{" not in shown.stdout.split("Usage:", 1)[1].splitlines()[0]


def test_enqueue_help_says_what_data_defaults_to(tmp_path: Path) -> None:
    shown = run(tmp_path, "enqueue", "--help", COLUMNS="200")
    assert re.search(
        r"--data\s+JSON\s+The payload as JSON \(default: \{\}, an empty object", shown.stdout
    ), shown.stdout


@pytest.mark.parametrize("columns", [120, 130, 160, 220])
def test_list_never_cuts_an_option_or_a_name(basic: Path, columns: int) -> None:
    shown = in_terminal(basic, "list", "--no-cache", COLUMNS=str(columns))
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= columns, shown
    assert any('retry_options.backoff="exponential",' in line for line in lines), shown
    assert any("basic_app.jobs.process_email" in line for line in lines), shown
    assert "…" not in shown


LONG_QUEUE = "nightly-reconciliation-of-every-invoice"


@pytest.mark.parametrize("columns", [120, 220])
def test_the_final_stats_keep_long_queue_names_whole(myapp: Path, columns: int) -> None:
    (myapp / "src" / "myapp" / "nightly.py").write_text(
        "from typing import Any\n\nfrom pikku_queue import queue_processor\n\n\n"
        f'@queue_processor("{LONG_QUEUE}")\n'
        "async def nightly(data: dict[str, Any]) -> None:\n    return None\n"
    )
    assert run(myapp, "scan").returncode == 0
    assert run(myapp, "enqueue", LONG_QUEUE).returncode == 0
    shown = in_terminal(myapp, "worker", "--burst", COLUMNS=str(columns))
    if columns >= 220:  # wide enough: the table, the name whole in its row
        assert "queue stats" in shown
        assert re.search(rf"│ {LONG_QUEUE} +│ +0 │", shown), shown
    else:  # too narrow for the table: one line per queue, the name whole
        assert f"stats {LONG_QUEUE}: waiting=0" in shown, shown


def test_shell_completion_completes_queue_names(myapp: Path) -> None:
    def complete(words: str) -> list[str]:
        cword = str(len(words.split()) - (0 if words.endswith(" ") else 1))
        done = run(myapp, _PIKKUGEN_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=cword)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("pikkugen enqueue inv") == ["invoices"]
    assert complete("pikkugen dlq list inv") == ["invoices", "invoices-dlq"]
    assert complete("pikkugen dlq replay invoices-") == ["invoices-dlq"]
    assert complete("pikkugen worker --queues ") == ["invoices"]


def test_a_sqlite_url_under_missing_folders_is_refused(myapp: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent-dir"
    url = f"sqlite:///{missing.as_posix()}/x/q.db"
    for command in (
        ("enqueue", "invoices", "--data", '{"number": 1, "email": "a"}'),
        ("worker", "--burst"),
        ("dlq", "list", "invoices"),
    ):
        refused = run(myapp, *command, "--backend", url)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert (
            f"cannot open the SQLite database {missing}/x/q.db: neither its folder"
            in refused.stderr
        )
        assert "Traceback" not in refused.stderr
    assert not missing.exists()
    one_level = tmp_path / "queues"
    made = run(
        myapp, "dlq", "list", "invoices", "--backend", f"sqlite:///{one_level.as_posix()}/q.db"
    )
    assert made.returncode == 0, made.stderr
    assert (one_level / "q.db").is_file()


def test_an_invalid_log_level_is_one_error_line(myapp: Path) -> None:
    for done in (
        run(myapp, "worker", "--burst", "--log-level", "loud"),
        python(
            myapp,
            "-m",
            "pikku_queue",
            "worker",
            "--registry",
            "pikku_generated",
            "--burst",
            "--log-level",
            "loud",
            PYTHONPATH="src",
        ),
    ):
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.strip() == (
            "error: --log-level 'loud' is not a logging level: use one of DEBUG, INFO, WARNING,"
            " ERROR, CRITICAL (any case)"
        )
    assert run(myapp, "worker", "--burst", "--log-level", "debug").returncode == 0


def test_dlq_still_reads_a_dead_letter_queue_no_processor_declares_any_more(myapp: Path) -> None:
    _dead_letter(myapp)
    jobs = myapp / "src" / "myapp" / "jobs.py"
    jobs.write_text(jobs.read_text().replace(', dead_letter_queue="invoices-dlq"', ""))
    assert run(myapp, "scan").returncode == 0
    listed = run(myapp, "dlq", "list", "invoices-dlq")
    assert listed.returncode == 0, listed.stderr
    assert "1 record(s) in invoices-dlq" in listed.stderr
    assert run(myapp, "dlq", "list", "invoices-dlx").returncode == 2


# -- messages that point at the fix ----------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def test_queue_job_on_a_queue_added_since_the_scan_says_run_scan(myapp: Path) -> None:
    script = (
        "from pikku_generated.client import queue_job_sync\n"
        "try:\n    queue_job_sync('reminders', {})\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    (myapp / "src" / "myapp" / "reminders.py").write_text(
        "from pikku_queue import queue_processor\n\n\n"
        '@queue_processor("reminders")\nasync def remind(data: dict) -> None:\n    return None\n'
    )
    added = python(myapp, "-c", script, PYTHONPATH="src")
    assert added.stdout.startswith("UnknownQueueError no queue 'reminders'; known: invoices")
    assert "run `pikkugen scan`" in added.stdout, added.stdout
    assert "import the generated client" not in added.stdout
    jobs = myapp / "src" / "myapp" / "jobs.py"
    jobs.write_text(jobs.read_text() + "\n# edited\n")
    edited = python(myapp, "-c", script, PYTHONPATH="src")
    assert "the generated registry is older than src/myapp/jobs.py: run `pikkugen scan`" in (
        edited.stdout
    )


def test_a_registry_under_src_says_how_to_make_it_importable(myapp: Path) -> None:
    done = python(myapp, "-m", "pikku_queue", "worker", "--registry", "pikku_generated", "--burst")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: cannot import the generated registry 'pikku_generated.registry': it is in src,"
        " which is not importable from here; run with PYTHONPATH=src, or install your project"
        " into this environment (`pip install -e .`)"
    )
    fixed = python(
        myapp,
        "-m",
        "pikku_queue",
        "worker",
        "--registry",
        "pikku_generated",
        "--burst",
        PYTHONPATH="src",
    )
    assert fixed.returncode == 0, fixed.stderr


def _direct_url(name: str) -> tuple[str, bool]:
    from importlib.metadata import distribution

    raw = distribution(name).read_text("direct_url.json")
    assert raw is not None, f"{name} was not installed from a folder in this environment"
    info = json.loads(raw)
    return info["url"].removeprefix("file://"), bool(info.get("dir_info", {}).get("editable"))


def test_install_hints_name_the_checkout_pikkugen_came_from(myapp: Path, tmp_path: Path) -> None:
    # Hide the optional packages, as in an environment without the extras.
    hidden = tmp_path / "hidden"
    for package in ("prometheus_client", "starlette"):
        (hidden / package).mkdir(parents=True)
        (hidden / package / "__init__.py").write_text(f"raise ImportError('no {package} here')\n")
    path, editable = _direct_url("pikku-queue")
    metrics = run(myapp, "worker", "--burst", "--metrics-port", "0", PYTHONPATH=str(hidden))
    assert metrics.returncode == 2, metrics.stdout + metrics.stderr
    assert f"pip install {'-e ' if editable else ''}'{path}[metrics]'" in metrics.stderr
    assert "pikkugen[metrics]" not in metrics.stderr
    path, editable = _direct_url("pikkugen")
    monitor = run(myapp, "monitor", "--port", "0", PYTHONPATH=str(hidden))
    assert monitor.returncode == 2, monitor.stdout + monitor.stderr
    assert f"pip install {'-e ' if editable else ''}'{path}[monitor]'" in monitor.stderr


def test_install_hints_for_an_index_install_and_a_folder(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for name, direct in (
        ("fromindex", None),
        ("fromfolder", {"url": "file:///opt/src/x", "dir_info": {}}),
    ):
        info = site / f"{name}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        if direct is not None:
            (info / "direct_url.json").write_text(json.dumps(direct))
    shown = python(
        tmp_path,
        "-c",
        "from pikku_queue.install import install_hint\n"
        "print(install_hint('fromindex', 'sqs'))\nprint(install_hint('fromfolder', 'sqs'))\n",
        PYTHONPATH=str(site),
    )
    assert shown.stdout.splitlines() == [
        "pip install 'fromindex[sqs]'",
        "pip install '/opt/src/x[sqs]'",
    ], shown.stderr


def test_enqueue_many_names_the_item_and_the_field(myapp: Path) -> None:
    script = (
        "from pikku_generated.client import QUEUE_INVOICES\n"
        "from pikku_queue import PayloadValidationError\nfrom pikku_queue.client import run_sync\n"
        "items = [{'number': 1, 'email': 'a'}, {'number': 'two'}]\n"
        "try:\n    run_sync(QUEUE_INVOICES.enqueue_many(items, backend='memory://'))\n"
        "except PayloadValidationError as exc:\n    print(exc.fields)\n    print(exc)\n"
    )
    done = python(myapp, "-c", script, PYTHONPATH="src")
    assert done.returncode == 0, done.stderr
    fields, message = done.stdout.split("\n", 1)
    assert fields == "('[1].number', '[1].email')"
    assert message.startswith("invalid payload for queue 'invoices': item 1: 2 validation errors")
    assert "For further information visit" not in done.stdout


def test_validation_messages_drop_pydantics_url_line(myapp: Path) -> None:
    refused = run(myapp, "enqueue", "invoices", "--data", '{"number": "x"}')
    assert refused.returncode == 2
    assert "email\n  Field required" in refused.stderr, refused.stderr
    assert "For further information visit" not in refused.stderr


def test_the_demo_names_the_fields_refused_at_enqueue(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shutil.copytree(ROOT / "examples" / "shop", shop)
    done = python(shop, "-m", "shop.demo", PYTHONPATH="src", PIKKU_QUEUE_URL="memory://")
    assert done.returncode == 0, done.stderr
    assert "refused at enqueue: 2 validation errors for ImageJob (width, height)" in done.stdout


@pytest.mark.parametrize("name", ["requirements.txt", "template.yaml"])
def test_the_sam_files_say_how_to_supply_the_runtime_wheel(name: str) -> None:
    text = (ROOT / "examples" / "shop" / "src" / "shop" / "generated" / name).read_text()
    header = text.split("\n\n", 1)[0] if name == "template.yaml" else text
    assert "pip wheel --no-deps -w wheels <pikkugen checkout>/runtime" in header
    assert 'PIP_FIND_LINKS="$PWD/wheels" sam build --manifest requirements.txt' in header


def test_processors_that_are_not_importable_say_how_to_make_them_so(tmp_path: Path) -> None:
    project = tmp_path / "split"
    (project / "src" / "myapp").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[tool.pikkugen]\npaths = ["src"]\nout = "gen"\n')
    (project / "src" / "myapp" / "__init__.py").write_text("")
    (project / "src" / "myapp" / "jobs.py").write_text(MYAPP_JOBS)
    assert run(project, "scan").returncode == 0
    done = python(project, "-m", "pikku_queue", "worker", "--registry", "gen", "--burst")
    assert done.returncode == 2
    assert "cannot import 'myapp.jobs.send_invoice': no module 'myapp' on the import path" in (
        done.stderr
    )
    assert "PYTHONPATH=src" in done.stderr and "pip install -e ." in done.stderr
