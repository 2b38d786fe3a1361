"""uv.lock read as uv installs it for production (`uv sync --no-default-groups`, `uv export --no-dev`):
the project's dependencies, followed through the lock for the target, without development groups
unless LOCK_GROUPS names them, with the extras LOCK_EXTRAS names. The project itself (and any
workspace member not depended on) is not installed: its code is SRC's.

Staleness is uv's own decision: `uv lock --check --offline` in the project (uv pinned and
hash-checked in the helper's environment, scripts/uv-requirements.txt, installed when the lock is a
uv.lock). uv answers 1 when the lock no longer satisfies pyproject.toml (it could not resolve it
offline, or would write another lock); the kit says so in one line.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from packaging.markers import InvalidMarker, Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from lambda_kit.common import reporter
from lambda_kit.common.errors import LockError, StepError, UsageError
from lambda_kit.common.processes import output_of, start_group, stop_group
from lambda_kit.lock import lockmodel
from lambda_kit.lock.lockfile import Lock

HINT = "run `uv lock` and commit uv.lock"
SHAPES = {
    "version": str,
    "source": dict,
    "dependencies": list,
    "optional-dependencies": dict,
    "dev-dependencies": dict,
    "sdist": dict,
    "wheels": list,
    "resolution-markers": "list[str]",
}


def read(path: Path, environment: dict, selection: lockmodel.Selection) -> dict:
    data = lockmodel.load_toml(path, HINT)
    if data.get("version") != 1:
        raise LockError(f"uv.lock version {data.get('version')!r} is not one the kit reads ({path})", HINT)
    packages = data.get("package", [])
    lockmodel.check_shapes(path, packages, SHAPES, HINT)
    by_name: dict[str, list[dict]] = {}
    for package in packages:
        by_name.setdefault(canonicalize_name(package["name"]), []).append(package)
    root = _root(path, data, by_name, selection)
    _check_selection(root, selection)
    model = lockmodel.new_model(path, lockmodel.UV)

    def walk(starts: list[tuple[dict, frozenset]]) -> dict[int, tuple[dict, set]]:
        """Packages reached from `starts` (package, extras asked of it), with every extra asked of each."""
        reached: dict[int, tuple[dict, set]] = {}
        queue = list(starts)
        while queue:
            package, extras = queue.pop()
            seen = reached.get(id(package))
            if seen is not None and extras <= seen[1]:
                continue
            asked = (seen[1] if seen else set()) | set(extras)
            reached[id(package)] = (package, asked)
            edges = list(package.get("dependencies", []))
            for extra in asked:
                edges += package.get("optional-dependencies", {}).get(extra, [])
            queue += [_follow(path, edge, by_name, environment) for edge in edges if _applies(path, edge, environment)]
        return reached

    starts = [(root, frozenset(canonicalize_name(e) for e in selection.extras))]
    groups = root.get("dev-dependencies", {})
    for group in selection.groups:
        starts += [
            _follow(path, e, by_name, environment) for e in groups.get(group, []) if _applies(path, e, environment)
        ]
    production = walk(starts)
    for package, extras in sorted(production.values(), key=lambda p: canonicalize_name(p[0]["name"])):
        if package is root:
            continue
        entry = _entry(path, model, package, extras)
        if entry is not None:
            model["default"][canonicalize_name(package["name"])] = entry
    dev = walk(
        [_follow(path, e, by_name, environment) for g in groups.values() for e in g if _applies(path, e, environment)]
    )
    for package, _ in dev.values():
        name = canonicalize_name(package["name"])
        if name not in model["default"] and package is not root:
            model["develop"][name] = {"version": f"=={package.get('version', '')}"}
    return lockmodel.finish(model)


def _root(path: Path, data: dict, by_name: dict, selection: lockmodel.Selection) -> dict:
    """The package whose production dependencies the zip gets: LOCK_PACKAGE's member, else the
    project at the lock's folder."""
    if selection.package:
        found = by_name.get(canonicalize_name(selection.package))
        if not found:
            raise UsageError(
                "LOCK_PACKAGE is not a package of uv.lock",
                selection.package,
                hint=f"members: {', '.join(_members(data)) or '(none)'}",
            )
        return found[0]
    for package in data.get("package", []):
        source = package.get("source", {})
        if source.get("editable") == "." or source.get("virtual") == ".":
            return package
    members = _members(data)
    raise LockError(
        f"uv.lock has no project at its folder ({path}; workspace members: {', '.join(members) or 'none'})",
        "set LOCK_PACKAGE to the member whose dependencies the function needs",
    )


def _members(data: dict) -> list[str]:
    return sorted(data.get("manifest", {}).get("members", []))


def _check_selection(root: dict, selection: lockmodel.Selection) -> None:
    groups, extras = root.get("dev-dependencies", {}), root.get("optional-dependencies", {})
    unknown = [g for g in selection.groups if g not in groups] + [
        e for e in selection.extras if canonicalize_name(e) not in extras
    ]
    if unknown:
        raise UsageError(
            f"uv.lock's {root['name']} has no such group or extra",
            ", ".join(unknown),
            hint=f"groups: {', '.join(groups) or '(none)'}; extras: {', '.join(extras) or '(none)'}",
        )


def _applies(path: Path, edge: dict, environment: dict) -> bool:
    marker = edge.get("marker")
    if not marker:
        return True
    try:
        return Marker(marker).evaluate(dict(environment, extra=""))
    except InvalidMarker as exc:
        raise LockError(
            f"malformed uv.lock: marker of {edge.get('name')} ({marker!r}: {str(exc).splitlines()[0]}; {path})", HINT
        ) from None


