"""The shape of the code, pinned: no import cycles inside localiot/ (counting
imports inside functions too: a lazy import that closes a circle is still a
circle), and no module over 600 lines.

`python tests/test_architecture.py` prints every import circle (the strongly
connected components of the import graph) and every module over the limit,
known debts included."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "localiot"
MAX_LINES = 600

# Debts: modules allowed over the limit or in a cycle. Empty since issue 10
# landed; keep it that way (`python tests/test_architecture.py` prints both).
KNOWN_LONG: set[str] = set()
KNOWN_CYCLES: list[set[str]] = []


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    def resolve(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(filter(None, (resolve(alias.name) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                target = resolve(f"{base}.{alias.name}")
                if target in (None, name):
                    target = resolve(base)
                if target:
                    targets.add(target)
    targets.discard(name)
    return targets


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    cycles = [c for c in _cycles(graph) if c not in KNOWN_CYCLES]
    assert cycles == [], f"import cycles inside localiot/: {[sorted(c) for c in cycles]}"


def test_the_topic_library_is_one_leaf_shared_by_broker_rules_and_sql():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph["localiot.topics"] == set()
    users = {name for name, targets in graph.items() if "localiot.topics" in targets}
    assert {"localiot.broker.subscriptions", "localiot.services.rules.engine", "localiot.iotsql.parser"} <= users


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_over_600_lines():
    assert {k: v for k, v in _long_modules().items() if k not in KNOWN_LONG} == {}


def _long_modules() -> dict[str, int]:
    return {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }


if __name__ == "__main__":
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    for cycle in sorted(sorted(c) for c in _cycles(graph)):
        print(f"circle of {len(cycle)}{' (known)' if set(cycle) in KNOWN_CYCLES else ''}:")
        for name in cycle:
            print(f"  {name} -> {', '.join(sorted(graph[name] & set(cycle)))}")
    for path, n in sorted(_long_modules().items()):
        print(f"over {MAX_LINES} lines{' (known)' if path in KNOWN_LONG else ''}: {path} ({n})")


def test_timed_waits_go_through_within():
    """Python 3.11's asyncio.wait_for can lose a cancellation (see localiot/timeouts.py);
    a background loop that loses one never stops."""
    users = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                   if "asyncio.wait_for(" in path.read_text())
    assert users == []
