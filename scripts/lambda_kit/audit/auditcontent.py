"""Audit rules that read what the zip holds: leftovers and secrets, the handler's module, the
lock's packages. Content is read with caps (zipreader): a handler module over HANDLER_PARSE_LIMIT
is not parsed (a warning says so), and a parser failure is a finding, never a traceback.
"""

from __future__ import annotations

import ast
import posixpath
import re

from packaging.utils import canonicalize_name, canonicalize_version

from lambda_kit.audit import secretowners
from lambda_kit.audit.auditcore import ERROR, WARNING, Collector, Context, encrypted
from lambda_kit.common import runtimes
from lambda_kit.common.errors import AuditError
from lambda_kit.lock import lockfile
from lambda_kit.zips.zipreader import ZipReader

# ast.parse needs a few hundred times the source's size in memory for repetitive code (measured:
# 128 KiB of `a;a;...` peaks near 130 MB): a module above this is not parsed.
HANDLER_PARSE_LIMIT = 128 << 10
SECRET_HEAD = 64 << 10  # bytes of a file read to look for key material

RULES = {
    "leftover-bytecode": (WARNING, "leave out .pyo files and whatever else is in __pycache__ but .pyc"),
    "leftover-pipfile": (WARNING, "leave Pipfile and Pipfile.lock out of the zip"),
    "leftover-secret": (ERROR, "remove secrets from the zip; use environment variables or a secrets manager"),
    "secret-in-dist": (
        WARNING,
        "a dependency ships these (its test keys or sample certificates): SLIM=1 drops packages' tests",
    ),
    "handler-module": (ERROR, "put the handler's module at the zip root (or set the handler to its dotted path)"),
    "handler-function": (ERROR, "define the handler function at the module's top level, or fix the handler name"),
    "handler-unparsed": (
        WARNING,
        "the handler's module was too large or deep to check: keep it small, import the rest",
    ),
    "lock-missing": (ERROR, "install every [packages] dependency into the zip (make package does)"),
    "lock-version": (ERROR, "rebuild the zip from the current Pipfile.lock"),
    "lock-dev": (ERROR, "leave [dev-packages] out of the zip"),
}

SECRET_NAMES = re.compile(
    r"(^|/)(\.env(\.[^/]*)?|id_(rsa|dsa|ecdsa|ed25519)|\.aws/credentials|\.netrc|\.pypirc|credentials\.json)$"
)
SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx")
HARMLESS_ENV = re.compile(r"\.env\.(example|sample|template|dist)$")
PRIVATE_KEY = re.compile(rb"-----BEGIN ([A-Z ]+ )?PRIVATE KEY-----")
AWS_SECRET = re.compile(rb"aws_secret_access_key\s*=")
DIST_INFO = re.compile(r"^([^/]+)-([^/-]+)\.dist-info/$")
LEFTOVER_NAME = re.compile(
    r"\.py[co]$|__pycache__/|(^|/)Pipfile|\.env|id_(rsa|dsa|ecdsa|ed25519)$|credentials|\.netrc$|\.pypirc$"
    r"|\.(pem|key|p12|pfx)$|(^|/)config$"
)  # every name a test below can flag matches this


def check_leftovers(ctx: Context, found: Collector) -> None:
    secrets = []
    for info in [i for i in ctx.files if LEFTOVER_NAME.search(i.filename)]:
        name = info.filename
        base = posixpath.basename(name)
        if name.endswith(".pyo") or ("__pycache__/" in name and not name.endswith(".pyc")):  # .pyc: bytecode.py
            found.add("leftover-bytecode", "compiled bytecode", name)
        if base in ("Pipfile", "Pipfile.lock"):
            found.add("leftover-pipfile", "Pipfile files in the zip", name)
        if HARMLESS_ENV.search(name):
            continue
        if SECRET_NAMES.search(name):
            secrets.append(info)
        elif (base.endswith(SECRET_SUFFIXES) or base in ("credentials", "config")) and not encrypted(info):
            head = ctx.read(info, SECRET_HEAD, found, whole=False) or b""
            if PRIVATE_KEY.search(head) or AWS_SECRET.search(head):
                secrets.append(info)
    owners = secretowners.owners(ctx, secrets, found) if secrets else {}
    for info in secrets:
        owner = owners.get(info.filename)
        if owner:
            found.add(
                "secret-in-dist", "secret-looking files that installed distributions ship", f"{info.filename} ({owner})"
            )
        else:
            found.add("leftover-secret", "files that look like secrets", info.filename)


