"""The layers of the code: which Beras modules may import which, and which packages.

``docs/architecture.md`` draws the layers: the building blocks (``core``, ``validation``,
``config``, ``utils``, ``initializers``), then activations, losses and metrics, then
``layers/``, then models and training. A module never imports from a layer above its
own, so activations and losses can be used (and checked) without any layer, and the
library needs NumPy and the standard library only.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

BERAS = Path(__file__).resolve().parents[2] / "beras"

# Modules below the layers, and the Beras modules each may import.
BELOW_LAYERS = {
    "config": set(),
    "utils": set(),
    "validation": {"config"},
    "core": {"config", "validation"},
    "initializers": {"config"},
    "activations": {"core", "validation", "config"},
    "losses": {"core", "validation", "config"},
    "metrics": {"core", "validation", "config"},
}

# Packages beras/ may import besides the standard library (matplotlib only lazily,
# hypothesis only in beras.testing).
THIRD_PARTY = {"numpy", "tqdm", "threadpoolctl", "matplotlib"}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """``(module, at_top_level)`` of each import in ``path``; Beras's as ``beras.x``."""
    package = path.relative_to(BERAS.parent).with_suffix("").parts[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                names = [node.module] if node.module else [a.name for a in node.names]
                found += [(f"{base}.{name}", id(node) in top) for name in names]
            else:
                found.append((node.module or "", id(node) in top))
    return found


@pytest.mark.parametrize("module", sorted(BELOW_LAYERS))
def test_modules_below_the_layers_import_nothing_above_them(module: str) -> None:
    beras_imports = {
        name.split(".")[1]
        for name, _ in _imports(BERAS / f"{module}.py")
        if name.startswith("beras.")
    }
    assert beras_imports <= BELOW_LAYERS[module], (
        f"beras.{module} imports {sorted(beras_imports - BELOW_LAYERS[module])}, which sit above it"
    )


def test_the_library_imports_numpy_and_the_standard_library_only() -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for path in sorted(BERAS.rglob("*.py")):
        in_testing = "testing" in path.relative_to(BERAS).parts
        for name, top_level in _imports(path):
            root = name.split(".")[0]
            if root in stdlib or root == "beras":
                continue
            allowed = THIRD_PARTY | ({"hypothesis"} if in_testing else set())
            assert root in allowed, f"{path.relative_to(BERAS.parent)} imports {name}"
            assert root != "matplotlib" or not top_level, (
                f"{path.relative_to(BERAS.parent)} imports matplotlib at import time"
            )
