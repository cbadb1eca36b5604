#!/usr/bin/env python3
"""Fails when the library's top-level modules import each other in a circle.

Each top-level module of crates/rampart/src (a file `x.rs` or a folder `x/`)
is a node; `crate::y` named anywhere in x's code (a `use` or a path) is an
edge x -> y. Doc comments and `#[cfg(test)]` modules don't count: they may
use anything. A cycle means two parts can't be understood, built or
feature-gated one without the other, so the layering of DESIGN.md
(leaves such as error, clock and the config helpers at the bottom; the
config that assembles every section and the http layers at the top) holds
only while this passes.

Usage: scripts/module-cycles.py [SRC_DIR]   (prints the graph's cycles; exit 1 if any)
"""

import re
import sys
from pathlib import Path

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent.parent / "crates/rampart/src")
CRATE_PATH = re.compile(r"\bcrate::(\w+)")
# `use crate::{a, b::c}` names several modules at once.
CRATE_GROUP = re.compile(r"\bcrate::\{([^}]*)\}")


def code_of(text: str) -> str:
    """The text without comments and without `#[cfg(test)] mod ... { }` blocks."""
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def modules(src: Path) -> dict[str, list[Path]]:
    found = {}
    for entry in sorted(src.iterdir()):
        if entry.is_dir():
            found[entry.name] = sorted(entry.rglob("*.rs"))
        elif entry.suffix == ".rs" and entry.stem not in ("lib", "main"):
            found[entry.stem] = [entry]
    return found


def edges(mods: dict[str, list[Path]]) -> dict[str, set[str]]:
    graph = {name: set() for name in mods}
    for name, files in mods.items():
        for path in files:
            code = code_of(path.read_text())
            named = set(CRATE_PATH.findall(code))
            for group in CRATE_GROUP.findall(code):
                named.update(part.strip().split("::")[0] for part in group.split(",") if part.strip())
            graph[name].update(n for n in named if n in mods and n != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    graph = edges(modules(SRC))
    found = cycles(graph)
    for component in found:
        members = set(component)
        links = [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]
        print(f"cycle among {', '.join(component)}: " + "; ".join(links))
    if found:
        return 1
    print(f"module-cycles: no cycles among {len(graph)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
