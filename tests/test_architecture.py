"""The package's shape, as docs/architecture.md describes it: an import graph without circles
whose arrows only point down the levels below, and a path of one training step whose every
`file:function` exists and calls the next one."""

from __future__ import annotations

import ast
import graphlib
import re
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "cnn_jax"
ARCHITECTURE = REPO / "docs" / "architecture.md"

# Lowest first; a module may import modules of its own level or below, never above. The first
# prefix that matches a module's dotted name (without 'cnn_jax.') gives its level.
LEVELS = (
    ("foundations", ("errors", "markdown", "backend", "compilation_cache", "provenance", "shapes",
                     "activations", "initializers", "losses", "optim", "plots")),
    ("layers and data", ("layers", "data")),
    ("networks", ("network", "presets", "summary", "receptive_field")),
    ("configs", ("config",)),
    ("training", ("train",)),
    ("uses of training", ("inference", "evaluation", "export", "compare", "sweep", "research",
                          "bench")),
    ("front ends", ("explorer", "cli")),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The cnn_jax modules `path` imports, at the top or inside a function."""

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cnn_jax"):
            found |= {resolve(f"{node.module}.{alias.name}") for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {resolve(alias.name) for alias in node.names
                      if alias.name.startswith("cnn_jax")}
    return found - {None, module_name(path)}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) for name, path in known.items() if name != "cnn_jax"}


def level(name: str) -> int:
    short = name.removeprefix("cnn_jax.")
    for index, (_, prefixes) in enumerate(LEVELS):
        if any(short == prefix or short.startswith(prefix + ".") for prefix in prefixes):
            return index
    raise AssertionError(f"{name} has no level in LEVELS: add it where it belongs")


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"import circle: {' → '.join(error.args[1])}")


def test_imports_point_down_the_levels():
    upward = [f"{name} ({LEVELS[level(name)][0]}) imports {target} ({LEVELS[level(target)][0]})"
              for name, targets in import_graph().items() for target in sorted(targets)
              if target != "cnn_jax" and level(target) > level(name)]
    assert not upward, "\n".join(upward)


def test_the_levels_reject_an_upward_import():
    assert (level("cnn_jax.layers.conv") < level("cnn_jax.train.experiment")
            < level("cnn_jax.sweep.run"))
    with pytest.raises(AssertionError, match="no level"):
        level("cnn_jax.somewhere_new")


STEP = re.compile(r"`((?:cnn_jax|experiments)/[\w/]+\.py):([\w.]+)`")


def step_path() -> list[tuple[str, str]]:
    """The `file:function` entries of the numbered list under "The path of one training step"."""
    text = ARCHITECTURE.read_text()
    section = text.split("## The path of one training step", 1)[1].split("\n## ", 1)[0]
    return [STEP.search(line).groups() for line in section.splitlines()
            if re.match(r"\d+\. ", line) and STEP.search(line)]


def definition(file: str, qualified: str) -> ast.AST | None:
    """The function (or `Class.method`) `qualified` of `file`, or None."""
    node: ast.AST = ast.parse((REPO / file).read_text())
    for part in qualified.split("."):
        node = next((child for child in ast.walk(node) if isinstance(
            child, ast.FunctionDef | ast.ClassDef) and child.name == part), None)
        if node is None:
            return None
    return node


def test_every_step_of_the_documented_path_exists_and_calls_the_next():
    path = step_path()
    assert len(path) >= 5, "docs/architecture.md lists the path of one step as file:function"
    for file, qualified in path:
        assert definition(file, qualified) is not None, f"{file}:{qualified} does not exist"
    callees = [*(qualified for _, qualified in path[1:]), "conv_general_dilated"]
    for (file, qualified), following in zip(path, callees, strict=True):
        names = {node.attr if isinstance(node, ast.Attribute) else node.id
                 for node in ast.walk(definition(file, qualified))
                 if isinstance(node, ast.Attribute | ast.Name)}
        assert following.split(".")[-1] in names, f"{file}:{qualified} does not call {following}"


def test_the_documented_path_is_short():
    path = step_path()
    outside = {file for file, _ in path
               if not file.startswith("cnn_jax/layers/") and file != "cnn_jax/shapes.py"}
    assert len(path) <= 8, f"{len(path)} hops from the script to lax: {path}"
    assert len(outside) <= 4, f"files outside layers/ and shapes.py: {sorted(outside)}"
