"""Payload and result types: names fully qualified, text rebuilt from the tree, never copied."""

from __future__ import annotations

from pikkugen.model import TypeRef
from scanner_helpers import Scanned, Tree, position_of

MODELS = "from pydantic import BaseModel\nclass Email(BaseModel):\n    to: str\nclass Item(BaseModel):\n    n: int\n"


def scan_tasks(tree: Tree, tasks: str, **modules: str) -> Scanned:
    files: dict[str, str | bytes] = {
        "src/shop/__init__.py": "",
        "src/shop/models.py": MODELS,
        "src/shop/tasks.py": tasks,
    }
    files.update({f"src/shop/{k}.py": v for k, v in modules.items()})
    return tree.write(files).scan("src")


def test_names_resolve_to_fully_qualified_dotted_names(tree: Tree) -> None:
    found = scan_tasks(
        tree,
        "import typing as t\n"
        "import datetime\n"
        "import collections.abc\n"
        "from typing import Any, Literal, Optional\n"
        "from pikku_queue import queue_processor, JobContext\n"
        "from .models import Email, Item\n"
        "from shop import models\n"
        "class Local:\n    pass\n"
        "@queue_processor('a')\n"
        "async def a(ctx: JobContext, data: dict[str, Any] | Optional[Email]) -> list[models.Item]: ...\n"
        "@queue_processor('b')\n"
        "def b(data: Local) -> t.Literal['sent', \"failed\", -1, None, True]: ...\n"
        "@queue_processor('c')\n"
        "def c(data: datetime.datetime) -> Literal['x'] | None: ...\n"
        "@queue_processor('d')\n"
        "def d(data: tuple[int, ...]) -> collections.abc.Callable[[int, str], bytes]: ...\n",
    )
    assert found.result.diagnostics == ()
    a, b, c, d = (found.processor(n) for n in "abcd")
    assert a.input == TypeRef(
        annotation="dict[str, typing.Any] | typing.Optional[shop.models.Email]",
        modules=("shop.models", "typing"),
    )
    assert a.output == TypeRef(annotation="list[shop.models.Item]", modules=("shop.models",))
    assert (a.takes_context, b.takes_context) == (True, False)
    assert b.input == TypeRef(annotation="shop.tasks.Local", modules=("shop.tasks",))
    assert b.output.annotation == "typing.Literal['sent', 'failed', -1, None, True]"
    assert c.input == TypeRef(annotation="datetime.datetime", modules=("datetime",))
    assert c.output.annotation == "typing.Literal['x'] | None"
    assert d.input == TypeRef(annotation="tuple[int, ...]", modules=())
    assert d.output == TypeRef(
        annotation="collections.abc.Callable[[int, str], bytes]", modules=("collections.abc",)
    )


def test_string_annotations_and_future_import(tree: Tree) -> None:
    found = scan_tasks(
        tree,
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING, Literal\n"
        "from pikku_queue import queue_processor\n"
        "if TYPE_CHECKING:\n    from .models import Email\n"
        "@queue_processor('q')\n"
        "def q(ctx, data: 'Email') -> \"list[Literal['a b']] | None\": ...\n",
    )
    q = found.processor("q")
    assert q.input == TypeRef(annotation="shop.models.Email", modules=("shop.models",))
    assert q.output.annotation == "list[typing.Literal['a b']] | None"


def test_reexported_type_resolves_to_its_defining_module(tree: Tree) -> None:
    found = scan_tasks(
        tree,
        "from pikku_queue import queue_processor\nfrom .api import Email\n"
        "@queue_processor('q')\ndef q(data: Email) -> None: ...\n",
        api="from .models import Email\n",
    )
    assert found.processor("q").input.annotation == "shop.models.Email"
    assert found.processor("q").output == TypeRef(annotation="None")


def test_batch_processors_hold_the_element_types(tree: Tree) -> None:
    found = scan_tasks(
        tree,
        "from typing import Sequence\nfrom pikku_queue import queue_processor, BatchOptions\n"
        "from .models import Email, Item\n"
        "@queue_processor('b', batch=BatchOptions(size=10))\n"
        "async def b(ctx, data: list[Email]) -> Sequence[Item]: ...\n",
    )
    b = found.processor("b")
    assert b.options.batch is not None
    assert (b.input.annotation, b.output.annotation) == ("shop.models.Email", "shop.models.Item")


def test_user_text_never_reaches_the_ir(tree: Tree) -> None:
    source = (
        "from pydantic import Field\nfrom typing import Annotated\n"
        "from pikku_queue import queue_processor\n"
        "@queue_processor('call')\n"
        "def call(data: Annotated[int, Field(gt=0)]) -> int: ...\n"
        "@queue_processor('unknown')\n"
        "def unknown(data: Mystery) -> int: ...\n"
        "@queue_processor('garbage')\n"
        "def garbage(data: 'int; import os') -> int: ...\n"
        "@queue_processor('expr')\n"
        "def expr(data: int) -> [x for x in y]: ...\n"
    )
    found = scan_tasks(tree, source)
    assert found.names == []
    assert [(d.code, d.line, d.column) for d in found.result.diagnostics] == [
        ("PK302", *position_of(source, "Field(gt")),
        ("PK303", *position_of(source, "Mystery")),
        ("PK302", *position_of(source, "'int; import os'")),
        ("PK302", *position_of(source, "[x for")),
    ]
    annotated = found.result.diagnostics[0]
    assert annotated.hint is not None and "type alias" in annotated.hint


def test_src_layout_module_names_and_relative_paths(tree: Tree) -> None:
    found = scan_tasks(
        tree,
        "from pikku_queue import queue_processor\n@queue_processor('q')\ndef q(data: int) -> int: ...\n",
    )
    q = found.processor("q")
    assert (q.module, q.function) == ("shop.tasks", "shop.tasks.q")
    assert q.location.path == "src/shop/tasks.py"


def test_processor_in_a_module_that_cannot_be_imported(tree: Tree) -> None:
    found = tree.write(
        {
            "scripts/my-tasks.py": "from pikku_queue import queue_processor\n@queue_processor('q')\ndef q(data: int) -> int: ...\n"
        }
    ).scan()
    assert found.names == []
    assert found.where("PK109") == ("scripts/my-tasks.py", 2, 2)
