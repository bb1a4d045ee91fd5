"""The engine's shape: no import circles (not even under TYPE_CHECKING), no private names
imported across modules, layers that only import downwards, and no platform imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cx_pipelines.engine

ENGINE = Path(cx_pipelines.engine.__file__).resolve().parent
PACKAGE_ROOT = ENGINE.parents[1]
# each layer may import only the layers before it (and itself)
LAYERS = ["language", "evaluation", "mechanisms", "loading", "tools"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(ENGINE.rglob("*.py"))}


def imports_of(path: Path) -> list[tuple[str, list[str], int]]:
    """Every import in a module, at any depth (functions, ``if TYPE_CHECKING:`` blocks):
    (imported module, names imported from it, line)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
    return found


def engine_edges() -> dict[str, set[str]]:
    """Module → engine modules it imports (``from pkg import sub`` is an edge to pkg.sub)."""
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for module, names, _ in imports_of(path):
            if not module.startswith("cx_pipelines.engine"):
                continue
            submodules = [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES]
            if submodules:
                edges[name].update(submodules)
            if not names or len(submodules) < len(names):
                edges[name].add(module)
    return edges


def test_the_walk_sees_every_package():
    for package in ["", *LAYERS, "evaluation.batch", "evaluation.record", "mechanisms"]:
        assert "cx_pipelines.engine" + (f".{package}" if package else "") in MODULES


def test_no_import_circle_among_engine_modules():
    edges = engine_edges()
    # the walk sees imports at any depth (the mechanism registry, a function-level import)
    assert "cx_pipelines.engine.mechanisms" in edges["cx_pipelines.engine.loading.mechanisms"]
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_no_module_imports_a_private_name_of_another_module():
    offenders = []
    for name, path in MODULES.items():
        for module, names, line in imports_of(path):
            if not module.startswith("cx_pipelines"):
                continue
            for imported in names:
                if imported.startswith("_") and not imported.startswith("__"):
                    offenders.append(f"{name}:{line} imports {imported} from {module}")
    assert offenders == []


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[2] in LAYERS else None


def test_layers_only_import_downwards():
    offenders = []
    for name, targets in engine_edges().items():
        source = _layer(name)
        if source is None:  # the engine's face and examples may use every layer
            continue
        for target in targets:
            layer = _layer(target)
            if target == "cx_pipelines.engine":
                offenders.append(f"{name} imports the engine's face")
            elif layer is not None and LAYERS.index(layer) > LAYERS.index(source):
                offenders.append(f"{name} ({source}) imports {target} ({layer})")
    assert offenders == []


@pytest.mark.parametrize(
    "forbidden",
    [
        "dagster",
        "cx_pipelines.warehouse",
        "cx_pipelines.world",
        "cx_pipelines.decisioning",
        "cx_pipelines.defs",
    ],
)
def test_engine_imports_no_platform_code(forbidden):
    offenders = [
        f"{name}:{line} imports {module}"
        for name, path in MODULES.items()
        for module, names, line in imports_of(path)
        if module == forbidden
        or module.startswith(forbidden + ".")
        or (module == "cx_pipelines" and forbidden.split(".")[-1] in names)
    ]
    assert offenders == []


def test_every_mechanism_kind_is_one_registered_module():
    from cx_pipelines.engine.mechanisms import KINDS
    from cx_pipelines.engine.mechanisms.base import MechanismKind

    for name, kind in KINDS.items():
        assert issubclass(kind, MechanismKind)
        assert kind.KIND == name
        assert kind.__module__ == f"cx_pipelines.engine.mechanisms.{name}"
        for method in ("load", "evaluate_batch", "evaluate_record"):
            assert getattr(kind, method) is not getattr(MechanismKind, method), (name, method)
