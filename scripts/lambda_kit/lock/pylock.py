"""pylock.toml (PEP 751) read by `packaging.pylock`: the packages whose markers apply to the target,
with the lock's default groups (or LOCK_GROUPS) and LOCK_EXTRAS, as the standard's installer steps
decide (`Pylock.select`). The file is the lock: there is nothing it could be out of date with.

Which file of a package is installed is the kit's usual choice (the runtime's exact tags among the
files the lock lists, by their hashes), so `select` is given every tag the lock's wheels carry and
only decides which packages. Every file must carry a sha256 hash: a lock without hashes is refused,
as pip's --require-hashes would refuse it. pipenv writes `environments = []`: read as absent.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from packaging import pylock
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from lambda_kit.common.errors import LockError, UsageError
from lambda_kit.lock import lockmodel

HINT = "lock again with hashes (`uv export --format pylock.toml`, `pip lock`, `pdm export -f pylock`)"


def read(path: Path, environment: dict, selection: lockmodel.Selection) -> dict:
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    if re.search(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?==\S+.*\\$", text, re.MULTILINE):
        raise LockError(
            f"{path.name} is a requirements file, not a PEP 751 lock ({path})",
            "older uv exported requirements under any name: `uv export --format pylock.toml -o pylock.toml`, "
            "or build from the lock it came from (LOCK=uv.lock)",
        )
    data = lockmodel.load_toml(path, HINT)
    if data.get("environments") == []:
        del data["environments"]
    try:
        lock = pylock.Pylock.from_dict(data)
    except pylock.PylockUnsupportedVersionError as exc:
        raise LockError(f"{path.name} has a lock-version the kit's packaging does not read ({exc})", HINT) from None
    except pylock.PylockValidationError as exc:
        if "hash" in str(exc):  # PEP 751 requires hashes for every file: the unhashed lock's own line
            raise LockError(f"{path.name} has files without hashes ({exc})", HINT) from None
        raise LockError(f"malformed {path.name}: {exc} ({path})", HINT) from None
    if selection.package:
        raise UsageError("LOCK_PACKAGE is for uv.lock workspaces", selection.package, hint="unset it for a pylock.toml")
    model = lockmodel.new_model(path, lockmodel.PYLOCK)
    tags = _all_tags(lock)
    try:
        chosen = list(
            lock.select(
                environment=environment,
                tags=tags,
                extras=selection.extras or None,
                dependency_groups=selection.groups or None,
            )
        )
    except pylock.PylockSelectError as exc:
        raise LockError(f"{path.name} cannot be installed for this runtime ({exc})", HINT) from None
    unhashed, elsewhere = [], []
    for package, _ in chosen:
        name = canonicalize_name(package.name)
        host = _foreign_host(package)
        if host:
            elsewhere.append(f"{name} from {host}")
        entry = _entry(model, package)
        if entry is None:
            unhashed.append(f"{name}{'==' + str(package.version) if package.version else ''}")
            continue
        model["default"][name] = entry
    if unhashed:
        raise LockError(f"{path.name} has packages without sha256 hashes ({', '.join(sorted(unhashed))})", HINT)
    if elsewhere and not (os.environ.get("INDEX_URL") or os.environ.get("EXTRA_INDEX_URLS")):
        raise LockError(
            f"{path.name} names no index for files it locks elsewhere than PyPI ({', '.join(sorted(elsewhere))})",
            "the kit takes each file from a package index, by its hash: lock with the index recorded (`index`), "
            "or set INDEX_URL (or EXTRA_INDEX_URLS) to an index that serves them",
        )
    if selection.groups is None or not selection.groups:
        _develop(lock, model, environment, tags)
    return lockmodel.finish(model)


def _foreign_host(package: pylock.Package) -> str:
    """The host of a file of an index package that names no `index` and is not on PyPI's file host
    (a CDN, a private server): the kit fetches a package's files from indexes only. Empty otherwise."""
    if package.index or package.vcs or package.directory or package.archive:
        return ""
    for file in [package.sdist, *(package.wheels or ())]:
        host = urlsplit(file.url).hostname if file is not None and file.url else None
        if host and host != "files.pythonhosted.org":
            return host
    return ""


def _all_tags(lock: pylock.Pylock) -> list[Tag]:
    tags = {Tag("py3", "none", "any")}
    for package in lock.packages:
        for wheel in package.wheels or ():
            try:
                tags |= set(parse_wheel_filename(_file_name(wheel))[3])
            except InvalidWheelFilename:
                continue
    return sorted(tags, key=str)


def _file_name(file) -> str:
    if file.name:
        return file.name
    return PurePosixPath(file.url or file.path or "").name


def _entry(model: dict, package: pylock.Package) -> dict | None:
    """The model's entry for a selected package; None when a file it lists has no sha256."""
    if package.vcs is not None:
        vcs = package.vcs
        if not vcs.url:
            return {"path": vcs.path}
        return {"file": lockmodel.vcs_url(vcs.type, vcs.url, vcs.commit_id, vcs.subdirectory or "")}
    if package.directory is not None:
        return {"path": package.directory.path}
    files = [package.archive, package.sdist, *(package.wheels or ())]
    files = [f for f in files if f is not None]
    hashes = []
    for file in files:
        digest = file.hashes.get("sha256") if file.hashes else None
        if not digest:
            return None
        hashes.append(f"sha256:{digest.lower()}")
    if package.archive is not None:
        archive = package.archive
        where = archive.url or archive.path
        return {"file": f"{where}#sha256={archive.hashes['sha256']}"} if archive.url else {"path": archive.path}
    index = lockmodel.source_name(model, package.index) if package.index else ""
    return lockmodel.index_entry(str(package.version), hashes, index)


def _develop(lock: pylock.Pylock, model: dict, environment: dict, tags: list[Tag]) -> None:
    """Names only the lock's other dependency groups add (a development group's tools)."""
    groups = [g for g in lock.dependency_groups or () if g not in (lock.default_groups or ())]
    if not groups:
        return
    try:
        every = {
            canonicalize_name(p.name): p
            for p, _ in lock.select(environment=environment, tags=tags, dependency_groups=groups)
        }
    except pylock.PylockSelectError:
        return
    for name, package in sorted(every.items()):
        if name not in model["default"]:
            model["develop"][name] = {"version": f"=={package.version}"}
