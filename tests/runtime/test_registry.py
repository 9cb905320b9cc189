"""The registry and services loading, with real modules written to a temporary package."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pikku_queue.errors import PikkuQueueError, UnknownQueueError
from pikku_queue.options import ProcessorOptions
from pikku_queue.registry import QueueEntry, Registry, import_object
from pikku_queue.services import ServicesError, create_services

MODULE = """
from pydantic import BaseModel

CALLS = []


class In(BaseModel):
    n: int


async def handle(ctx, data: In) -> int:
    return data.n


def make_services():
    CALLS.append("sync")
    return {"kind": "sync"}


async def make_services_async():
    CALLS.append("async")
    return {"kind": "async"}


import does_not_exist_anywhere  # noqa
"""


@pytest.fixture
def package(tmp_path: Path) -> Iterator[str]:
    name = f"regpkg_{tmp_path.name.replace('-', '_')}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "jobs.py").write_text(MODULE.replace("import does_not_exist_anywhere  # noqa\n", ""))
    (root / "broken.py").write_text(MODULE)
    sys.path.insert(0, str(tmp_path))
    yield name
    sys.path.remove(str(tmp_path))
    for module in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[module]


def test_entries_load_into_processors(package: str) -> None:
    options = ProcessorOptions(concurrency=3)
    registry = Registry([QueueEntry("numbers", f"{package}.jobs.handle", options, "In", "int")])
    assert registry.names() == ["numbers"]
    [processor] = registry.load()
    assert processor.name == "numbers"
    assert processor.options.concurrency == 3
    assert processor.takes_context and processor.is_async
    assert processor.input_adapter.validate_python({"n": 2}).n == 2


def test_unknown_queue_names_the_known_ones(package: str) -> None:
    registry = Registry([QueueEntry("a", f"{package}.jobs.handle", ProcessorOptions())])
    with pytest.raises(UnknownQueueError, match="'b'; known: a"):
        registry.get("b")
    with pytest.raises(UnknownQueueError):
        registry.load(["b"])


def test_import_errors_are_not_hidden(package: str) -> None:
    with pytest.raises(ModuleNotFoundError, match="does_not_exist_anywhere"):
        import_object(f"{package}.broken.handle")
    with pytest.raises(PikkuQueueError, match="no attribute 'missing'"):
        import_object(f"{package}.jobs.missing")
    with pytest.raises(PikkuQueueError, match="no module 'no_such_top_level_package_xyz' on the"):
        import_object("no_such_top_level_package_xyz.func")


def test_sync_services_factory_runs_once(package: str) -> None:
    registry = Registry([], services=f"{package}.jobs:make_services")
    assert registry.create_services() == {"kind": "sync"}
    assert registry.create_services() == {"kind": "sync"}
    assert sys.modules[f"{package}.jobs"].CALLS == ["sync"]


def test_async_services_factory_from_sync_code(package: str) -> None:
    registry = Registry([], services=f"{package}.jobs:make_services_async")
    assert registry.create_services() == {"kind": "async"}


async def test_async_services_factory_inside_a_loop(package: str) -> None:
    registry = Registry([], services=f"{package}.jobs:make_services_async")
    with pytest.raises(PikkuQueueError, match="acreate_services"):
        registry.create_services()
    assert await registry.acreate_services() == {"kind": "async"}
    assert await registry.acreate_services() == {"kind": "async"}
    assert sys.modules[f"{package}.jobs"].CALLS == ["async"]


async def test_services_reference_errors(package: str) -> None:
    assert await create_services(None) is None
    with pytest.raises(ServicesError, match=r"pkg\.module:factory"):
        await create_services("nothing")
    with pytest.raises(ServicesError, match="cannot import"):
        await create_services("no_such_module_xyz:f")
    with pytest.raises(ServicesError, match="no attribute"):
        await create_services(f"{package}.jobs:nope")
    with pytest.raises(ServicesError, match="not callable"):
        await create_services(f"{package}.jobs:CALLS")
