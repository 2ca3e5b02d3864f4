"""The package's layering (DESIGN.md): functional/ and layers/ import torch, the standard
library and each other (plus the optional compiled extensions) only; nothing below models/
imports from models/, tasks/, train/, recipes/, viz/ or cli/."""

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "attnkit"
CORE = ("functional", "layers")
ALLOWED_INSIDE = {"functional", "layers", "_ext"}


def imports(path: Path):
    """(absolute module, level) of every import in a file, relative ones resolved."""
    package = path.relative_to(SRC.parent).with_suffix("").parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                yield ".".join([*base, node.module] if node.module else base)
            else:
                yield node.module


@pytest.mark.parametrize(
    "path", sorted(p for d in CORE for p in (SRC / d).rglob("*.py")), ids=lambda p: p.name
)
def test_the_core_imports_torch_and_the_standard_library_only(path):
    for module in imports(path):
        top = module.split(".")[0]
        if top == "attnkit":
            assert module.split(".")[1] in ALLOWED_INSIDE, f"{path.name} imports {module}"
        else:
            assert top == "torch" or top in sys.stdlib_module_names, f"{path.name} imports {module}"
