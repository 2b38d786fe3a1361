"""The lock's files chosen and downloaded as `pip download` would, all packages at once.

A cold build used to spend most of its download in `pip download`, one package after another: an
index page fetched, thousands of links parsed and judged, then the file. The lock already bounds the
answer (its hashes name the only files that may be taken), so the kit asks each index's page of
every locked package at the same time (threads; PEP 691 JSON or PEP 503 HTML, read as pip reads
them), keeps the files whose SHA-256 the lock names, takes among them the one pip's rule takes, and
downloads it into the wheelhouse, hashed as it is written. pip's rule, as pip 26.3 (the kit's pin)
applies it:

- a candidate is a file listed on the package's page of the index, then of each extra index in
  order (after the wheels of local find-links folders, which pip reads first), whose name parses as a
  wheel of this project (or, when sources are allowed, as its sdist), whose version matches the
  lock's `==` pin, whose tags the target accepts, whose Requires-Python the target's Python satisfies
  (an invalid one counts as satisfied, as in pip), and whose hash the lock names;
- the best is the greatest (not yanked, version, priority of its most preferred tag in the target's
  ordered tag list, build tag); an sdist ranks below every wheel; the last found among equals (pip's
  resolver takes its finder's sorted list from the end).

`tests/test_wheelfetch.py` checks this against pip itself: the same files on real locks from PyPI for
several runtimes and both architectures, and on a local index of odd wheels served as JSON and as
HTML (tags, build tags, yanked files, Requires-Python, ties, fragment hashes).

What the kit cannot decide as pip would, it leaves to pip, per package, with the reason in the build
log: an sdist as the best candidate (pip builds it), a pin that is not `==`, a lock entry without a
sha256. What cannot be installed at all is `Unavailable`, with the exact reason (`explain`): no such
version, files none of which the lock names, a wheel for the target published after the lock, only
an sdist where this builder cannot compile, files for other targets only. What the kit downloads
itself it bounds (64 MiB for a page, 512 MiB for a file) and checks (the lock's hash, end to end): a
listed file whose bytes differ is a hash mismatch, never a fallback. `fetchphase` runs it for every
package at once, each on its own indexes; the requests are `httpget`'s (pip's trust and proxies).
Standard library plus `packaging`: runs in the build image and on the host.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from lambda_kit.common.digests import sha256_hex
from lambda_kit.common.errors import UsageError, hash_mismatch
from lambda_kit.net.httpget import Client, NetError, place
from lambda_kit.net.indexclient import LeaveToPip, PageError, link_sha256, project_page
from lambda_kit.steps.target import Target

FETCH_ENV = "LAMBDA_KIT_FETCH"  # kit (default) or pip: who chooses and downloads the lock's files
MAX_FILE = 512 << 20  # bytes of one file: twice what Lambda unpacks at most
CHUNK = 1 << 18
PART_PREFIX = ".fetch-"  # a download in progress, in the wheelhouse
STALE_PART = 24 * 3600  # seconds after which a dead run's partial download is removed


def setting(environ) -> str:
    """LAMBDA_KIT_FETCH: `kit` (or unset) or `pip`, which leaves every download to pip."""
    value = (environ.get(FETCH_ENV) or "").strip() or "kit"
    if value not in ("kit", "pip"):
        raise UsageError(
            f"{FETCH_ENV} is neither kit nor pip",
            value,
            hint="unset it (the kit chooses files as pip would, and leaves the rest to pip), or set pip",
        )
    return value


@dataclass
class Candidate:
    filename: str
    url: str  # or a local path, for a find-links folder's file
    version: Version
    rank: tuple  # the key pip maximises
    sha256: str
    local: bool = False


def file_candidate(
    filename: str,
    location: str,
    sha256: str | None,
    name: str,
    pin: SpecifierSet,
    target: Target,
    *,
    requires_python=None,
    yanked=None,
    local: bool = False,
) -> Candidate | None:
    """The candidate pip would make of one file, or None when pip would not consider it."""
    if not filename or filename != os.path.basename(filename) or filename.startswith(".") or "\0" in filename:
        return None
    project = canonicalize_name(name)
    build: tuple = ()
    if filename.endswith(".whl"):
        try:
            wheel_name, version, build, tags = parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion):
            return None
        if wheel_name != project:
            return None
        priority = target.priority
        ranks = [priority[tag] for tag in tags if tag in priority]
        if not ranks:
            return None
        pri = -min(ranks)
    elif target.sources_allowed and filename.endswith((".tar.gz", ".zip")):
        try:
            sdist_name, version = parse_sdist_filename(filename)
        except (InvalidSdistFilename, InvalidVersion):
            return None
        if sdist_name != project:
            return None
        pri = -len(target.tags)
    else:
        return None
    if not pin.contains(version, prereleases=True):
        return None
    if isinstance(requires_python, str) and requires_python:
        try:
            if not SpecifierSet(requires_python).contains(target.python):
                return None
        except InvalidSpecifier:
            pass  # pip ignores an invalid Requires-Python
    yank = -1 if yanked else 0  # JSON: false, true or a reason ("" is not yanked)
    return Candidate(filename, location, version, (yank, version, pri, build), sha256 or "", local)


class Unavailable(Exception):
    """A package the kit knows cannot be installed, and exactly why: (clause, hint kind)."""

    def __init__(self, clause: str, kind: str) -> None:
        super().__init__(clause)
        self.clause, self.kind = clause, kind


def project_of(filename: str) -> str | None:
    """The canonical project name of a wheel or sdist file name (None for anything else)."""
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        return str(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


def _address(page_url: str, href: str) -> tuple[str | None, str]:
    """A link's address (resolved against its page's) and its file name; (None, "") for a link that
    is not an address."""
    try:
        url = urllib.parse.urljoin(page_url, href)
        return url, urllib.parse.unquote(posixpath.basename(urllib.parse.urlsplit(url).path))
    except ValueError:
        return None, ""


def _version_of(filename: str, name: str) -> tuple[Version, bool] | None:
    """(version, is a wheel) of a file of this project, None for anything else."""
    try:
        if filename.endswith(".whl"):
            wheel = parse_wheel_filename(filename)
            return (wheel[1], True) if wheel[0] == canonicalize_name(name) else None
        sdist = parse_sdist_filename(filename)
        return (sdist[1], False) if sdist[0] == canonicalize_name(name) else None
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


def explain(
    name: str,
    pin: SpecifierSet,
    allowed: set[str],
    target: Target,
    listing: list[tuple[str, str, dict]],
    hosts: str,
    target_name: str,
) -> Unavailable:
    """Why no listed file can be taken for `name` (`listing`: (page address, sha256, item) of every
    link of its pages): no such version; files none of which the lock names; a wheel for the target
    that the lock does not list (published after it); only sdists, which this builder cannot
    compile; or files for other targets only (and which version has one)."""
    version = str(pin).lstrip("=")
    known, fitting_versions = set(), set()
    of_pin: list[tuple[str, str, bool, bool]] = []  # filename, sha256, wheel, fits the target
    for page_url, sha256, item in listing:
        filename = _address(page_url, item["url"])[1]
        parsed = _version_of(filename, name)
        if parsed is None:
            continue
        fits = (
            file_candidate(
                filename,
                "",
                None,
                name,
                SpecifierSet(f"=={parsed[0]}"),
                target,
                requires_python=item.get("requires-python"),
            )
            is not None
        )
        known.add(parsed[0])
        if fits and parsed[1]:
            fitting_versions.add(parsed[0])
        if pin.contains(parsed[0], prereleases=True):
            of_pin.append((filename, sha256, parsed[1], fits))
    where = f"{name}=={version}"
    if not of_pin:
        latest = f" (latest: {max(known)})" if known else ""
        return Unavailable(f"{where}: no such version on {hosts}{latest}", "pin")
    listed = [f for f in of_pin if f[1] in allowed]
    if not listed:
        return Unavailable(f"{where}: none of the {len(of_pin)} files on {hosts} has a hash the lock names", "hash")
    unlisted = [f for f in of_pin if f[1] not in allowed and f[2] and f[3]]
    if unlisted:
        return Unavailable(
            f"{where}: a wheel for {target_name} that the lock does not list exists ({unlisted[-1][0]}, "
            "published after the lock)",
            "relock",
        )
    newer = sorted(v for v in fitting_versions if v > Version(version))
    has_one = f" ({newer[-1]} has one)" if newer else ""
    sdists = [f[0] for f in listed if not f[2]]
    if sdists and not target.sources_allowed:
        return Unavailable(
            f"{where}: only a source distribution ({sdists[0]}), which this builder cannot compile{has_one}", "compile"
        )
    return Unavailable(f"{where}: files exist, none for {target_name}{has_one}", "pin")


def choose(
    name: str,
    version: str,
    hashes: tuple[str, ...],
    target: Target,
    client: Client,
    indexes: list[str],
    find_links: Sequence[Path] = (),
    target_name: str = "this runtime",
) -> Candidate:
    """pip's choice for `name==version` among the pages of `indexes` (and local find-links
    folders). Unavailable when no listed file can be taken (`explain` says why); a host that does
    not answer raises NetError; a page that cannot be used counts as none, as pip skips it."""
    pin = SpecifierSet(version if version.startswith("==") else f"=={version}")
    if pin and any(s.operator != "==" for s in pin):
        raise LeaveToPip(f"pin {version}")
    allowed = {h.split(":", 1)[1].lower() for h in hashes if h.lower().startswith("sha256:")}
    if not allowed:
        raise LeaveToPip("the lock gives no sha256")
    candidates: list[Candidate] = []
    for folder in find_links:
        for entry in os.scandir(folder):
            c = file_candidate(entry.name, entry.path, None, name, pin, target, local=True)
            if c is not None and entry.is_file():
                c.sha256 = sha256_hex(Path(entry.path))
                if c.sha256 in allowed:
                    candidates.append(c)
    pages, problems, listing = 0, [], []
    for index in indexes:
        try:
            page = project_page(client, index, name)
        except PageError as exc:
            problems.append(str(exc))
            continue
        if page is None:
            continue
        page_url, files = page
        pages += 1
        for item in files:
            # The lock's hashes first: a dict lookup per file, where judging every file's name and
            # tags (thousands for a package with a long history) is what makes pip slow. pip keeps
            # the candidates with an allowed hash whenever there is one, so nothing else can win.
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                continue
            digests = item.get("hashes")
            sha256 = (link_sha256(item["url"], digests if isinstance(digests, dict) else {}) or "").lower()
            listing.append((page_url, sha256, item))  # judged only if nothing can be taken (explain)
            if sha256 not in allowed:
                continue
            url, filename = _address(page_url, item["url"])
            c = (
                None
                if url is None
                else file_candidate(
                    filename,
                    url,
                    sha256,
                    name,
                    pin,
                    target,
                    requires_python=item.get("requires-python"),
                    yanked=item.get("yanked"),
                )
            )
            if c is not None:
                candidates.append(c)
    hosts = ", ".join(dict.fromkeys(place(i) for i in indexes)) or "no index"
    if not pages and not candidates:
        raise Unavailable(
            f"{name}: " + ("; ".join(problems) if problems else f"not on {hosts}"), "page" if problems else "pin"
        )
    best: Candidate | None = None
    for c in candidates:
        if best is None or c.rank >= best.rank:  # the last of equals: pip's resolver walks its sorted list from the end
            best = c
    if best is None or not best.filename.endswith(".whl") and not target.sources_allowed:
        raise explain(name, pin, allowed, target, listing, hosts, target_name)
    if not best.filename.endswith(".whl"):
        raise LeaveToPip(f"the best file is a source distribution ({best.filename}): pip builds it")
    return best


def download(client: Client, best: Candidate, name: str, wheelhouse: Path, stop: threading.Event) -> tuple[Path, bool]:
    """The chosen file into the wheelhouse, its SHA-256 checked against the choice (one of the lock's)
    before it takes its name. Returns (path, True when it was downloaded)."""
    dest = wheelhouse / best.filename
    if dest.is_file() and sha256_hex(dest) == best.sha256.lower():
        return dest, False  # as pip: a file already there with a matching hash is kept
    part: str | None
    fd, part = tempfile.mkstemp(prefix=PART_PREFIX, suffix=".part", dir=wheelhouse)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            response = open(best.url, "rb") if best.local else client.get(best.url)
            with response:
                status = getattr(response, "status", 200)  # a local file has none
                if status != 200:
                    raise Unavailable(f"{name}: {place(best.url)} answered HTTP {status} for {best.filename}", "page")
                while chunk := (response.read(CHUNK) if best.local else response.read1(CHUNK)):
                    if stop.is_set():
                        raise NetError("stopped", place(best.url))
                    size += len(chunk)
                    if size > MAX_FILE:
                        raise Unavailable(
                            f"{name}: the download of {best.filename} is larger than {MAX_FILE >> 20} MiB "
                            "(more than Lambda can unpack)",
                            "pin",
                        )
                    digest.update(chunk)
                    out.write(chunk)
        got = digest.hexdigest()
        if got != best.sha256.lower():
            raise Unavailable(hash_mismatch(f"the download of {name} ({best.filename})", got, best.sha256), "hash")
        os.replace(part, dest)
        part = None
        return dest, True
    finally:
        if part is not None:
            Path(part).unlink(missing_ok=True)


def sweep(wheelhouse: Path) -> None:
    """Partial downloads a killed run left (another run's current ones are younger than a day)."""
    now = time.time()
    for item in wheelhouse.glob(PART_PREFIX + "*.part"):
        try:
            if now - item.stat().st_mtime > STALE_PART:
                item.unlink()
        except OSError:
            pass
