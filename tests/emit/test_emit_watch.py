"""`pikkugen watch`: a change to a scanned file regenerates the package; the generator's own
writes do not trigger another round; a broken pyproject.toml is reported, not fatal."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from golden import CASES
from pikkugen.config import load_config
from pikkugen.emit.watch import Round, watch

WAIT_S = 60.0  # a ceiling for a slow machine, not a timing assertion


class Recorder:
    def __init__(self) -> None:
        self.rounds: list[Round] = []
        self.changed = threading.Condition()

    def __call__(self, round_: Round) -> None:
        with self.changed:
            self.rounds.append(round_)
            self.changed.notify_all()

    def wait_for(self, count: int) -> Round:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.rounds) >= count, timeout=WAIT_S)
            return self.rounds[count - 1]


def test_watch_regenerates_on_change(tmp_path: Path) -> None:
    project = tmp_path / "basic"
    shutil.copytree(CASES / "basic", project, ignore=shutil.ignore_patterns("expected", "use_*"))
    recorder = Recorder()
    stop = threading.Event()
    thread = threading.Thread(
        target=watch,
        args=(lambda: load_config(project, cache=False), recorder),
        kwargs={"stop_event": stop, "debounce_ms": 50},
        daemon=True,
    )
    thread.start()
    try:
        first = recorder.wait_for(1)
        assert first.result is not None and len(first.result.scan.processors) == 2
        client = project / "src" / "basic_gen" / "client.py"
        assert "enqueue_report" not in client.read_text()

        jobs = project / "src" / "basic_app" / "jobs.py"
        jobs.write_text(
            jobs.read_text()
            + '\n\n@queue_processor("report")\nasync def report(data: int) -> int:\n'
            "    return data\n"
        )
        second = recorder.wait_for(2)
        assert second.changed == (str(jobs),)
        assert second.report is not None and "client.py" in second.report.written
        assert "enqueue_report" in client.read_text()

        (project / "pyproject.toml").write_text("[tool.pikkugen]\nnot_a_key = 1\n")
        third = recorder.wait_for(3)
        assert third.error is not None and "not_a_key" in third.error.message
    finally:
        stop.set()
        thread.join(WAIT_S)
    assert not thread.is_alive()
    # our own writes (client.py, schemas, manifest) never started a round of their own
    assert all(
        all("basic_gen" not in path for path in round_.changed) for round_ in recorder.rounds
    )


def test_the_cli_loader_reports_a_config_broken_while_watching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `watch` keeps going on ConfigError; the CLI's own loader once raised typer.Exit instead,
    # so a typo in pyproject.toml ended `pikkugen watch`.
    from pikkugen.commands.scan import watch_loader
    from pikkugen.config import ConfigError

    project = tmp_path / "basic"
    shutil.copytree(CASES / "basic", project, ignore=shutil.ignore_patterns("expected", "use_*"))
    monkeypatch.chdir(project)
    load = watch_loader(None, no_cache=True)
    assert load().root == project.resolve()
    (project / "pyproject.toml").write_text("[tool.pikkugen]\nnot_a_key = 1\n")
    with pytest.raises(ConfigError, match="not_a_key"):
        load()
