"""Every way a declaration can be imported and written, and the look-alikes that are not."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from scanner_helpers import Scanned, Tree

MODELS = """
from pydantic import BaseModel
class In(BaseModel):
    x: int
class Out(BaseModel):
    y: int
"""

DECORATED_BY: dict[str, tuple[str, str]] = {
    "alias_module": ("import pikku_queue as pq", "@pq.queue_processor"),
    "plain_module": ("import pikku_queue", "@pikku_queue.queue_processor"),
    "from_alias": ("from pikku_queue import queue_processor as qp", "@qp"),
    "from_plain": ("from pikku_queue import queue_processor", "@queue_processor"),
    "declarations": (
        "from pikku_queue.declarations import queue_processor",
        "@queue_processor",
    ),
    "submodule_attr": (
        "import pikku_queue.declarations",
        "@pikku_queue.declarations.queue_processor",
    ),
    "submodule_alias": ("import pikku_queue.declarations as d", "@d.queue_processor"),
    "star": ("from pikku_queue import *", "@queue_processor"),
    "try_except": (
        "try:\n    from pikku_queue import queue_processor as qp\n"
        "except ImportError:\n    from .fallback import qp",
        "@qp",
    ),
}


@pytest.mark.parametrize("style", sorted(DECORATED_BY))
def test_decorator_through_each_import_style(
    package: Callable[[dict[str, str]], Scanned], style: str
) -> None:
    imports, decorator = DECORATED_BY[style]
    source = f"{imports}\nfrom .models import In, Out\n\n{decorator}('q-{style}', concurrency=2)\nasync def handle(ctx, data: In) -> Out:\n    ...\n"
    found = package({"models.py": MODELS, "tasks.py": source, "fallback.py": "qp = None\n"})
    processor = found.processor(f"q-{style}")
    assert processor.function == "shop.tasks.handle"
    assert processor.options.concurrency == 2
    assert processor.input.annotation == "shop.models.In"
    assert found.result.diagnostics == ()


def test_reexports_inside_the_tree(package: Callable[[dict[str, str]], Scanned]) -> None:
    found = package(
        {
            "models.py": MODELS,
            "queue.py": "from pikku_queue import queue_processor as register, RetryOptions as R\n",
            # none of these files mention the runtime package by name
            "a.py": "from .queue import register\nfrom .models import In, Out\n@register('a')\ndef a(data: In) -> Out: ...\n",
            "b.py": "from shop.queue import register, R\nfrom shop.models import In, Out\n@register('b', retry_options=R(attempts=4))\ndef b(data: In) -> Out: ...\n",
            "c.py": "from . import queue\nfrom .models import In, Out\n@queue.register('c')\ndef c(data: In) -> Out: ...\n",
            "relay.py": "from .queue import register as enlist\n",
            "d.py": "from .relay import enlist\nfrom .models import In, Out\n@enlist('d')\ndef d(data: In) -> Out: ...\n",
        }
    )
    assert found.names == ["a", "b", "c", "d"]
    assert found.processor("b").options.retry_options.attempts == 4
    assert found.processor("d").function == "shop.d.d"
    # d.py is only reachable through relay.py's alias: a second pre-filter stage found it
    assert found.stats.stages >= 2
    assert found.result.diagnostics == ()


def test_reexported_call_form_alone(package: Callable[[dict[str, str]], Scanned]) -> None:
    """The relay binds both declaration names; the user file names only the longer one."""
    found = package(
        {
            "relay.py": "from pikku_queue import queue_processor, add_queue_processor\n",
            "user.py": (
                "from .relay import add_queue_processor\n"
                "def f(data: int) -> int: ...\n"
                "add_queue_processor(name='only-call', func=f)\n"
            ),
        }
    )
    assert found.names == ["only-call"]


def test_package_init_reexport_used_relatively(
    package: Callable[[dict[str, str]], Scanned], tree: Tree
) -> None:
    found = package(
        {
            "__init__.py": "from pikku_queue import queue_processor as job\n",
            "work.py": "from . import job\n@job('w')\ndef work(data: int) -> int:\n    return data\n",
        }
    )
    assert found.names == ["w"]
    assert found.processor("w").input.annotation == "int"
    assert found.processor("w").takes_context is False


def test_add_queue_processor_with_function_from_another_module(
    package: Callable[[dict[str, str]], Scanned],
) -> None:
    found = package(
        {
            "models.py": MODELS,
            # jobs.py never mentions pikku_queue: it is read because registry.py needs it
            "jobs.py": "from .models import In, Out\nasync def process(ctx, data: In) -> Out: ...\n",
            "registry.py": (
                "from pikku_queue import add_queue_processor as add\n"
                "from .jobs import process\n"
                "add(name='img', func=process, concurrency=3)\n"
                "spec = add(name='img2', func=process)\n"
            ),
        }
    )
    assert found.names == ["img", "img2"]
    img = found.processor("img")
    assert (img.function, img.module, img.is_async) == ("shop.jobs.process", "shop.jobs", True)
    assert img.input.annotation == "shop.models.In"
    assert img.location.path == "src/shop/registry.py"
    assert (img.location.line, img.location.column) == (3, 1)
    assert "shop.jobs" in found.stats.lazily_loaded


def test_local_function_with_the_same_name_is_not_a_processor(
    package: Callable[[dict[str, str]], Scanned],
) -> None:
    found = package(
        {
            "local.py": (
                "# pikku_queue is mentioned, but this module has its own decorator\n"
                "def queue_processor(name):\n"
                "    return lambda f: f\n"
                "@queue_processor('not-a-queue')\n"
                "def f(data: int) -> int: ...\n"
            ),
            "other.py": (
                "import pikku_queue\n"
                "from mylib import add_queue_processor\n"
                "add_queue_processor(name='nope', func=print)\n"
            ),
        }
    )
    assert found.names == []
    infos = [d for d in found.result.diagnostics if d.code == "PK108"]
    assert [(d.level, d.path, d.line) for d in infos] == [
        ("info", "src/shop/local.py", 4),
        ("info", "src/shop/other.py", 3),
    ]
    assert "shop.local.queue_processor" in infos[0].message
    assert "mylib.add_queue_processor" in infos[1].message


def test_declarations_not_at_module_level_are_errors(
    package: Callable[[dict[str, str]], Scanned],
) -> None:
    found = package(
        {
            "nested.py": (
                "from pikku_queue import queue_processor, add_queue_processor\n"
                "class Service:\n"
                "    @queue_processor('method')\n"
                "    def handle(self, data: int) -> int: ...\n"
                "def setup():\n"
                "    def inner(data: int) -> int: ...\n"
                "    add_queue_processor(name='inside', func=inner)\n"
            )
        }
    )
    assert found.names == []
    errors = [d for d in found.result.diagnostics if d.code == "PK101"]
    assert [(d.line, d.column) for d in errors] == [(3, 6), (7, 5)]


def test_unrelated_modules_are_not_parsed(tree: Tree) -> None:
    files: dict[str, str | bytes] = {f"app/m{i}.py": f"X = {i}\n" for i in range(30)}
    files["app/tasks.py"] = (
        "from pikku_queue import queue_processor\n@queue_processor('t')\ndef t(data: int) -> int: ...\n"
    )
    found = tree.write(files).scan("app")
    assert found.names == ["t"]
    assert found.stats.files == 31
    assert found.stats.candidates == 1  # the other 30 never reach libcst