def check_handler(ctx: Context, found: Collector) -> None:
    if not ctx.handler:
        return
    module, _, function = ctx.handler.rpartition(".")
    stem = module.replace(".", "/")
    names = ctx.zf.by_name
    source_name = next((n for n in (f"{stem}.py", f"{stem}/__init__.py") if n in names), None)
    if source_name is None:
        if any(n.startswith(stem + ".") and n.endswith(".so") for n in names):
            return  # a compiled module: its names cannot be read without importing it
        found.add("handler-module", f"the handler's module is not in the zip: {ctx.handler}", f"{stem}.py")
        return
    info = names[source_name]
    if encrypted(info):
        return
    if info.file_size > HANDLER_PARSE_LIMIT:
        found.add(
            "handler-unparsed",
            f"handler modules over {HANDLER_PARSE_LIMIT:,} bytes are not parsed",
            f"{source_name} ({info.file_size:,} bytes)",
        )
        return
    source = ctx.read(info, HANDLER_PARSE_LIMIT, found)
    if source is None:
        return  # zip-corrupt says why
    try:
        tree = ast.parse(source, filename=source_name)
    except (SyntaxError, ValueError) as exc:
        found.add("handler-function", f"the handler's module does not parse ({getattr(exc, 'msg', exc)})", source_name)
        return
    except (RecursionError, MemoryError) as exc:
        found.add(
            "handler-unparsed", "handler modules too deeply nested to parse", f"{source_name} ({type(exc).__name__})"
        )
        return
    if not _defines(tree, function):
        found.add("handler-function", f"{source_name} defines no top-level {function!r}", source_name)


def _defines(tree: ast.Module, name: str) -> bool:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*" or (alias.asname or alias.name.split(".")[0]) == name:
                    return True
        if isinstance(node, (ast.If, ast.Try)) and _defines(ast.Module(body=_children(node), type_ignores=[]), name):
            return True
    return False


def _children(node) -> list:
    body = list(node.body) + list(getattr(node, "orelse", []))
    for handler in getattr(node, "handlers", []):
        body += handler.body
    return body + list(getattr(node, "finalbody", []))


LAYER_ROOTS = re.compile(r"^python/(lib/python3\.\d+/site-packages/)?")


def _installed(infos, root: re.Pattern | None = None) -> dict[str, str]:
    """Distributions by their dist-info folders: at the zip root, or under a layer's python/."""
    installed = {}
    for info in [i for i in infos if ".dist-info/" in i.filename]:
        name = info.filename
        if root is not None:
            prefix = root.match(name)
            if not prefix:
                continue
            name = name[prefix.end() :]
        match = DIST_INFO.match(name.split("/")[0] + "/")
        if match:
            installed[canonicalize_name(match.group(1))] = match.group(2)
    return installed


def layer_infos(layer) -> list:
    """A layer zip's entries (its directory only, bounded like the function's)."""
    try:
        with ZipReader(layer) as lz:
            return lz.infos
    except Exception as exc:  # noqa: BLE001  OSError, ZipReadError, or any of zipfile's errors on a hostile layer
        raise AuditError("cannot read a layer zip", f"{layer}: {exc}", "give --layer a layer zip") from None


def check_lock(ctx: Context, found: Collector) -> None:
    if ctx.lock is None:
        return
    # A dependency may come from a layer (python/ or python/lib/python3.X/site-packages/).
    from_layers = [i for layer in ctx.layers for i in layer_infos(layer)]
    installed = {**_installed(from_layers, LAYER_ROOTS), **_installed(ctx.infos)}
    try:
        plan = lockfile.install_plan(ctx.lock, runtimes.target_environment(ctx.runtime, ctx.arch))
    except lockfile.LockError as exc:
        raise AuditError("the lock cannot be read", str(exc), exc.hint) from None
    wanted = {p.name: p.version[2:] for p in plan.index}
    wanted.update({p.name: None for p in plan.local + plan.urls})
    for name, version in sorted(wanted.items()):
        have = installed.get(name)
        if have is None:
            found.add(
                "lock-missing",
                "[packages] dependencies missing from the zip",
                f"{name}=={version}" if version else name,
            )
        elif version and canonicalize_version(have) != canonicalize_version(version):
            found.add("lock-version", "versions that differ from Pipfile.lock", f"{name} {have} (lock: {version})")
    for name in lockfile.develop_only(ctx.lock):
        if name in installed:
            found.add("lock-dev", "[dev-packages] in the zip", f"{name}=={installed[name]}")
