"""The images get whole folders of the kit (contract.TOOLS_PACKAGES, BUILD_PACKAGES, SMOKE_PACKAGES):
what each set holds must import nothing of the kit outside the set, and at module level nothing but
the standard library and `packaging` (the image's tools venv has pip and packaging; the base image's
python3, which runs netconfig and the smoke runner, has only the standard library)."""

import ast
import sys
from pathlib import Path

import pytest
from helpers import ROOT
from lambda_kit.common import contract

PACKAGE = ROOT / "scripts" / "lambda_kit"
# Per image: its folders, the modules it runs, and what of outside the standard library they may import
SETS = {
    "tools": (contract.TOOLS_PACKAGES, ["lambda_kit.net.netconfig"], ()),
    "build": (contract.BUILD_PACKAGES, ["lambda_kit.steps.incontainer", "lambda_kit.net.netconfig"], ("packaging",)),
    "smoke": (contract.SMOKE_PACKAGES, ["lambda_kit.net.netconfig", "lambda_kit.invoke.smoke_runner"], ()),
}


def imports(path: Path):
    """(module imported, at module level) for every import of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    top |= {id(n) for node in tree.body if isinstance(node, ast.Try | ast.If) for n in node.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in top
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, id(node) in top
            if node.module.split(".")[0] == "lambda_kit":  # `from lambda_kit.x import y`: y may be a module
                for alias in node.names:
                    yield f"{node.module}.{alias.name}", id(node) in top


def module_file(module: str) -> Path:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


@pytest.mark.parametrize("name", sorted(SETS))
def test_what_an_image_gets_imports_nothing_else_of_the_kit(name):
    packages, entries, third_party = SETS[name]
    files = [PACKAGE / "__init__.py"] + [f for p in packages for f in sorted((PACKAGE / p).rglob("*.py"))]
    outside = [
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in files
        for module, _ in imports(path)
        if module.split(".")[0] == "lambda_kit" and module.split(".")[1:2] and module.split(".")[1] not in packages
    ]
    assert outside == []
    assert len(files) > len(packages)  # the folders are there and hold modules
    # What the image runs, followed through every import (lazy ones too): the standard library and
    # the set's third-party packages only, at module level.
    seen, todo, foreign = set(), list(entries), []
    while todo:
        module = todo.pop()
        path = module_file(module)
        if module in seen or not path.is_file():
            continue
        seen.add(module)
        for imported, top_level in imports(path):
            root = imported.split(".")[0]
            if root == "lambda_kit":
                todo.append(imported)
            elif top_level and root not in sys.stdlib_module_names and root not in third_party:
                foreign.append(f"{path.relative_to(PACKAGE)}: {imported}")
    assert foreign == []
    assert set(entries) <= seen


def test_the_images_sets_share_the_tools_layers_folders():
    assert set(contract.TOOLS_PACKAGES) <= set(contract.BUILD_PACKAGES) & set(contract.SMOKE_PACKAGES)
