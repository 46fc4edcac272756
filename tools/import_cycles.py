#!/usr/bin/env python
"""Import circles inside localiot/: every `import` and `from ... import`
(module level or inside a function: a lazy import still ties two modules
together) read with `ast`, then the strongly connected components of that
graph. Prints each circle (a component of two modules or more) with the
imports that close it, and exits 1 if there is one.

    .venv/bin/python tools/import_cycles.py [--root localiot] [--only PREFIX ...]

`--only` keeps the circles that contain a module starting with one of the
prefixes (e.g. `--only localiot.topics localiot.services.rules`).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the package `root`."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict) -> str | None:
    """The longest prefix of `name` that is one of our modules."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target:
                    out.add(target)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                target = _resolve(f"{base}.{alias.name}", modules)  # `from pkg import submodule`
                if target != f"{base}.{alias.name}":
                    target = _resolve(base, modules)
                if target:
                    out.add(target)
    out.discard(module)  # a package's __init__ naming its own attributes is no circle
    return out


def graph(root: Path) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def components(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted; only those that are circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                if len(members) > 1:
                    found.append(sorted(members))
    return sorted(found)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent / "localiot"))
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args(argv)
    edges = graph(Path(args.root))
    circles = components(edges)
    if args.only:
        circles = [c for c in circles if any(m.startswith(tuple(args.only)) for m in c)]
    for circle in circles:
        inner = {m: sorted(edges[m] & set(circle)) for m in circle}
        print(f"circle of {len(circle)}:")
        for m in circle:
            print(f"  {m} -> {', '.join(inner[m])}")
    print(f"{len(edges)} modules, {len(circles)} import circle(s)")
    return 1 if circles else 0


if __name__ == "__main__":
    sys.exit(main())
