"""The architecture holds (STYLE.md "The house"): every module imports on its own, in a fresh
interpreter, and no import forms a circle — neither between packages (`store` importing
`sandbox` which imports `store` back) nor between files.

A circle is how `python -c "import frsync.console"` once failed with "partially initialized
module": whether it breaks depends on which module is imported first, so only a fresh
interpreter per module shows it. Imports inside functions and under TYPE_CHECKING count: they
are the same dependency, only deferred.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp
import pytest

SRC = Path(__file__).parents[1] / "src"
# Not importable on their own by design: alembic runs the migration scripts inside its own
# context, and `python -m frsync` runs the CLI.
NOT_MODULES = ("frsync.__main__", "frsync.store.migrations")

# One interpreter that never imports frsync itself forks a child per module, which imports
# just that module: as far as frsync goes each child starts as fresh as `python -c "import
# frsync.X"`. The third-party libraries are loaded once, before the forks, so that a child
# costs ~20 ms instead of a second. Prints the modules that failed.
_IMPORT_EACH = """
import importlib, os, sys, traceback
for library in ("alembic.command", "argparse", "asyncpg", "httptools", "httpx", "jinja2",
                "msgspec", "pytest", "redis.asyncio", "rich", "sqlalchemy.ext.asyncio",
                "sqlite3", "starlette.applications", "uvicorn.protocols.http.httptools_impl"):
    importlib.import_module(library)
assert not any(name.startswith("frsync") for name in sys.modules)
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failed.append(name)
print("FAILED:", " ".join(failed))
"""


def module_names() -> list[str]:
    """Every package and module under src/frsync, by its dotted name."""
    names = []
    for path in sorted((SRC / "frsync").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if not name.startswith(NOT_MODULES):
            names.append(name)
    return names


@pytest.mark.slow  # a subprocess collects or imports the whole project
def test_every_package_and_module_imports_on_its_own() -> None:
    names = module_names()
    assert {"frsync", "frsync.console", "frsync.store", "frsync.app"} <= set(names)
    run = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *names],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-8000:]
    assert run.stdout.strip() == "FAILED:", f"{run.stdout}\n{run.stderr[-8000:]}"


def import_graph() -> dict[str, set[str]]:
    """module → the frsync modules it imports (anywhere in the file)."""
    graph = grimp.build_graph("frsync", cache_dir=None)
    modules = {m for m in graph.modules if not m.startswith(NOT_MODULES)}
    return {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}


def package_of(module: str) -> str:
    """The top-level part of frsync a module belongs to: `frsync.store` for
    `frsync.store.sqlite`, `frsync.app` for `frsync.app`."""
    return ".".join(module.split(".")[:2])


def circles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected parts of `graph` with more than one node (Tarjan), each
    sorted: every node in one reaches every other, so each holds at least one circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.append(member)
                if member == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def shown(part: list[str], graph: Mapping[str, Iterable[str]]) -> str:
    """A strongly connected part as its arrows, e.g. `a → b, b → a`."""
    members = set(part)
    arrows = [f"{a} → {b}" for a in part for b in sorted(graph.get(a, ())) if b in members]
    return ", ".join(arrows)


def test_no_package_imports_one_that_imports_it_back() -> None:
    packages: dict[str, set[str]] = {}
    for module, imported in import_graph().items():
        targets = packages.setdefault(package_of(module), set())
        targets |= {package_of(m) for m in imported} - {package_of(module)}
    assert len(packages) > 10
    found = circles(packages)
    assert found == [], "\n".join(shown(part, packages) for part in found)


def test_no_files_import_each_other_in_a_circle() -> None:
    graph = import_graph()
    assert len(graph) > 50
    found = circles(graph)
    assert found == [], "\n".join(shown(part, graph) for part in found)


def test_the_circle_finder_finds_circles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
