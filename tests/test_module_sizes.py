"""Modules stay small: one over 400 lines says why at its top (docs/module_sizes.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _sizes() -> ModuleType:
    spec = importlib.util.spec_from_file_location("module_sizes", ROOT / "docs" / "module_sizes.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


def test_every_module_over_the_limit_says_why() -> None:
    sizes = _sizes()
    missing = [f"{m.path} ({m.lines} lines)" for m in sizes.unexplained(sizes.modules())]
    assert not missing, f"add a `{sizes.MARKER} <why>` comment near the top of: {missing}"


def test_a_long_module_without_a_reason_is_found(tmp_path: Path) -> None:
    sizes = _sizes()
    package = tmp_path / "waypost"
    package.mkdir()
    (package / "long.py").write_text("x = 1\n" * 401)
    (package / "explained.py").write_text(f"{sizes.MARKER} a table of data\n" + "x = 1\n" * 500)
    (package / "short.py").write_text("x = 1\n" * 400)
    found = sizes.modules(tmp_path)
    assert [m.path.name for m in sizes.unexplained(found)] == ["long.py"]
