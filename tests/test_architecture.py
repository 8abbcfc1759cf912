"""The dependency rules of docs/DESIGN.md, read from the source with `ast`.

Every import counts: at module level, inside functions, under TYPE_CHECKING, and modules named
to importlib.import_module or __import__ as a constant. Production code is every top-level
package of the repository except the ones below; a new package is checked as soon as it exists.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Dev tooling run by the tests, chaos and the bench (never by the panel) is not production.
NOT_PRODUCTION = {"tests", "chaos", "devtools", ".venv", "var", "node_modules"}
# Configuration wires every app together; its imports are not dependencies of the apps.
CONFIGURATION = {"smmpanel.settings", "smmpanel.urls", "smmpanel.celery", "smmpanel.wsgi", "smmpanel.apps"}
# The layers of docs/DESIGN.md, lowest first: a package imports only packages of lower layers.
# The simulators stand just above the kernel: framework-free, they import only the kernel, and the
# `simulator` management command (providers) serves them.
LAYERS = [
    {"kernel"},
    # The panel configuration (name, currency, sign-up…) that every app above reads.
    {"siteconf"},
    {"simulators"},
    {"accounts"},
    # Display currencies and their rates: payments (wallets) quote with them.
    {"currencies"},
    {"providers"},
    {"catalog"},
    {"wallets", "webhooks"},
    {"orders"},
    {"support", "api", "content"},
    {"panel"},
]
WIRING = "smmpanel"  # beside the layers: it imports only the kernel, and nothing imports it
MAX_LINES = 600
# Modules being split up. This list only shrinks: a module leaves it once it is short.
TOO_LONG_FOR_NOW: set[str] = set()


@cache
def packages() -> frozenset[str]:
    return frozenset(
        path.name
        for path in ROOT.iterdir()
        if path.is_dir() and path.name not in NOT_PRODUCTION and (path / "__init__.py").is_file()
    )


def production_files() -> Iterator[Path]:
    for package in sorted(packages()):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "migrations" not in parts and "__pycache__" not in parts:
                yield path


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> Iterator[tuple[str, int]]:
    """(module, line) for every import in the file, relative ones resolved."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    return imports_in(path.read_text(), package=package, filename=str(path))


def imports_in(source: str, *, package: list[str], filename: str = "<source>") -> Iterator[tuple[str, int]]:
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                yield ".".join([*base, *filter(None, [node.module])]), node.lineno
            elif node.module:
                yield node.module, node.lineno
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in {"import_module", "__import__"} and isinstance(node.args[0].value, str):
                yield node.args[0].value, node.lineno


@cache
def dependencies() -> dict[str, dict[str, list[str]]]:
    """package -> package it imports -> where ("wallets/audit.py:12 imports orders.models")."""
    graph: dict[str, dict[str, list[str]]] = {package: {} for package in packages()}
    for path in production_files():
        importer = module_name(path)
        if importer in CONFIGURATION:
            continue
        source = importer.split(".")[0]
        for module, line in imported_modules(path):
            target = module.split(".")[0]
            if target in packages() and target != source:
                where = f"{path.relative_to(ROOT)}:{line} imports {module}"
                graph[source].setdefault(target, []).append(where)
    return graph


def imports_of(package: str, *others: str) -> list[str]:
    return [where for other in others for where in dependencies()[package].get(other, [])]


def cycles() -> list[list[str]]:
    """Each strongly connected group of two or more packages (Tarjan), as a sorted list."""
    graph = dependencies()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_app_is_found_as_production_code():
    expected = {
        "kernel",
        "smmpanel",
        "accounts",
        "providers",
        "catalog",
        "wallets",
        "orders",
        "api",
        "support",
        "panel",
    }
    assert expected <= packages()


def test_the_reader_sees_every_kind_of_import():
    source = """
import orders.models
from catalog import services
from . import checks
from ..selectors import wallet_balance
if TYPE_CHECKING:
    from accounts.models import User
def later():
    from support.models import Ticket
    return importlib.import_module("api.views"), __import__("panel")
"""
    found = {module for module, _line in imports_in(source, package=["wallets", "management"])}
    assert found == {
        "orders.models",
        "catalog",
        "wallets.management",
        "wallets.selectors",
        "accounts.models",
        "support.models",
        "api.views",
        "panel",
    }


def test_every_package_has_a_layer():
    placed = set().union(*LAYERS) | {WIRING}
    assert packages() - placed == set(), "give the new package its layer in LAYERS (and docs/DESIGN.md)"


@pytest.mark.parametrize("layer", range(len(LAYERS)))
def test_imports_only_go_down_the_layers(layer):
    below = set().union(*LAYERS[:layer])
    for package in sorted(LAYERS[layer]):
        assert imports_of(package, *(packages() - below)) == []


def test_the_wiring_imports_only_the_kernel_and_nothing_imports_it():
    assert imports_of(WIRING, *(packages() - {"kernel"})) == []
    assert [where for package in packages() for where in imports_of(package, WIRING)] == []


def test_the_kernel_imports_no_app():
    others = packages() - {"kernel"}
    assert imports_of("kernel", *others) == []


def test_no_import_cycle_between_packages():
    problems = cycles()
    details = [
        where for group in problems for package in group for where in imports_of(package, *(set(group) - {package}))
    ]
    assert problems == [], "\n".join(details)


def test_providers_imports_none_of_catalog_orders_or_wallets():
    assert imports_of("providers", "catalog", "orders", "wallets") == []


def test_wallets_imports_nothing_of_orders():
    assert imports_of("wallets", "orders") == []


def test_accounts_imports_none_of_the_apps_above_it():
    assert imports_of("accounts", "providers", "catalog", "wallets", "orders", "api", "support", "panel") == []


@pytest.mark.parametrize("package", ["kernel", "accounts", "providers", "catalog", "wallets", "orders", "api"])
def test_nothing_below_imports_support_or_the_panel(package):
    assert imports_of(package, "support", "panel") == []


def test_no_production_module_is_over_the_line_limit():
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in production_files()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert set(too_long) - TOO_LONG_FOR_NOW == set(), f"over {MAX_LINES} lines: {too_long}"
    shrunk = {name for name in TOO_LONG_FOR_NOW if name not in too_long}
    assert shrunk == set(), f"no longer over {MAX_LINES} lines (or gone): remove from TOO_LONG_FOR_NOW: {shrunk}"
