"""No import circles in xrfhub (issue 13, item 7): every import, at module level or inside a
function, read from the source, must follow one direction between modules."""
from __future__ import annotations

import ast
from pathlib import Path

import xrfhub

ROOT = Path(xrfhub.__file__).parent

#: Circles that remain, owned by other work: NeXus helpers shared privately between the NeXus
#: modules (being redone for pynxtools validity), two report modules, two lab readers. The test
#: fails on any other circle, and on these once they are gone (so the list only shrinks).
KNOWN: set = set()  # none left: a new circle fails this test


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _targets(module: str, path: Path, node, modules) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in modules]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    if node.level:
        base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    out = []
    for alias in node.names:
        full = f"{source}.{alias.name}"
        out.append(full if full in modules else source)
    return [t for t in out if t in modules]


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                # the package itself (``from . import __version__``) is the root everyone may use
                graph[module] |= {t for t in _targets(module, path, node, modules) if t not in (module, "xrfhub")}
    return graph


def circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = set()
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.add(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(frozenset(comp))
    return found


def test_the_checker_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]


def test_no_import_circles():
    found = set(circles(import_graph()))
    assert found - KNOWN == set(), [sorted(c) for c in found - KNOWN]
    assert KNOWN - found == set(), f"gone, remove from KNOWN: {[sorted(c) for c in KNOWN - found]}"


#: Modules below the store: the low write modules may use them (run files carry stable UUIDs
#: from identifiers) because they import nothing of xrfhub but each other, checked below.
BELOW_THE_STORE = {"xrfhub.errors", "xrfhub.identifiers"}


def test_the_write_path_has_one_direction():
    graph = import_graph()
    for below in BELOW_THE_STORE:
        assert graph[below] <= BELOW_THE_STORE, below
    for low in ("xrfhub.store.files", "xrfhub.store.catalog", "xrfhub.store.rows", "xrfhub.store.nxrun"):
        assert not {m for m in graph[low] if not m.startswith("xrfhub.store") and m not in BELOW_THE_STORE}, low
    assert "xrfhub.predictions" not in graph["xrfhub.build"] and "xrfhub.build" not in graph["xrfhub.runwrite"]


def test_the_core_never_imports_the_ml_side():
    # xrfhub.ml (plugins, training, intervals, evaluation) builds on the store's core; the core
    # (ingest, queries, QC, exports, stored prediction runs) must work without it, so every arrow
    # between the two points into the core
    graph = import_graph()
    wrong = {m: sorted(t for t in targets if t.startswith("xrfhub.ml"))
             for m, targets in graph.items() if not m.startswith("xrfhub.ml")}
    assert not {m: t for m, t in wrong.items() if t}
