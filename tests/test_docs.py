"""The documentation (README, docs/, CONTRIBUTING, CHANGELOG) is tested like code: it must
stay short where it is a front door, link what exists, and name only commands, flags, scripts
and files that are real."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
from pikkugen.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
#: Every Markdown file the user or a contributor reads.
DOCUMENTS = [
    README,
    ROOT / "CONTRIBUTING.md",
    ROOT / "CHANGELOG.md",
    ROOT / "runtime" / "README.md",
    *PAGES,
]
#: The marker that lets one fenced Python block be a fragment (keep these rare).
PARTIAL = "<!-- partial snippet -->"

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.S | re.M)
SHELL = {"sh", "shell", "bash", "console"}


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _blocks(path: Path, *languages: str) -> list[tuple[str, str]]:
    """(the text before the block, the block) of each fenced block in one of `languages`."""
    text = _text(path)
    return [
        (text[: match.start()], match.group(2))
        for match in FENCE.finditer(text)
        if match.group(1) in languages
    ]


def _prose(text: str) -> str:
    """The text without fenced blocks and inline code, where links and headings live."""
    text = FENCE.sub("", text)
    return re.sub(r"`[^`\n]*`", "", text)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lowercase, punctuation removed."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    return "".join(c for c in heading if c.isalnum() or c in " -_").replace(" ", "-")


@cache
def _anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in FENCE.sub("", _text(path)).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = _slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(anchors)


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _links(path: Path) -> list[str]:
    return LINK.findall(_prose(_text(path)))


def test_readme_is_a_front_door() -> None:
    lines = len(_text(README).splitlines())
    assert lines <= 260, f"README.md has {lines} lines; move detail into docs/"


def test_readme_links_every_docs_page() -> None:
    linked = {
        (README.parent / target.split("#", 1)[0]).resolve()
        for target in _links(README)
        if not re.match(r"[a-z]+:", target) and not target.startswith("#")
    }
    missing = [_name(page) for page in PAGES if page.resolve() not in linked]
    assert PAGES, "docs/ has no pages"
    assert not missing, f"README.md does not link {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_docs_page_links_back_to_the_readme(page: Path) -> None:
    targets = {(page.parent / t.split("#", 1)[0]).resolve() for t in _links(page)}
    assert README.resolve() in targets, f"{_name(page)} has no link back to README.md"


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_links_and_images_resolve(document: Path) -> None:
    broken = []
    for target in _links(document):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (document.parent / path_part).resolve() if path_part else document.resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{_name(document)}: {broken}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_python_snippets_parse(document: Path) -> None:
    for before, code in _blocks(document, "python", "py"):
        if before.rstrip().endswith(PARTIAL):
            continue
        try:
            ast.parse(code)
        except SyntaxError as exc:
            pytest.fail(f"{_name(document)}: a python block does not parse: {exc}")


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_json_snippets_parse(document: Path) -> None:
    for _, code in _blocks(document, "json"):
        json.loads(code)


@cache
def _cli() -> Any:
    return typer.main.get_command(app)


def _options(command: Any) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
    return names


def _invocations(document: Path) -> list[str]:
    """What follows `pikkugen ` in each shell line and each inline code span of `document`."""
    found = []
    for _, code in _blocks(document, *SHELL):
        for line in code.splitlines():
            line = re.sub(r"\s#.*$", "", line)
            for segment in re.split(r"&&|;", line):
                found += re.findall(r"(?:^|[\s/])pikkugen\s+(.+)", segment)
    for span in re.findall(r"`([^`]+)`", FENCE.sub("", _text(document))):
        found += re.findall(r"^pikkugen\s+(.+)", span, re.S)
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_every_pikkugen_command_and_flag_is_real(document: Path) -> None:
    problems = []
    for rest in _invocations(document):
        command, path, known = _cli(), "pikkugen", True
        for word in rest.split():
            subcommands = getattr(command, "commands", None)
            if word.startswith("-") or not subcommands:
                break
            if word not in subcommands:
                problems.append(f"{path} {word}: no such command")
                known = False
                break
            command, path = subcommands[word], f"{path} {word}"
        if not known:
            continue
        flags = set(re.findall(r"(?<![\w-])--[A-Za-z][\w-]*", rest))
        problems += [f"{path} {flag}: no such option" for flag in sorted(flags - _options(command))]
    assert not problems, f"{_name(document)}: {problems}"


def test_the_flag_check_catches_a_wrong_flag() -> None:
    enqueue = _cli().commands["enqueue"]
    assert "--job-id" in _options(enqueue)
    assert "--burst" not in _options(enqueue)  # the worker's, not enqueue's


#: A path of this repository; not one after `=` (a fenced block's `file=tests/test_jobs.py`
#: names a file of the reader's own project, as in docs/getting-started.md).
REPO_PATH = re.compile(
    r"(?<![\w./<=-])((?:benchmarks|tests)/[\w./-]*\w\.py|scripts/[\w-]+|\.ci/run)(?![\w<])"
)


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_named_scripts_benchmarks_and_tests_exist(document: Path) -> None:
    missing = sorted({p for p in REPO_PATH.findall(_text(document)) if not (ROOT / p).exists()})
    assert not missing, f"{_name(document)} names files that do not exist: {missing}"


FORBIDDEN = {
    "an issue number": re.compile(r"\bissues?\s+#?\d", re.I),
    "a #number reference": re.compile(r"(?<![\w&#])#\d+\b"),
    "RESEARCH.md": re.compile(r"RESEARCH\.md"),
    "DESIGN.md": re.compile(r"DESIGN\.md"),
    "../shared": re.compile(r"\.\./shared"),
}


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_no_references_outside_the_repository(document: Path) -> None:
    text = _text(document)
    found = [f"{what}: {m.group(0)!r}" for what, rx in FORBIDDEN.items() for m in rx.finditer(text)]
    assert not found, f"{_name(document)} refers outside the repository: {found}"


def _sources() -> list[Path]:
    """Every source, test, script, template and benchmark git tracks (not this file, whose
    samples are the patterns' own test)."""
    listed = subprocess.run(
        [
            "git",
            "ls-files",
            "runtime",
            "generator",
            "tests",
            "scripts",
            "benchmarks",
            "templates",
            "examples",
            ".ci",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    return [
        ROOT / name
        for name in listed
        # not pictures or data; not CSS, where `#0001` is a colour
        if not name.endswith((".png", ".json", ".db", ".css"))
        and "/static/vendor/" not in name  # third-party files as npm ships them
        and ROOT / name != Path(__file__).resolve()
    ]


def test_no_source_file_refers_outside_the_repository() -> None:
    found = []
    for path in _sources():
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [
            f"{_name(path)}: {what}: {m.group(0)!r}"
            for what, rx in FORBIDDEN.items()
            for m in rx.finditer(text)
        ]
    assert not found, "sources refer outside the repository:\n" + "\n".join(found)


def test_the_reference_check_catches_them() -> None:
    samples = ["see issue 12", "fixed in #14", "as DESIGN.md says", "../shared/notes.md"]
    for sample in samples:
        assert any(rx.search(sample) for rx in FORBIDDEN.values()), sample
    assert not any(rx.search("`&#39;` and a (page.md#heading-1)") for rx in FORBIDDEN.values())


def test_every_diagnostic_code_is_in_the_cli_reference() -> None:
    table = _text(DOCS / "cli.md")
    ranges = [
        (int(low), int(high or low))
        for low, high in re.findall(r"^\| PK(\d{3})(?:–PK(\d{3}))? \|", table, re.M)
    ]
    emitted = {
        int(code)
        for source in (ROOT / "generator" / "pikkugen").rglob("*.py")
        for code in re.findall(r"\"PK(\d{3})\"", _text(source))
    }
    assert emitted, "no diagnostic codes found in the generator"
    undocumented = sorted(c for c in emitted if not any(lo <= c <= hi for lo, hi in ranges))
    assert not undocumented, f"docs/cli.md's code table lacks PK{undocumented}"
