"""Whether an extension module is optional to its package: every import of it in the package's own
Python files (its tests aside) sits in the body of a `try` whose handler catches ImportError (or a
parent of it). numba imports its OpenMP and TBB threading layers that way and runs without them,
so a library those need and Lambda lacks costs nothing at import (a warning, not an error).

Read with `ast`, never imported; a file that does not parse counts as an unguarded import.
"""

from __future__ import annotations

import ast
import posixpath
from collections.abc import Iterable

# A library the loader cannot find raises ImportError itself: ModuleNotFoundError (its subclass) misses it.
CATCHING = {"ImportError", "Exception", "BaseException"}
TEST_FOLDERS = {"tests", "test", "testing"}
MAX_SOURCE = 1 << 20  # a Python file read for this, at most (bytes)


def source_files(module: str, names: Iterable[str]) -> list[str]:
    """The .py files of the module's top-level package that may import it (tests aside)."""
    top = module.split(".")[0] + "/"
    return sorted(
        n for n in names if n.startswith(top) and n.endswith(".py") and not TEST_FOLDERS & set(n.split("/")[:-1])
    )


def _catches(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return handler.type is None or any(
        (isinstance(k, ast.Name) and k.id in CATCHING) or (isinstance(k, ast.Attribute) and k.attr in CATCHING)
        for k in kinds
    )


def _package_of(path: str) -> str:
    folder = posixpath.dirname(path)
    return folder.replace("/", ".")


def _imported(node: ast.AST, package: str) -> list[str]:
    """The dotted names an import statement (or importlib.import_module("...")) brings in."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            parent = ".".join(parts[: len(parts) - node.level + 1]) if node.level <= len(parts) else ""
            base = f"{parent}.{base}" if base else parent
        return [base] + [f"{base}.{a.name}" for a in node.names]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
            return [node.args[0].value]
    return []


def _imports_of(tree: ast.AST, module: str, package: str):
    """(guarded, node) for each import of `module` in the tree; guarded: inside a try body whose
    handlers catch ImportError."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, guarded = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Call)) and module in _imported(node, package):
            yield guarded, node
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            inner = guarded or any(_catches(h) for h in node.handlers)
            stack += [(child, inner) for child in node.body]
            stack += [(child, guarded) for part in (node.handlers, node.orelse, node.finalbody) for child in part]
        else:
            stack += [(child, guarded) for child in ast.iter_child_nodes(node)]


def is_optional(module: str, sources: Iterable[tuple[str, bytes | None]]) -> bool:
    """True when `module` is imported at least once in `sources` ((path, content or None when it
    could not be read)) and every such import is guarded."""
    leaf = module.rsplit(".", 1)[-1].encode()
    found = 0
    for path, source in sources:
        if source is None:
            return False  # not read (too big, damaged): it may import the module unguarded
        if leaf not in source:
            continue
        try:
            tree = ast.parse(source, filename=path)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False
        for guarded, _ in _imports_of(tree, module, _package_of(path)):
            if not guarded:
                return False
            found += 1
    return found > 0
