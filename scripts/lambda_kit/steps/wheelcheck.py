"""When pip finds no file for a locked package: every such package at once, each with why.

pip stops at the first requirement it cannot satisfy. Here the same pip, with the same settings
(index, CA, target tags), is asked again without that one until the rest resolve (`--dry-run`, no
download), then, per package, which versions the index has at all and which have a wheel for the
target (`pip index versions`). No index host is named here: pip's configuration decides.

Runs where the build steps run (container or host): standard library plus `packaging`.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

NO_DISTRIBUTION = re.compile(r"No matching distribution found for (\S+)")
ONLY_BINARY = "--only-binary=:all:"

# pip(args) -> (exit code, output): the build's pip with its network settings and target options.
Pip = Callable[[list[str]], tuple[int, str]]


def not_found(output: str) -> list[str]:
    """Canonical names pip said it found no distribution for."""
    return [
        canonicalize_name(re.split(r"[=<>!~;\[ ]", m.group(1), maxsplit=1)[0]) for m in NO_DISTRIBUTION.finditer(output)
    ]


def all_missing(pip: Pip, pins: dict[str, str], target_args: list[str]) -> list[str]:
    """Every name in `pins` (name -> version) pip cannot find a file for, asking again without
    each one it names, at most once per package."""
    remaining = dict(pins)
    missing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lambda-kit-dry-") as tmp:
        for _ in range(len(pins) + 1):
            if not remaining:
                break
            code, output = pip(
                [
                    "install",
                    "--dry-run",
                    "--no-deps",
                    "--ignore-installed",
                    "--quiet",
                    "--target",
                    tmp,
                    *target_args,
                    *(f"{n}=={v}" for n, v in sorted(remaining.items())),
                ]
            )
            named = [n for n in not_found(output) if n in remaining]
            if code == 0 or not named:
                break
            for name in named:
                remaining.pop(name)
                missing.append(name)
    return sorted(missing)


def _versions(pip: Pip, name: str, args: list[str]) -> list[Version] | None:
    code, output = pip(["index", "versions", "--json", *args, name])
    start = output.find("{")
    if code != 0 or start < 0:
        return None
    try:
        listed = json.loads(output[start : output.rindex("}") + 1]).get("versions", [])
    except ValueError:
        return None
    out = []
    for text in listed:
        try:
            out.append(Version(text))
        except InvalidVersion:
            continue
    return out


def explain(pip: Pip, name: str, version: str, target_args: list[str], target_name: str) -> str:
    """One clause for one package: the pin does not exist, or exists without a wheel for the target
    (and whether a newer version has one)."""
    pinned = Version(version)
    every = _versions(pip, name, [])
    if not every:
        return f"{name} is not on the package index"
    if pinned not in every:
        return f"{name}=={version} does not exist on the package index (latest: {max(every)})"
    if not target_args:
        return f"{name}=={version} has no file pip can install here"
    wheels = _versions(pip, name, [a for a in target_args if a != ONLY_BINARY] + [ONLY_BINARY]) or []
    newer = sorted(v for v in wheels if v > pinned)
    clause = f"{name}=={version} exists without a wheel for {target_name}"
    return clause + (f" ({newer[-1]} has one)" if newer else "")


def report(pip: Pip, pins: dict[str, str], target_args: list[str], target_name: str) -> list[str]:
    """A clause per package pip cannot install (empty when all resolve)."""
    return [explain(pip, name, pins[name], target_args, target_name) for name in all_missing(pip, pins, target_args)]
