"""Turn a Pipfile.lock into an install plan for one target interpreter.

Only the `default` category ([packages]) is ever planned. Index packages become hash-pinned
requirement lines for `pip --require-hashes`; local path and VCS entries, which pip cannot
hash-check, are listed apart and installed as regular (never editable) packages. Markers are
evaluated with `packaging` for the Target (a build for another machine: its model of the runtime),
or against the interpreter running this code (a build on the target's own machine, where the build
image's Python is the runtime itself).

Runs inside the build container: standard library plus `packaging` only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import InvalidMarker, Marker
from packaging.utils import canonicalize_name

from lambda_kit.common.errors import LockError


@dataclass(frozen=True)
class IndexPackage:
    name: str
    version: str  # "==1.2.3"
    hashes: tuple[str, ...]
    index: str = ""  # the lock entry's `index`: the one source it may come from (pipenv's rule)

    def requirement_line(self) -> str:
        hashes = " ".join(f"--hash={h}" for h in self.hashes)
        return f"{self.name}{self.version} {hashes}"


@dataclass(frozen=True)
class LocalPackage:
    name: str
    path: str  # as written in the lock, relative to the Pipfile's folder


@dataclass(frozen=True)
class UrlPackage:
    name: str
    url: str  # a pip requirement URL: git+https://...@ref or https://.../x.tar.gz


@dataclass
class InstallPlan:
    index: list[IndexPackage] = field(default_factory=list)
    local: list[LocalPackage] = field(default_factory=list)
    urls: list[UrlPackage] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, marker) not for this target
    sources: list[dict] = field(default_factory=list)  # the lock's [[source]] entries (name, url, verify_ssl), in order

    def requirements_text(self) -> str:
        return "".join(p.requirement_line() + "\n" for p in self.index)

    def names(self) -> list[str]:
        return sorted([p.name for p in self.index] + [p.name for p in self.local] + [p.name for p in self.urls])


@dataclass(frozen=True)
class Lock:
    """A lock as the kit reads it, whatever tool wrote it: the lock model (Pipfile.lock's shape,
    lockmodel.py) and the walks of it the stages make. `data` is the model itself: what the image
    receives as its Pipfile.lock, and what a model's JSON is made of; it is never changed."""

    data: dict = field(default_factory=dict)

    @property
    def entries(self) -> dict[str, dict]:
        """The `default` category's entries ([packages]: what the function needs), by name."""
        default = self.data.get("default")
        return {n: e for n, e in default.items() if isinstance(e, dict)} if isinstance(default, dict) else {}

    @property
    def sources(self) -> list[dict]:
        """The lock's indexes, the first one the default."""
        meta = self.data.get("_meta")
        sources = meta.get("sources") if isinstance(meta, dict) else None
        return [s for s in sources if isinstance(s, dict)] if isinstance(sources, list) else []

    @property
    def search_all_sources(self) -> bool:
        """Every package from every source in order (a requirements.txt's extra indexes)."""
        meta = self.data.get("_meta")
        return isinstance(meta, dict) and meta.get("search-all-sources") is True

    @property
    def recorded_hash(self) -> str:
        """The hash of the project file the lock was made from, as its tool recorded it."""
        return self.data["_meta"]["hash"]["sha256"]

    @property
    def format(self) -> str:
        """The file the model was read from: Pipfile.lock, or another format's name (lockmodel)."""
        meta = self.data.get("_meta")
        return (meta.get("lock-format") if isinstance(meta, dict) else None) or "Pipfile.lock"

    def names(self) -> set[str]:
        """The canonical names of `default`."""
        default = self.data.get("default")
        return {canonicalize_name(n) for n in default} if isinstance(default, dict) else set()

    def file_digests(self) -> dict[str, tuple[str, str]]:
        """The SHA-256 of every file the lock's [packages] name: its package's name and version."""
        return {
            h.split(":", 1)[1]: (name, str(e.get("version", "")).lstrip("="))
            for name, e in self.entries.items()
            if isinstance(e.get("hashes"), list)
            for h in e["hashes"]
            if isinstance(h, str) and h.startswith("sha256:")
        }

    def local_paths(self) -> list[tuple[str, str]]:
        """(name, path) of each local path dependency, by name."""
        return [(n, e["path"]) for n, e in sorted(self.entries.items()) if "path" in e]


def load_pipfile_lock(path: Path) -> Lock:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LockError(f"no lock file ({path})", "run `pipenv lock` and commit Pipfile.lock") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise LockError(f"Pipfile.lock is not valid JSON ({path}: {exc})", "run `pipenv lock` again") from None
    problem = shape_problem(data)
    if problem:
        key, what = problem
        raise LockError(f"malformed lock: {key} {what} ({path})", "run `pipenv lock` again and commit Pipfile.lock")
    return Lock(data)


