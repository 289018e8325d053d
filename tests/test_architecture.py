"""The import graph of ``releases``: no cycle, and the layer contracts of pyproject.toml kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def strongly_connected(graph: grimp.ImportGraph, modules: set[str]) -> list[set[str]]:
    """Tarjan's algorithm over the direct imports between ``modules``: the cycles, as sets."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module) & modules:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(component)

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_module_of_releases_imports_itself_back_through_others():
    graph = grimp.build_graph("releases")
    # A package's __init__ re-exporting its own modules is not a cycle between concepts.
    modules = {m for m in graph.modules if not graph.find_children(m)}
    assert strongly_connected(graph, modules) == []


def test_a_cycle_would_be_found():
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    assert strongly_connected(graph, {"a", "b", "c"}) == [{"a", "b", "c"}]


def test_layer_contracts_are_kept():
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


#: Modules allowed over MAX_MODULE_LINES, each with the reason it must stay one module.
LONG_MODULES: dict[str, str] = {
    "registry/settings.py": "the one reader of the environment (STYLE.md: settings are read there and nowhere else)",
}
MAX_MODULE_LINES = 600
MAX_ROOT_MODULES = 12


def python_modules(top: Path) -> list[Path]:
    return [p for p in top.rglob("*.py") if "migrations" not in p.parts]


def test_the_root_of_releases_holds_only_the_layers_a_reader_needs_at_once():
    root_modules = sorted(p.name for p in (ROOT / "releases").glob("*.py"))
    assert len(root_modules) <= MAX_ROOT_MODULES, root_modules


def test_no_module_outside_migrations_is_longer_than_the_limit_without_a_reason():
    long = {
        str(p.relative_to(ROOT)): n
        for p in python_modules(ROOT / "releases") + python_modules(ROOT / "registry")
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert {path: n for path, n in long.items() if path not in LONG_MODULES} == {}


def layout_table_paths() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    paths = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            paths.update(part.strip(" `") for part in first_cell.split(",") if part.strip(" `").startswith("releases/"))
    return paths


def test_readme_layout_table_and_the_tree_agree():
    paths = layout_table_paths()
    rooms = {f"releases/{p.name}/" for p in (ROOT / "releases").iterdir() if (p / "__init__.py").exists()}
    rooms -= {"releases/migrations/"}
    assert sorted(rooms - paths) == [], "rooms missing from README's layout table"
    assert sorted(p for p in paths if not (ROOT / p).exists()) == [], "README names paths that do not exist"
