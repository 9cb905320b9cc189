"""`[tool.pikkugen]` + CLI overrides -> Config; every refusal names the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pikkugen.config import ConfigError, load_config


def project(tmp_path: Path, table: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f"[project]\nname='x'\n\n[tool.pikkugen]\n{table}\n")
    (tmp_path / "src" / "shop").mkdir(parents=True)
    (tmp_path / "src" / "shop" / "__init__.py").write_text("")
    return tmp_path


def test_reads_every_key_relative_to_the_pyproject_folder(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        'paths = ["src"]\nout = "src/shop/generated"\nexclude = ["**/legacy/**"]\n'
        'runtimes = ["sqs", "redis"]\nservices = "shop.services:create"\nstrict = true\n'
        'backend = "redis://localhost:6379/0"\ncache = false\nmax_file_bytes = 2048\n',
    )
    config = load_config(root / "src" / "shop")  # found by walking up
    assert config.root == root.resolve()
    assert config.paths == ((root / "src").resolve(),)
    assert config.out == (root / "src" / "shop" / "generated").resolve()
    assert config.out_package == "shop.generated"
    assert config.exclude == ("**/legacy/**",)
    assert config.runtimes == ("redis", "sqs")
    assert config.services == "shop.services:create"
    assert config.strict is True
    assert config.backend == "redis://localhost:6379/0"
    assert config.cache is False
    assert config.max_file_bytes == 2048


def test_max_file_bytes_reaches_the_scanner(tmp_path: Path) -> None:
    from pikkugen.generate import scan_project

    root = project(tmp_path, "max_file_bytes = 64\ncache = false")
    (root / "src" / "shop" / "big.py").write_text("x = 1\n" * 20)
    (found,) = [d for d in scan_project(load_config(root)).diagnostics if d.code == "PK003"]
    assert found.path == "src/shop/big.py" and "max_file_bytes (64)" in found.message
    assert "[tool.pikkugen]" in (found.hint or "")


def test_defaults_without_a_section(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    config = load_config(tmp_path)
    assert config.root == tmp_path.resolve()
    assert config.paths == ((tmp_path / "src").resolve(),)
    assert config.out == (tmp_path / "src" / "pikku_generated").resolve()
    assert config.out_package == "pikku_generated"
    assert config.runtimes == ("sqlite",)
    assert config.max_file_bytes == 1_000_000
    assert (config.strict, config.cache, config.services, config.backend) == (
        False,
        True,
        None,
        None,
    )


def test_overrides_win_and_none_means_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, 'paths = ["src"]\nstrict = true\nruntimes = ["sqs"]')
    monkeypatch.chdir(root / "src")
    config = load_config(None, paths=["shop"], strict=None, runtimes=["cloudflare"], cache=False)
    assert config.paths == ((root / "src" / "shop").resolve(),)  # relative to the cwd
    assert config.strict is True
    assert config.runtimes == ("cloudflare",)
    assert config.cache is False
    assert config.out_package == "shop.pikku_generated"


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ('pahts = ["src"]', "did you mean 'paths'"),
        ("STRICT = true", "did you mean 'strict'"),
        ("maxFileBytes = 9", "did you mean 'max_file_bytes'"),
        ("paths = 3", "[tool.pikkugen] paths: expected a list of strings"),
        ('runtimes = ["kafka"]', "unknown runtime 'kafka'"),
        ('services = "no colon"', "expected 'package.module:function'"),
        ('strict = "yes"', "[tool.pikkugen] strict: expected true or false"),
        ('backend = "localhost"', "expected a backend URL"),
        ('out = "src/my-gen"', "'my-gen' is not a Python identifier"),
        ("cache = 1", "cache: expected true or false"),
        ("max_file_bytes = 0", "max_file_bytes: expected a positive integer"),
        ("max_file_bytes = true", "max_file_bytes: expected a positive integer"),
    ],
)
def test_bad_values_are_refused_with_the_key(tmp_path: Path, table: str, needle: str) -> None:
    root = project(tmp_path, table)
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    message = caught.value.message + " " + (caught.value.hint or "")
    assert needle in message
    diagnostic = caught.value.to_diagnostic()
    assert diagnostic.level == "error"
    assert diagnostic.code == "PK601"


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.pikkugen\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path)


def test_an_unknown_override_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="pahts"):
        load_config(tmp_path, pahts=["x"])