def _follow(path: Path, edge: dict, by_name: dict, environment: dict) -> tuple[dict, frozenset]:
    """The locked package an edge names (by version and source when the lock has several), with the extras asked."""
    name = canonicalize_name(edge.get("name", ""))
    found = by_name.get(name, [])
    if len(found) > 1:
        found = [
            p
            for p in found
            if ("version" not in edge or p.get("version") == edge["version"])
            and ("source" not in edge or p.get("source") == edge["source"])
        ]
    if len(found) > 1:  # forked resolution: the one whose Python range takes the target
        python = environment.get("python_full_version", "")
        found = [p for p in found if _python_ok(p, python)] or found
    if not found:
        raise LockError(f"malformed uv.lock: {edge.get('name')} is depended on but not locked ({path})", HINT)
    return found[0], frozenset(canonicalize_name(e) for e in edge.get("extra", []))


def _python_ok(package: dict, python: str) -> bool:
    for marker in package.get("resolution-markers", []):
        try:
            if Marker(marker).evaluate({"python_full_version": python, "python_version": python.rsplit(".", 1)[0]}):
                return True
        except Exception:  # noqa: BLE001  markers on other variables than the Python version: not decisive here
            return True
    return not package.get("resolution-markers")


def _entry(path: Path, model: dict, package: dict, extras: set) -> dict | None:
    name, source = package["name"], package.get("source", {})
    if "registry" in source:
        files = [package.get("sdist")] + list(package.get("wheels", []))
        hashes = [h for f in files if isinstance(f, dict) and (h := lockmodel.sha256_of(f.get("hash", "")))]
        if not hashes:
            raise LockError(f"{name}=={package.get('version')} has no sha256 hashes in uv.lock ({path})", HINT)
        registry = source["registry"]
        index = lockmodel.source_name(model, registry) if "://" in registry else ""
        return lockmodel.index_entry(package["version"], hashes, index, extras)
    if "git" in source:
        parts = urlsplit(source["git"])
        query = parse_qs(parts.query)
        base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return {"file": lockmodel.vcs_url("git", base, parts.fragment, query.get("subdirectory", [""])[0])}
    if "url" in source:
        files = [package.get("sdist")] + list(package.get("wheels", []))
        digest = next((h for f in files if isinstance(f, dict) and (h := lockmodel.sha256_of(f.get("hash", "")))), None)
        return {"file": source["url"] + (f"#sha256={digest.split(':', 1)[1]}" if digest else "")}
    for kind in ("path", "directory", "editable"):
        if kind in source:
            return {"path": source[kind]}
    if "virtual" in source:
        return None  # a workspace member that is not a package: nothing to install, its dependencies are
    raise LockError(f"malformed uv.lock: {name} has a source the kit does not know ({source}; {path})", HINT)


# ---- staleness: uv's own check ----


class UvCheck:
    """`uv lock --check --offline`, started at once in a process group of its own; `verify` waits."""

    def __init__(self, lock: Path) -> None:
        lock = lock.resolve()
        self.lock, self.verified, self.process = lock, False, None
        try:
            import uv

            binary = uv.find_uv_bin()
        except (ImportError, FileNotFoundError) as exc:
            self.missing = f"{type(exc).__name__}: {exc}"
            return
        self.missing = ""
        argv = [
            binary,
            "lock",
            "--check",
            "--offline",
            "--no-progress",
            "--color",
            "never",
            "--project",
            str(lock.parent),
        ]
        python = _host_python_fits(lock)
        if python:
            argv += ["--python", python]
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"}
        self.process = start_group(argv, env, cwd=lock.parent)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_group(self.process)
        if self.process is not None and self.process.stdout:
            self.process.stdout.close()

    def verify(self, lock: Lock, say: Callable[[str], None], log: Callable[[str], object] | None = None) -> None:
        if self.verified:
            return
        if self.process is None:
            raise StepError(
                f"the helper's environment has no uv to check uv.lock ({sys.executable}: {self.missing})",
                "build through the kit's Makefile (it installs scripts/uv-requirements.txt for a uv.lock), or add "
                "them to LAMBDA_KIT_VENV",
            )
        output = output_of(self, log)
        code = self.process.returncode
        if code == 1:
            raise StepError(f"uv.lock is out of date with pyproject.toml ({self.lock})", HINT)
        required = re.search(r"Required uv version `([^`]+)` does not match the running version `([^`]+)`", output)
        if required:
            raise StepError(
                f"uv.lock cannot be checked: pyproject.toml requires uv {required.group(1)}, the kit checks with uv "
                f"{required.group(2)}",
                f"widen [tool.uv] required-version to take {required.group(2)} (e.g. "
                f'">={required.group(1).strip("=<>~!*. ")}"), then `uv lock --check`',
            )
        if code != 0:
            first = next(
                (line.strip() for line in output.splitlines() if line.startswith("error:")), output.strip()[-200:]
            )
            if "interpreter" in first.lower() or "python" in first.lower():
                needs = lockmodel.load_toml(self.lock, HINT).get("requires-python", "?")
                raise StepError(
                    f"uv could not check uv.lock ({first})",
                    f"uv needs a Python for requires-python {needs} to check the lock: install one, or set UV_PYTHON "
                    "to it",
                )
            raise StepError(f"uv could not check uv.lock ({first})", "run `uv lock --check` in the project to see why")
        say(reporter.line("uv.lock verified against pyproject.toml (uv lock --check)"))
        self.verified = True


def _host_python_fits(lock: Path) -> str:
    """The helper's Python for uv when the lock's requires-python takes it; else uv finds one."""
    try:
        data = lockmodel.load_toml(lock, HINT)
        if SpecifierSet(data.get("requires-python", "")).contains(".".join(map(str, sys.version_info[:3]))):
            return sys.executable
    except (LockError, InvalidSpecifier):
        pass
    return ""
