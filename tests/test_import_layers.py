"""The import-layer contract of docs/architecture.md, checked over the source (AST, nothing imported):
no import cycles among dmlbench's modules and no import from a lower layer into a higher one.

Every import statement counts, wherever it is: module level, inside a function (a "lazy" import
still ties the two modules together) and under ``if TYPE_CHECKING``. ``from a.b import c``
is an edge to the module ``a.b.c`` when that is a module, else to ``a.b``. A package's
``__init__`` is the package's own node; importing ``a.b.c`` does not count as importing ``a.b``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "dmlbench"

#: Layer of each top-level module or subpackage of dmlbench (higher imports lower, never the reverse).
LAYERS = {
    # entry points: the command lines
    "cli": 6,
    "__main__": 6,
    "report": 6,
    "compare": 6,
    "explain": 6,
    # a docs tool: resolves the exp_configs as the command line does
    "recipe_tables": 6,
    # the similarity decomposition behind explain and the report's explanations
    "attribution": 3,
    # a search runs experiments (search/jobs.py builds a runner.Experiment per trial)
    "search": 5,
    # --estimate probes a fold through the runner and counts a search's work
    "estimate": 5,
    "runner": 4,
    "training": 3,
    "evaluation": 3,
    "records": 3,
    "models": 2,
    "data": 2,
    "registry": 2,
    "config": 2,
    # leaves: errors, files, process guards, the shared vocabulary
    "__init__": 1,
    "errors": 1,
    "fileio": 1,
    "integrity": 1,
    "progress": 1,
    "run_guard": 1,
    "user_plugins": 1,
    # constructor argument values against signatures (pydantic), read by the registry
    "argument_types": 1,
    "vocabulary": 1,
    "warning_display": 1,
    "writer_lock": 1,
}
#: Extensions: they import dmlbench's core (below the command lines); the core finds them only
#: through the registry (by module name, never by an import statement).
EXTENSIONS = ("plugins", "split_managers")

#: Cycles still to break, by name; a cycle passes if all its modules are in one allowance.
CYCLE_ALLOWANCES: dict[str, set[str]] = {}
#: Upward imports still to remove, by name: (importer prefix, imported prefix).
UPWARD_ALLOWANCES: dict[str, tuple[str, str]] = {
    "explain sends AVSL experiments to the AVSL explanation": ("dmlbench.explain", "dmlbench.plugins"),
}


def module_files(package_dir: Path) -> dict[str, Path]:
    """``{dotted module name: file}`` of every .py file under ``package_dir`` (itself a package)."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of the package (None: outside it)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imported(node: ast.AST, module: str, is_package: bool, modules: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        return {found for alias in node.names if (found := _known(alias.name, modules))}
    if not isinstance(node, ast.ImportFrom):
        return set()
    source = node.module or ""
    if node.level:  # relative: from the module's package, one level up per extra dot
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        source = ".".join(package + ([node.module] if node.module else []))
    found = set()
    for alias in node.names:
        full = f"{source}.{alias.name}"
        target = full if full in modules else _known(source, modules)
        if target:
            found.add(target)
    return found


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``, every import statement counted."""
    modules = module_files(package_dir)
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(tree):
            targets |= _imported(node, module, is_package, modules)
        graph[module] = targets - {module}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def layer_of(module: str) -> int | str:
    """The layer of a dmlbench module, "extension" for plugins and split managers."""
    top = module.split(".")[1] if "." in module else "__init__"
    if top in EXTENSIONS:
        return "extension"
    if top not in LAYERS:
        raise AssertionError(f"{module}: not in a layer; add {top!r} to LAYERS in {Path(__file__).name}")
    return LAYERS[top]


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs that break the layering: a lower layer importing a higher one,
    the core importing an extension, an extension importing a command line."""
    bad = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            source_layer, target_layer = layer_of(module), layer_of(target)
            if target_layer == "extension":
                wrong = source_layer != "extension"
            elif source_layer == "extension":
                wrong = target_layer == LAYERS["cli"]
            else:
                assert isinstance(source_layer, int) and isinstance(target_layer, int)
                wrong = target_layer > source_layer
            if wrong:
                bad.append((module, target))
    return bad


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_no_import_cycles() -> None:
    cycles = import_cycles(import_graph(PACKAGE_DIR))
    unexpected = [
        sorted(cycle)
        for cycle in cycles
        if not any(cycle <= allowed for allowed in CYCLE_ALLOWANCES.values())
    ]
    assert unexpected == [], f"import cycles: {unexpected}"


def test_no_upward_imports() -> None:
    unexpected = [
        (module, target)
        for module, target in upward_imports(import_graph(PACKAGE_DIR))
        if not any(_within(module, a) and _within(target, b) for a, b in UPWARD_ALLOWANCES.values())
    ]
    assert unexpected == [], f"imports against the layers (docs/architecture.md): {unexpected}"


def _write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "dmlbench"


def test_a_planted_cycle_through_a_function_local_import_is_found(tmp_path: Path) -> None:
    package = _write_package(
        tmp_path,
        {
            "dmlbench/__init__.py": "",
            "dmlbench/config/__init__.py": "",
            "dmlbench/config/a.py": "from dmlbench.config import b\n",
            "dmlbench/config/b.py": "def f():\n    from .c import x\n    return x\n",
            "dmlbench/config/c.py": "import dmlbench.config.a\nx = 1\n",
            "dmlbench/config/d.py": "from dmlbench.config.a import b\n",  # into the cycle, not part of it
        },
    )
    graph = import_graph(package)
    assert graph["dmlbench.config.b"] == {"dmlbench.config.c"}
    assert import_cycles(graph) == [{"dmlbench.config.a", "dmlbench.config.b", "dmlbench.config.c"}]


def test_a_planted_type_checking_cycle_is_found(tmp_path: Path) -> None:
    package = _write_package(
        tmp_path,
        {
            "dmlbench/__init__.py": "",
            "dmlbench/runner.py": "from dmlbench.training.fold import train\n",
            "dmlbench/training/__init__.py": "",
            "dmlbench/training/fold.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from dmlbench.runner import E\n"
            ),
        },
    )
    assert import_cycles(import_graph(package)) == [{"dmlbench.runner", "dmlbench.training.fold"}]


def test_planted_upward_imports_are_found(tmp_path: Path) -> None:
    package = _write_package(
        tmp_path,
        {
            "dmlbench/__init__.py": "",
            "dmlbench/runner.py": "from dmlbench.split_managers import m\n",
            "dmlbench/config/__init__.py": "",
            "dmlbench/config/keys.py": "def f():\n    import dmlbench.runner\n",
            "dmlbench/split_managers/__init__.py": "",
            "dmlbench/split_managers/m.py": "from dmlbench.config import keys\n",
            "dmlbench/plugins/__init__.py": "from dmlbench import cli\n",
            "dmlbench/cli.py": "from dmlbench import runner\n",
        },
    )
    assert upward_imports(import_graph(package)) == [
        ("dmlbench.config.keys", "dmlbench.runner"),
        ("dmlbench.plugins", "dmlbench.cli"),
        ("dmlbench.runner", "dmlbench.split_managers.m"),
    ]


def test_a_module_outside_every_layer_is_named() -> None:
    with pytest.raises(AssertionError, match="'newthing'"):
        layer_of("dmlbench.newthing.x")
