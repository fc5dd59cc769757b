"""The package's import graph: no circles, and the core never imports the application layer."""

import ast
from pathlib import Path

import boostnet

PKG = Path(boostnet.__file__).parent
#: The launchers of the command line, which sit at the top so that ``python -m boostnet`` and the
#: console script stay light; with ``boostnet/app/`` they form the application layer.
LAUNCHERS = {"_entry", "__main__"}


def _modules():
    """Module names relative to the package ("estimators", "app.cli"), without ``__init__``s."""
    out = {}
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG).with_suffix("")
        if rel.name == "__init__":
            continue
        out[".".join(rel.parts)] = p
    return out


def _resolve(name, node, mods):
    """The modules of ``mods`` that ``node`` (an ``ImportFrom`` or ``Import`` in module ``name``)
    imports."""
    if isinstance(node, ast.Import):
        targets = [a.name[len("boostnet.") :] for a in node.names if a.name.startswith("boostnet.")]
    elif node.level:
        package = name.split(".")[: -node.level]  # the importing module's package, then up
        base = [*package, *(node.module.split(".") if node.module else [])]
        targets = (
            [".".join(base)] if node.module else [".".join([*base, a.name]) for a in node.names]
        )
    elif (node.module or "").startswith("boostnet."):
        targets = [node.module[len("boostnet.") :]]
    else:
        targets = []
    return {t for t in targets if t in mods}


def _graph():
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        deps = set()
        # every import, at module level or inside a function: a lazy import is still a dependency
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= _resolve(name, node, mods)
        graph[name] = deps - {name}
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


def _app(name):
    return name.startswith("app.") or name in LAUNCHERS


def test_the_walk_sees_the_known_edges():
    g = _graph()
    assert "scoring" in g["gpu_scoring"] and "estimators" in g["app.cli"]
    assert "app.experiment" in g["app.cli"] and "app.cli" in g["_entry"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_import_circles():
    assert _cycles(_graph()) == []


def test_the_core_does_not_import_the_application():
    g = _graph()
    bad = {m: sorted(d for d in deps if _app(d)) for m, deps in g.items() if not _app(m)}
    assert {m: v for m, v in bad.items() if v} == {}


def test_the_application_is_its_own_package():
    """What the documented layout (docs/layout.md) calls the application layer lives in
    ``boostnet/app/``."""
    app = {name for name in _modules() if name.startswith("app.")}
    assert app == {f"app.{m}" for m in
                   ("cli", "experiment", "compare", "report", "plots", "bench", "datasets")}  # fmt: skip


def test_the_documented_layout_lists_every_module():
    layout = (PKG.parent / "docs" / "layout.md").read_text()
    missing = [name for name in _modules() if f"`{name.split('.')[-1]}.py`" not in layout]
    assert missing == []