HASH_FORM = re.compile(r"^[a-z0-9]+:[0-9a-fA-F]+$")


def shape_problem(data) -> tuple[str, str] | None:
    """The first place where `data` is not the shape pipenv writes: (key, what is wrong)."""
    if not isinstance(data, dict):
        return "(top level)", f"is {_kind(data)}, not an object"
    meta = data.get("_meta")
    if not isinstance(meta, dict):
        return "_meta", "is missing" if meta is None else f"is {_kind(meta)}, not an object"
    lock_hash = meta.get("hash")
    if not isinstance(lock_hash, dict) or not isinstance(lock_hash.get("sha256"), str):
        return "_meta.hash.sha256", "is missing or not a string"
    sources = meta.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, dict) and isinstance(s.get("url"), str) for s in sources):
        return "_meta.sources", "is not a list of sources with a url each"
    if "default" not in data:
        return "default", "is missing (the [packages] section)"
    for category, entries in data.items():
        if category == "_meta":
            continue
        if not isinstance(entries, dict):
            return category, f"is {_kind(entries)}, not an object"
        for name, entry in entries.items():
            problem = _entry_problem(entry)
            if problem:
                return f"{category}.{name}", problem
    return None


def _entry_problem(entry) -> str | None:
    if not isinstance(entry, dict):
        return f"is {_kind(entry)}, not an object"
    for key in ("version", "markers", "path", "file", "ref", "git", "hg", "svn", "bzr", "index"):
        if key in entry and not isinstance(entry[key], str):
            return f"has {key} {_kind(entry[key])}, not a string"
    hashes = entry.get("hashes", [])
    if not isinstance(hashes, list) or not all(isinstance(h, str) and HASH_FORM.match(h) for h in hashes):
        return "has hashes that are not a list of algorithm:hex strings"
    return None


def _kind(value) -> str:
    names = {type(None): "null", dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), "a number")


def _applies(name: str, entry: dict, environment: dict | None) -> tuple[bool, str]:
    marker_text = entry.get("markers") or ""
    if not marker_text:
        return True, ""
    try:
        return Marker(marker_text).evaluate(environment), marker_text
    except InvalidMarker as exc:
        raise LockError(f"invalid marker for {name} ({marker_text!r}: {exc})", "run `pipenv lock` again") from None


def _vcs_url(name: str, entry: dict) -> str | None:
    for vcs in ("git", "hg", "svn", "bzr"):
        if vcs in entry:
            url = entry[vcs]
            if not url.startswith(f"{vcs}+"):
                url = f"{vcs}+{url}"
            ref = entry.get("ref")
            if ref:
                url = f"{url}@{ref}"
            return f"{name} @ {url}"
    return None


def install_plan(lock: Lock, environment: dict | None = None) -> InstallPlan:
    """The install plan for the lock's [packages] on the interpreter `environment` describes
    (None: the running one)."""
    result = InstallPlan(sources=[s for s in lock.sources if s.get("url")])
    for raw_name, entry in sorted(lock.data.get("default", {}).items()):
        name = canonicalize_name(raw_name)
        if not isinstance(entry, dict):
            raise LockError(f"unexpected lock entry for {raw_name} ({entry!r})", "run `pipenv lock` again")
        applies, marker = _applies(name, entry, environment)
        if not applies:
            result.skipped.append((name, marker))
            continue
        if "path" in entry:
            # Editable or not in the Pipfile, the zip always gets a regular install.
            result.local.append(LocalPackage(name, entry["path"]))
            continue
        vcs = _vcs_url(name, entry)
        if vcs:
            result.urls.append(UrlPackage(name, vcs))
            continue
        if "file" in entry:
            result.urls.append(UrlPackage(name, f"{name} @ {entry['file']}"))
            continue
        version = entry.get("version", "")
        if not version.startswith("==") or version == "*":
            raise LockError(
                f"{name} is not pinned in Pipfile.lock ({version or 'no version'})",
                "run `pipenv lock` with the target Python so every package gets an exact version",
            )
        hashes = tuple(sorted(entry.get("hashes") or ()))
        if not hashes:
            raise LockError(
                f"{name}{version} has no hashes in Pipfile.lock",
                "run `pipenv lock` again; the kit installs index packages only with their lock hashes",
            )
        result.index.append(IndexPackage(name, version, hashes, entry.get("index", "")))
    return result


def develop_only(lock: Lock) -> list[str]:
    """Names that only [dev-packages] has: they must never reach the zip."""
    return sorted({canonicalize_name(n) for n in lock.data.get("develop", {})} - lock.names())


def missing_from_default(lock: Lock, pipfile_packages: list[str]) -> list[str]:
    """Names in the Pipfile's [packages] that the lock's `default` does not have."""
    locked = lock.names()
    return sorted(n for n in pipfile_packages if canonicalize_name(n) not in locked)
