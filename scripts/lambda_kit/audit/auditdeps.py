"""The dependency-closure rule, read from the zip as `pip check` reads an environment.

Every distribution installed in the zip (its `*.dist-info/METADATA`) declares what it needs
(Requires-Dist). Each requirement whose marker holds on the target runtime, with the extras asked
for (by the lock, or by another requirement in the zip), must be met by a distribution in the zip
or in the given layers, at a version its specifier admits. What only the Lambda runtime itself
ships (boto3, botocore and their dependencies, outside the zip) meets it with a warning: that copy
changes with the runtime, without notice.

Requirements, markers, versions and the metadata's headers are read with `packaging`. Each METADATA
is read up to METADATA_CAP bytes; the work is one pass per (distribution, extra) pair, each at
most once.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from lambda_kit.audit.auditcore import ERROR, WARNING, Collector, Context, encrypted
from lambda_kit.common import runtimes
from lambda_kit.lock import lockfile

METADATA_CAP = 1 << 20  # far above any real METADATA (botocore's: 4 KB; the largest seen: ~200 KB of README)
# Shipped by every Python runtime outside the zip (FACTS.md): boto3, botocore and what they need.
RUNTIME_PACKAGES = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"})
DIST_INFO = re.compile(r"^(?:python/(?:lib/python3\.\d+/site-packages/)?)?([^/]+)-([^/-]+)\.dist-info/METADATA$")

RULES = {
    "deps-missing": (
        ERROR,
        "add the needed package to the Pipfile (or correct the marker that leaves it out), lock and build "
        "again; or give the layer that holds it (--layer)",
    ),
    "deps-version": (ERROR, "lock again (pipenv lock) so the versions agree, and build again"),
    "deps-runtime": (
        WARNING,
        "add it to the Pipfile to ship the version your code was tested with (the runtime's copy changes "
        "without notice)",
    ),
    "deps-unread": (WARNING, "the distribution's metadata is damaged: reinstall it (build the zip again)"),
}


class Dist:
    def __init__(self, name: str, version: str, requires: list[str]) -> None:
        self.name, self.version, self.requires = name, version, requires

    def label(self) -> str:
        return f"{self.name} {self.version}"


def check_closure(ctx: Context, found: Collector) -> None:
    dists = _read_dists(ctx, found)
    if not dists:
        return
    provided = {**_layer_versions(ctx), **{key: d.version for key, d in dists.items()}}
    environment = runtimes.target_environment(ctx.runtime, ctx.arch)
    why_absent = _lock_reasons(ctx, environment)  # name -> why the lock leaves it out ("" when it lists it)
    # (distribution, extra) pairs to judge: every distribution without extras, and those the lock names
    todo = deque([(key, "") for key in dists] + [(k, e) for k, e in _lock_extras(ctx) if k in dists])
    done: set[tuple[str, str]] = set()
    while todo:
        key, extra = todo.popleft()
        if (key, extra) in done or key not in dists:
            continue
        done.add((key, extra))
        dist = dists[key]
        for text in dist.requires:
            req = _requirement(text, dist, found)
            if req is None or not _applies(req, environment, extra, dist, found):
                continue
            wanted = canonicalize_name(req.name)
            todo += [(wanted, canonicalize_name(e)) for e in req.extras]
            _judge(dist, req, wanted, provided, why_absent, found)


def _judge(dist: Dist, req: Requirement, wanted: str, provided: dict, why_absent, found: Collector) -> None:
    have = provided.get(wanted)
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    needs = f"{dist.label()} requires {req.name}{extras}{req.specifier}"
    if have is None:
        if wanted in RUNTIME_PACKAGES:
            found.add("deps-runtime", "requirements only the Lambda runtime's own copy would meet", needs)
            return
        reason = why_absent(wanted)
        found.add(
            "deps-missing",
            "installed distributions need packages the zip does not hold",
            f"{needs}: not in the zip{'; ' + reason if reason else ''}",
        )
        return
    if not req.specifier:
        return
    try:
        version = Version(have)
    except InvalidVersion:
        found.add("deps-unread", "distributions whose metadata cannot be read", f"{wanted} (version {have!r})")
        return
    if not req.specifier.contains(version, prereleases=True):
        found.add(
            "deps-version",
            "installed distributions need another version of a package in the zip",
            f"{needs}: the zip holds {wanted} {have}",
        )


def _requirement(text: str, dist: Dist, found: Collector) -> Requirement | None:
    try:
        return Requirement(text)
    except InvalidRequirement:
        found.add("deps-unread", "distributions whose metadata cannot be read", f"{dist.label()}: {text[:200]!r}")
        return None


def _applies(req: Requirement, environment: dict, extra: str, dist: Dist, found: Collector) -> bool:
    if extra and (req.marker is None or "extra" not in str(req.marker)):
        return False  # judged once already, with the distribution itself
    if req.marker is None:
        return True
    try:
        return req.marker.evaluate({**environment, "extra": extra})
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        found.add("deps-unread", "distributions whose metadata cannot be read", f"{dist.label()}: {str(req)[:200]!r}")
        return False


def _read_dists(ctx: Context, found: Collector) -> dict[str, Dist]:
    dists: dict[str, Dist] = {}
    for info in ctx.files:
        match = DIST_INFO.match(info.filename)
        if not match or encrypted(info):
            continue
        folder_name, folder_version = canonicalize_name(match.group(1)), match.group(2)
        data = ctx.read(info, METADATA_CAP, found, whole=False)
        if data is None:
            continue  # zip-corrupt names it
        try:
            raw, _ = parse_email(data)
        except Exception:  # noqa: BLE001  parse_email on hostile bytes: any of email's errors
            found.add("deps-unread", "distributions whose metadata cannot be read", info.filename)
            continue
        name = canonicalize_name(raw.get("name") or folder_name)
        dists[name] = Dist(name, raw.get("version") or folder_version, list(raw.get("requires_dist") or []))
    return dists


def _layer_versions(ctx: Context) -> dict[str, str]:
    from lambda_kit.audit.auditcontent import (
        LAYER_ROOTS,
        _installed,
        layer_infos,
    )  # one reader of installed distributions

    return _installed([info for layer in ctx.layers for info in layer_infos(layer)], LAYER_ROOTS)


def _lock_extras(ctx: Context) -> list[tuple[str, str]]:
    if ctx.lock is None:
        return []
    return [
        (canonicalize_name(name), canonicalize_name(extra))
        for name, entry in ctx.lock.entries.items()
        for extra in entry.get("extras") or []
        if isinstance(extra, str)
    ]


def _lock_reasons(ctx: Context, environment: dict) -> Callable[[str], str]:
    """Why the lock leaves a package out: by a marker, only in its development dependencies, or not
    listed at all ('' when it lists it, or when there is no lock to ask)."""
    if ctx.lock is None:
        return lambda name: ""
    python = f"python{ctx.runtime.version}"
    lock_name = ctx.lock.format  # the file read
    try:
        plan = lockfile.install_plan(ctx.lock, environment)
    except lockfile.LockError:
        return lambda name: ""  # check_lock reports an unreadable lock
    reasons = dict.fromkeys(ctx.lock.names(), "")
    for dev in lockfile.develop_only(ctx.lock):
        reasons[canonicalize_name(dev)] = f"{lock_name} has it only in its development dependencies"
    for skipped, marker in plan.skipped:
        reasons[canonicalize_name(skipped)] = f"{lock_name} skips it for {python} by its marker ({marker})"
    return lambda name: reasons.get(name, f"not in {lock_name}")
