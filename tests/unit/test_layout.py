"""The package's layout holds: folders by stage with no import going in a circle, no module over
400 lines, nothing but the command line importing the orchestrator, every KitError kind in
common/errors.py, and the kit's line prefix spelled only by the reporter."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "scripts" / "lambda_kit"
MAX_LINES = 400
# Run without the kit's package on their path, so they spell the prefix themselves.
OWN_PREFIX = {"common/reporter.py", "steps/bytecode.py"}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def kit_imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every kit module the file imports, lazily or for type checking too."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("lambda_kit"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("lambda_kit"))
    return {m for m in found if m in known and known[m].name != "__init__.py"}


def test_no_import_goes_in_a_circle():
    known = modules()
    graph = {name: kit_imports(path, known) - {name} for name, path in known.items()}
    cycles, state = [], {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                cycles.append(trail[trail.index(other) :] + [other])
            elif other not in state:
                visit(other, [*trail, other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []
    assert len(graph) > 80  # the walk saw the package


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_nothing_but_the_command_line_imports_the_orchestrator():
    known = modules()
    importers = sorted(name for name, path in known.items() if "lambda_kit.package" in kit_imports(path, known))
    assert importers == ["lambda_kit.cli"]


def test_every_kit_error_kind_is_defined_in_errors():
    kinds = {"KitError"}
    errors = ast.parse((PACKAGE / "common" / "errors.py").read_text())
    for node in errors.body:
        if isinstance(node, ast.ClassDef) and {getattr(b, "id", "") for b in node.bases} & kinds:
            kinds.add(node.name)
    elsewhere = []
    for name, path in modules().items():
        if path == PACKAGE / "common" / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.ClassDef)
                and {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases} & kinds
            ):
                elsewhere.append(f"{name}.{node.name}")
    assert elsewhere == []
    assert {"UsageError", "LockError", "StepError", "CommandFailed", "AuditError"} <= kinds


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring constants in the tree (they may quote the kit's lines)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_the_line_prefix_is_the_reporters():
    spelled = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = str(path.relative_to(PACKAGE))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                if "lambda-kit: " in node.value and relative not in OWN_PREFIX:
                    spelled.append(f"{relative}:{node.lineno}")
    assert spelled == []
