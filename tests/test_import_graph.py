"""The package's import graph: acyclic, and pointing down only (layers at the bottom, the
shared core above them, the three jobs above that, the command line on top).

Read from the source with ``ast``, lazy imports inside functions included (they run too);
only ``if TYPE_CHECKING:`` blocks are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wgan_lip"

# each room may import its own modules and the rooms below it
ROOMS = {
    "layers": 0,
    "shared": 1,
    "w1": 2,
    "robust": 2,
    "gan": 3,  # its metrics report a certified W1 estimate
    "entry": 4,
}
BASE = {"errors", "limits", "_lazy"}  # imported by every room, import nothing of ours
ENTRY = {"cli", "lightning_cli", "__main__", "__init__"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _room(module: str) -> str:
    top = module.split(".")[0]
    if top in ("layers", "w1", "robust", "gan"):
        return top
    if top in ENTRY:
        return "entry"
    return "shared"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, module: str) -> set[str]:
    """The modules of the package that ``module`` imports, resolved to dotted names."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    here = module.split(".") if is_package else module.split(".")[:-1]
    if module == "__init__":
        here = []
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.startswith("wgan_lip"):
                target = node.module.split(".")[1:]
            else:
                target = None
            if target is not None:
                for alias in node.names:  # `from . import x` may name a submodule
                    sub = ".".join([*target, alias.name])
                    found.add(
                        sub
                        if (PACKAGE / Path(*sub.split("."))).exists()
                        or (PACKAGE / (sub.replace(".", "/") + ".py")).exists()
                        else ".".join(target)
                    )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("wgan_lip."):
                    found.add(alias.name.split(".", 1)[1])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {f for f in found if f and f != module}


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        graph[module] = _imports(path, module)
    return graph


def test_the_graph_has_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node, [node])


def test_imports_point_down_only():
    graph = _graph()
    upward = []
    for module, targets in graph.items():
        if module.split(".")[0] in BASE or module == "__init__":
            continue
        room = _room(module)
        for target in targets:
            if target.split(".")[0] in BASE:
                continue
            other = _room(target)
            if other != room and ROOMS[other] >= ROOMS[room]:
                upward.append(f"{module} ({room}) -> {target} ({other})")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(sorted(upward))


def test_the_command_line_shell_knows_no_job():
    assert not {t.split(".")[0] for t in _graph()["lightning_cli"]} & {"w1", "gan", "robust"}


def test_the_base_modules_import_nothing_of_ours():
    graph = _graph()
    for module in BASE:
        assert not graph[module], (module, graph[module])
