"""The package's import graph: no circles, and the core never imports the application layer."""

import ast
from pathlib import Path

import boostnet

PKG = Path(boostnet.__file__).parent
#: The application layer: the command line and what only it uses (files, runs, tables, plots).
APP = {"cli", "experiment", "compare", "report", "plots", "bench", "datasets", "_entry", "__main__"}


def _graph():
    mods = {p.stem for p in PKG.glob("*.py")}
    graph = {}
    for name in mods:
        deps = set()
        # every import, at module level or inside a function: a lazy import is still a dependency
        for node in ast.walk(ast.parse((PKG / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("boostnet."):
                deps.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("boostnet.")}
        graph[name] = (deps & mods) - {name, "__init__"}
    return graph


def _cycles(graph):
    found, state = [], {}

    def visit(u, stack):
        state[u] = "open"
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == "open":
                found.append(stack[stack.index(v) :] + [v])
            elif v not in state:
                visit(v, stack)
        stack.pop()
        state[u] = "done"

    for u in sorted(graph):
        if u not in state:
            visit(u, [])
    return found


def test_the_walk_sees_the_known_edges():
    g = _graph()
    assert "scoring" in g["gpu_scoring"] and "estimators" in g["cli"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_import_circles():
    assert _cycles(_graph()) == []


def test_the_core_does_not_import_the_application():
    g = _graph()
    core = set(g) - APP
    bad = {m: sorted(g[m] & APP) for m in core if g[m] & APP}
    assert bad == {}
