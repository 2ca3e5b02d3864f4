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
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)  # maybe submodules


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


# what each package of attnkit may import from the others: data flows one way,
# cli -> recipes -> (train, tasks, models) -> layers -> functional (DESIGN.md); serve is the
# explorer's and only the command imports it; nothing imports cli
BELOW_MODELS = {"layers", "functional", "_ext"}
MAY_IMPORT = {
    "_ext": set(),
    "functional": {"_ext"},
    "layers": {"functional", "_ext"},
    "models": BELOW_MODELS,
    "viz": set(),
    "bench": {"functional", "layers", "_ext"},
    "keras": {"layers"},  # Keras layers in keras.ops; the torch layers only to convert weights
    "train": {"models", *BELOW_MODELS},
    "tasks": {"models", "train", *BELOW_MODELS},
    "export": {"tasks", "train", "models", *BELOW_MODELS},
    "recipes": {"export", "tasks", "train", "models", "viz", *BELOW_MODELS},
    "serve": {"recipes", "tasks", "train", "models", "viz", *BELOW_MODELS},
    "cli": {
        "serve",
        "recipes",
        "export",
        "tasks",
        "train",
        "models",
        "viz",
        "bench",
        *BELOW_MODELS,
    },
}
PACKAGE_FILES = sorted(p for p in SRC.rglob("*.py") if p.parent != SRC)


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_every_package_imports_only_the_layers_below_it(path):
    package = path.relative_to(SRC).parts[0]
    for module in imports(path):
        parts = (module or "").split(".")
        if (
            parts[0] == "attnkit"
            and len(parts) > 1
            and parts[1] != package
            and ((SRC / parts[1]).is_dir())
        ):
            assert parts[1] in MAY_IMPORT[package], f"{package}/{path.name} imports {module}"


def test_no_two_modules_import_each_other():
    """No import cycle between two modules of the package (devices <-> distributed was one)."""
    graph = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        graph[name.removesuffix(".__init__")] = {m for m in imports(path) if m}
    nested = lambda a, b: a.startswith(b + ".") or b.startswith(a + ".")  # noqa: E731
    cycles = [
        (a, b)
        for a, deps in graph.items()
        for b in deps
        if b in graph and a in graph[b] and a < b and not nested(a, b)
    ]
    assert not cycles, cycles
