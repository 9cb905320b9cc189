"""Writing and checking the output folder: the manifest owns files, stale ones go, nobody
else's file is overwritten, and `--check` shows the diff of what writing would do."""

from __future__ import annotations

from pathlib import Path

from emit_support import config_for, decl, scan_of
from pikkugen.config import Config
from pikkugen.emit.sinks import check_output, write_output
from pikkugen.generate import MANIFEST, GenerateResult, generate
from pikkugen.model import Diagnostic


def build(config: Config, *names: str) -> GenerateResult:
    return generate(config, scan=scan_of(*(decl(n) for n in names)))


def test_write_then_check_is_clean_and_rewrites_nothing(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    first = write_output(config, build(config, "a", "b"))
    assert "client.py" in first.written and MANIFEST in first.written
    stamps = {p: p.stat().st_mtime_ns for p in config.out.rglob("*") if p.is_file()}
    second = write_output(config, build(config, "a", "b"))
    assert second.written == () and second.deleted == ()
    assert {p: p.stat().st_mtime_ns for p in config.out.rglob("*") if p.is_file()} == stamps
    assert not check_output(config, build(config, "a", "b")).is_stale


def test_a_removed_queue_is_stale_for_check_and_deleted_on_write(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    write_output(config, build(config, "a", "b"))
    (config.out / "notes.txt").write_text("mine")  # not owned: left alone
    smaller = build(config, "a")
    report = check_output(config, smaller)
    assert "schemas/b.input.json" in report.stale and "client.py" in report.stale
    assert "--- a/src/gen/schemas/b.input.json\n+++ /dev/null\n" in report.diff
    assert '\n-    "b",\n' in report.diff  # the queue's TypedQueue leaves client.py
    written = write_output(config, smaller)
    assert set(written.deleted) == {"schemas/b.input.json", "schemas/b.output.json"}
    assert not (config.out / "schemas" / "b.input.json").exists()
    assert (config.out / "notes.txt").read_text() == "mine"
    assert not check_output(config, smaller).is_stale


def test_removing_every_queue_prunes_emptied_folders(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    write_output(config, build(config, "a"))
    write_output(config, build(config))
    assert sorted(p.name for p in (config.out / "schemas").iterdir()) == ["queues.json"]


def test_missing_files_show_as_new_in_the_diff(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    report = check_output(config, build(config, "a"))
    assert report.is_stale
    assert "--- /dev/null\n+++ b/src/gen/client.py\n" in report.diff


def test_a_file_pikkugen_did_not_write_is_never_overwritten(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    config.out.mkdir(parents=True)
    (config.out / "client.py").write_text("# my own hand-written client\n")
    report = write_output(config, build(config, "a"))
    assert report.refused and report.written == ()
    (refusal,) = report.diagnostics
    assert refusal.code == "PK504" and "src/gen/client.py" in refusal.message
    assert (config.out / "client.py").read_text() == "# my own hand-written client\n"


def test_nothing_is_written_when_there_are_errors(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    result = build(config, "a")
    error = Diagnostic(level="error", code="PK999", message="boom")
    broken = GenerateResult(files=result.files, diagnostics=(error,), scan=result.scan)
    assert write_output(config, broken).refused
    assert not config.out.exists()


def test_a_damaged_manifest_deletes_nothing(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    write_output(config, build(config, "a"))
    (config.out / MANIFEST).write_text('{"files": ["../../../etc/passwd", "client.py"')
    report = write_output(config, build(config))
    assert report.deleted == ()
    assert (config.out / "schemas" / "a.input.json").exists()


def test_an_out_that_cannot_be_written_is_a_diagnostic(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    config.out.parent.mkdir(parents=True)
    config.out.write_text("a file where the package folder should be\n")
    report = write_output(config, build(config, "a"))
    assert report.refused and report.written == ()
    (failure,) = report.diagnostics
    assert (failure.code, failure.level, failure.path) == ("PK507", "error", "src/gen")
    assert config.out.read_text() == "a file where the package folder should be\n"
