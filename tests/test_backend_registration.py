"""A backend registers itself once: its `BACKEND` entry in its adapter package, listed in
`pikku_queue.adapters.catalog`. Every reader of that entry is checked here, so a backend that
one of them misses (a URL scheme, the install extra, the trace name, the support table, the
pyproject extras, the test installer) fails a test instead of silently going without."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pikku_queue import tracing
from pikku_queue.adapters import catalog, connect
from pikku_queue.capabilities import BackendEntry
from pikku_queue.errors import BackendError
from pikku_queue.install import install_hint
from pikkugen import support_table

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = ROOT / "runtime" / "pikku_queue" / "adapters"
ENTRIES = {entry.name: entry for entry in catalog.BACKENDS}


def _pyproject(path: Path) -> dict[str, list[str]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    extras: dict[str, list[str]] = data["project"]["optional-dependencies"]
    return extras


def test_every_adapter_package_is_in_the_catalog() -> None:
    packages = sorted(p.name for p in ADAPTERS.iterdir() if (p / "__init__.py").is_file())
    assert packages == sorted(ENTRIES)
    for name, entry in ENTRIES.items():
        module = importlib.import_module(f"pikku_queue.adapters.{name}")
        assert module.BACKEND is entry, f"{name}: the catalog lists another entry"


def test_names_and_schemes_are_unique() -> None:
    schemes = [s for entry in catalog.BACKENDS for s in entry.schemes]
    assert len(schemes) == len(set(schemes))
    assert len(ENTRIES) == len(catalog.BACKENDS)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_the_resolver_knows_its_schemes(name: str) -> None:
    entry = ENTRIES[name]
    assert entry.schemes, f"{name} declares no URL scheme"
    for scheme in entry.schemes:
        assert catalog.BY_SCHEME[scheme] is entry
    if entry.factory is None:
        assert entry.opened_by, f"{name}: no factory, so say what opens it"
        with pytest.raises(BackendError, match="not opened by URL"):
            connect(f"{entry.schemes[0]}://")
        return
    module, _, attribute = entry.factory.partition(":")
    assert callable(getattr(importlib.import_module(module), attribute))


@pytest.mark.parametrize("name", sorted(n for n, e in ENTRIES.items() if e.extra))
def test_a_missing_extra_names_it(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = ENTRIES[name]
    assert entry.factory is not None
    real = importlib.import_module
    backend_module = entry.factory.partition(":")[0]

    def refuse(module: str, package: str | None = None) -> object:
        if module == backend_module:
            raise ImportError(f"No module named {name!r} (simulated)")
        return real(module, package)

    monkeypatch.setattr(importlib, "import_module", refuse)
    # The hint installs the extra the way pikku-queue itself was installed (a checkout here).
    hint = install_hint("pikku-queue", entry.extra)
    assert hint.endswith(f"[{entry.extra}]'")
    with pytest.raises(BackendError, match=re.escape(hint)):
        connect(f"{entry.schemes[0]}://localhost")


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_traces_name_its_system(name: str) -> None:
    entry = ENTRIES[name]
    for scheme in entry.schemes:
        assert catalog.trace_system(f"{scheme}://x") == entry.trace_system
    tracing.set_system(f"{entry.schemes[0]}://x")
    assert tracing._SYSTEM.get() == entry.trace_system


def test_the_support_table_has_a_column_per_backend_in_catalog_order() -> None:
    header = support_table.render().splitlines()[0]
    columns = [c.strip() for c in header.strip("|").split("|")][1:]
    assert columns == [entry.capabilities.title for entry in catalog.BACKENDS]


@pytest.mark.parametrize("name", sorted(n for n, e in ENTRIES.items() if e.extra))
def test_its_extra_exists_in_both_distributions_and_is_tested(name: str) -> None:
    extra = ENTRIES[name].extra
    runtime = _pyproject(ROOT / "runtime" / "pyproject.toml")
    assert extra in runtime, f"runtime/pyproject.toml has no [{extra}] extra"
    generator = _pyproject(ROOT / "pyproject.toml")
    version = tomllib.loads((ROOT / "runtime" / "pyproject.toml").read_text())["project"]["version"]
    assert generator.get(extra) == [f"pikku-queue[{extra}]=={version}"], (
        f"pyproject.toml must mirror the runtime's [{extra}] extra"
    )
    install = next(
        line
        for line in (ROOT / "scripts" / "test").read_text().splitlines()
        if "pip install" in line and " -e " in line
    )
    wanted = re.search(r"\.\[([^\]]*)\]", install)
    assert wanted is not None and extra in wanted.group(1).split(","), (
        f"scripts/test does not install the [{extra}] extra: its tests would not run"
    )


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_a_declaration_imports_no_backend(name: str) -> None:
    """Listing the backends (the catalog imports every declaration) must not load a client
    library or the engine: every producer imports the catalog through the resolver."""
    code = (
        f"import sys, pikku_queue.adapters.{name}\n"
        "print(' '.join(m for m in ('redis', 'bullmq', 'boto3', 'pikku_queue.engine', "
        f"'pikku_queue.adapters.{name}.backend') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_entries_are_backend_entries() -> None:
    assert all(isinstance(e, BackendEntry) for e in catalog.BACKENDS)
