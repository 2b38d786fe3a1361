"""Which files a shared store holds for the lock's (Lock.file_digests): a stored file is taken only
under the lock's own hash of it and with a name that gives the lock's package and version."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")  # a wheelhouse file named by the store: no path parts


def names_package(file: str, name: str, version: str) -> bool | None:
    """Whether a wheel's or sdist's file name gives this package and version (None: not such a name)."""
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        canonicalize_name,
        parse_sdist_filename,
        parse_wheel_filename,
    )
    from packaging.version import InvalidVersion, Version

    try:
        parsed = parse_wheel_filename(file)[:2] if file.endswith(".whl") else parse_sdist_filename(file)
        return parsed[0] == canonicalize_name(name) and parsed[1] == Version(version)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


def stored_files(
    names: Iterable[str], files: dict[str, tuple[str, str]], wanted: set[str], refuse: Callable[[str, str], object]
) -> dict[str, str]:
    """Of a store's `wheels/<sha256>/<file>` names, one per wanted hash: the lock's hash fixes the
    bytes, and the package's own file name must name them (else `refuse` is told why)."""
    chosen: dict[str, str] = {}
    for name in sorted(names):
        parts = name.split("/")
        if len(parts) != 3 or parts[1] not in wanted or not FILE_NAME.fullmatch(parts[2]):
            continue
        if names_package(parts[2], *files[parts[1]]) is False:
            refuse(name, "has a file name for another package or version than the lock's for its hash")
        elif parts[1] not in chosen:
            chosen[parts[1]] = name
    return chosen
