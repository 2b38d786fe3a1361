"""A requirements.txt read as a lock: what `pip install --require-hashes -r` accepts, nothing less.

Every requirement is pinned with `==` and carries at least one `--hash=sha256:...`; else the file is
refused naming each line that is not (the shape `pip-compile --generate-hashes`, `uv pip compile
--generate-hashes` and `uv export` write). Markers are evaluated for the target. `-i/--index-url`
replaces the default index and `--extra-index-url` adds indexes that pip searches for every
package, as pip does; `-r` includes another file. Options that would change what pip installs
otherwise (-e, -c, --find-links, --no-index, ...) are refused: the zip would not be what the file
says. There is no project file to be out of date with.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from lambda_kit.common.errors import LockError, UsageError
from lambda_kit.lock import lockmodel

HINT = "pin and hash every line: `pip-compile --generate-hashes`, `uv pip compile --generate-hashes` or `uv export`"
IGNORED = {"--require-hashes", "--prefer-binary", "--pre"}  # what the kit does anyway, or nothing for a pinned lock
WITH_VALUE = {
    "-i": "index",
    "--index-url": "index",
    "--extra-index-url": "extra",
    "-r": "include",
    "--requirement": "include",
}


def read(path: Path, environment: dict, selection: lockmodel.Selection) -> dict:
    if selection.groups or selection.extras or selection.package:
        raise UsageError(
            "LOCK_GROUPS, LOCK_EXTRAS and LOCK_PACKAGE do not apply to a requirements file",
            selection.describe(),
            hint="the file is what the zip gets; unset them",
        )
    model = lockmodel.new_model(path, lockmodel.REQUIREMENTS)
    indexes: dict[str, list[str]] = {"index": [], "extra": []}
    bad: list[str] = []
    entries: dict[str, dict] = {}
    for where, line in _lines(path, set(), indexes, bad):
        problem = _add(line, environment, entries)
        if problem:
            bad.append(f"{where}: {problem}")
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise LockError(f"{path.name} is not a hash-pinned lock ({shown})", HINT)
    first = indexes["index"][-1] if indexes["index"] else lockmodel.PYPI
    lockmodel.source_name(model, first)
    model["_meta"]["sources"][0]["name"] = "index"  # the file's default index (not always PyPI)
    for url in indexes["extra"]:
        lockmodel.source_name(model, url)
    model["_meta"]["search-all-sources"] = bool(indexes["extra"])  # pip asks every index for every package
    model["default"] = dict(sorted(entries.items()))
    return model


def _lines(path: Path, seen: set, indexes: dict, bad: list):
    """(file:line, requirement text) for each requirement, options applied; includes followed."""
    if path.resolve() in seen:
        return
    seen.add(path.resolve())
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LockError(f"cannot read {path.name} ({path}: {exc.strerror})", HINT) from None
    number, pending, start = 0, "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        stripped = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical, pending = (pending + stripped).strip(), ""
        if not logical:
            continue
        where = f"{path.name}:{start}"
        words = shlex.split(logical)
        if words[0].startswith("-"):
            option, eq, value = words[0].partition("=")
            args = ([value] if eq else []) + words[1:]
            if option in IGNORED or (option == "--only-binary" and args == [":all:"]):
                continue
            kind = WITH_VALUE.get(option)
            if kind is None or len(args) != 1:
                bad.append(f"{where}: {option} (an option the kit does not apply)")
            elif kind == "include":
                yield from _lines(path.parent / args[0], seen, indexes, bad)
            else:
                indexes[kind].append(args[0])
            continue
        yield where, logical


def _add(line: str, environment: dict, entries: dict) -> str | None:
    """Adds the line's requirement to `entries`; what is wrong with it otherwise."""
    words = line.split()
    hashes, rest = [], []
    while words:
        word = words.pop(0)
        if word == "--hash" and words:  # `--hash sha256:...`, as optparse takes it too
            word = "--hash=" + words.pop(0)
        if word.startswith("--hash="):
            digest = lockmodel.sha256_of(word.split("=", 1)[1])
            if digest:
                hashes.append(digest)
        else:
            rest.append(word)
    text = " ".join(rest)
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return f"{text[:60]} (not a requirement)"
    if requirement.marker is not None and not requirement.marker.evaluate(dict(environment, extra="")):
        return None
    name = canonicalize_name(requirement.name)
    if not hashes:
        return f"{text[:60]} (no --hash)"
    if requirement.url:
        entries[name] = {"file": f"{requirement.url.split('#')[0]}#sha256={hashes[0].split(':', 1)[1]}"}
        return None
    specifiers = list(requirement.specifier)
    if len(specifiers) != 1 or specifiers[0].operator not in ("==", "===") or "*" in specifiers[0].version:
        return f"{text[:60]} (not pinned with ==)"
    entries[name] = lockmodel.index_entry(specifiers[0].version, hashes, extras=requirement.extras)
    return None
