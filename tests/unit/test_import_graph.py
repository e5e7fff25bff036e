"""The layout holds: no import cycle anywhere in baomi, no upward import
(baomi.common imports neither side; the agent and the collector never import
each other), the decision tables do no I/O, and no extractor imports the
dispatcher (extractors reach nested content through Ctx.descend). Read from
the source with ast: every import counts, also one inside a function."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {"baomi.agent": REPO / "agent", "baomi.service": REPO / "service", "baomi.common": REPO / "common"}
SCAN = "baomi.agent.scan"


def _module_name(path: Path, package: str, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _modules(only: str | None = None) -> dict[str, Path]:
    out = {}
    for package, root in PACKAGES.items():
        for p in sorted(root.rglob("*.py")):
            if "migrations" in p.parts:
                continue
            name = _module_name(p, package, root)
            if only is None or name == only or name.startswith(only + "."):
                out[name] = p
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node but those under `if TYPE_CHECKING:` (imports for type hints only, never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", getattr(child.test, "attr", "")) == "TYPE_CHECKING":
                todo.extend(child.orelse)
                continue
            todo.append(child)


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that the module `name` imports."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def _graph(only: str | None = None) -> dict[str, set[str]]:
    modules = _modules(only)
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _all_imports(path: Path) -> set[str]:
    """Every absolute module name a file imports (relative ones left out)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module)
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_sees_the_scanner_modules() -> None:
    graph = _graph(SCAN)
    assert f"{SCAN}.extract" in graph and f"{SCAN}.extractors.base" in graph
    assert f"{SCAN}.extractors.ooxml" in graph[f"{SCAN}.extract"], "imports inside functions count"
    assert f"{SCAN}.extractors.base" in graph[f"{SCAN}.extractors.ooxml"], "relative imports resolve"


def test_cycle_detection_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_scan_package_has_no_import_cycle() -> None:
    graph = _graph(SCAN)
    cycle = _cycle(graph)
    assert cycle is None, "import cycle in agent/scan: " + " -> ".join(cycle or [])
    extractors = [m for m in graph if m.startswith(f"{SCAN}.extractors.")]
    assert extractors
    offenders = sorted(m for m in extractors if f"{SCAN}.extract" in graph[m])
    assert not offenders, f"extractors importing {SCAN}.extract: {offenders}"


def test_no_import_cycle_anywhere() -> None:
    graph = _graph()
    assert len(graph) > 100 and "baomi.common.catalogue" in graph["baomi.common.events"]
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_upward_or_sideways_import() -> None:
    graph = _graph()
    bad = []
    for module, targets in graph.items():
        side = module.split(".")[1]
        for t in targets:
            other = t.split(".")[1]
            if side == "common" and other != "common" or {side, other} == {"agent", "service"}:
                bad.append(f"{module} -> {t}")
    assert bad == []


IO_MODULES = {"os", "subprocess", "socket", "sqlite3", "shutil", "pathlib", "threading", "httpx", "pyudev",
              "fcntl", "logging"}


def test_decision_tables_do_no_io() -> None:
    for name, path in _modules("baomi.agent.decide").items():
        if name.endswith(".doc"):
            continue  # renders the docs; still pure, but allowed to print
        used = {m.split(".")[0] for m in _all_imports(path)}
        assert not used & IO_MODULES, f"{name} imports {sorted(used & IO_MODULES)}"
