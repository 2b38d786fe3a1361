"""One package of the corpus for one Lambda target: which file pip would install, its dependency
closure, the wheels (cached by SHA-256), the zip the kit builds of them, and the kit's audit of it.

Everything the kit itself does is the kit's code: index pages and downloads go through
`indexclient` and `wheelfetch` (pip's trust, pip's choice of file), wheels are unpacked by
`wheelinstall`, console scripts dropped and the tree packed by `buildsteps`, the zip audited by
`audit.audit_zip` (what `check` runs). Only the dependency resolution is pip's own: `pip install
--dry-run --report` with the target's options (`Target.pip_args`), which reads each
dependency's metadata from the index without downloading its wheel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from lambda_kit.audit import audit  # noqa: E402  (needs scripts/ on sys.path)
from lambda_kit.common import runtimes  # noqa: E402
from lambda_kit.common.errors import KitError  # noqa: E402
from lambda_kit.lock.lockfile import Lock  # noqa: E402
from lambda_kit.net import httpget, indexclient  # noqa: E402
from lambda_kit.steps import buildsteps, wheelfetch, wheelinstall  # noqa: E402
from lambda_kit.steps.target import Target as KitTarget  # noqa: E402

INDEX = "https://pypi.org/simple"
PAGE_TTL = 24 * 3600  # seconds an index page is reused from the cache
RESOLVE_TTL = 24 * 3600  # seconds a resolution is reused
RESOLVE_TIMEOUT = 240  # seconds pip may take to resolve one package
PIP_SOURCES = ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_CONSTRAINT", "PIP_CONFIG_FILE")


@dataclass(frozen=True)
class Target:
    runtime: str  # "3.12"
    arch: str  # "x86_64" or "arm64"

    @property
    def key(self) -> str:
        return f"{self.runtime}-{self.arch}"

    @property
    def label(self) -> str:
        return f"python{self.runtime} {self.arch}"

    @property
    def pip_args(self) -> list[str]:
        return self.kit_target.pip_args()

    @property
    def kit_target(self) -> KitTarget:
        return KitTarget(runtimes.lookup(self.runtime), self.arch)


def parse_target(text: str) -> Target:
    """ "3.12-x86_64" (or "python3.12-arm64") as a Target; ValueError for anything else."""
    runtime, _, arch = text.strip().partition("-")
    runtime = runtime.removeprefix("python")
    if runtime not in runtimes.RUNTIMES or arch not in runtimes.ARCHITECTURES:
        raise ValueError(f"not a target: {text!r} (runtime-arch, e.g. 3.12-x86_64 or 3.11-arm64)")
    return Target(runtime, arch)


def client() -> httpget.Client:
    """The kit's HTTP client with pip's extra CA bundle (PIP_CERT), as the local builder has it."""
    cafiles = [v for v in (os.environ.get("PIP_CERT"),) if v]
    return httpget.Client(httpget.HttpSettings(timeout=30.0, cafiles=cafiles))


def _fresh_json(path: Path, ttl: float):
    try:
        if time.time() - path.stat().st_mtime < ttl:
            return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    return None


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out)
    os.replace(tmp, path)


def page(cache: Path, http: httpget.Client, name: str) -> list[dict]:
    """The files of a project's index page ([] when the index has none), kept a day in the cache."""
    path = cache / "pages" / f"{canonicalize_name(name)}.json"
    files = _fresh_json(path, PAGE_TTL)
    if files is None:
        found = indexclient.project_page(http, INDEX, name)
        files = [] if found is None else [_page_file(found[0], f) for f in found[1]]
        files = [f for f in files if f["filename"].endswith(".whl")]  # wheels only are ever installed here
        _write_json(path, files)
    return files


def _page_file(page_url: str, entry: dict) -> dict:
    url = urllib.parse.urljoin(page_url, entry.get("url", "")).split("#")[0]
    return {
        "filename": urllib.parse.unquote(url.rsplit("/", 1)[-1]),
        "url": url,
        "sha256": (entry.get("hashes") or {}).get("sha256", ""),
        "requires-python": entry.get("requires-python"),
        "yanked": entry.get("yanked"),
        "size": entry.get("size"),
    }


def chosen_file(files: list[dict], name: str, target: Target) -> wheelfetch.Candidate | None:
    """The file pip would install for `name` (newest final release) with the target's options, or None."""
    tags = target.kit_target
    best = None
    for f in files:
        found = wheelfetch.file_candidate(
            f["filename"],
            f["url"],
            f["sha256"],
            name,
            SpecifierSet(),
            tags,
            requires_python=f["requires-python"],
            yanked=f["yanked"],
        )
        if found is not None and not found.version.is_prerelease and (best is None or found.rank > best.rank):
            best = found
    return best


def is_native(filename: str) -> bool:
    """A wheel built for a platform (a manylinux tag), not `any`."""
    return filename.endswith(".whl") and any(t.platform != "any" for t in parse_wheel_filename(filename)[3])


def resolve(cache: Path, name: str, version: str, target: Target, timeout: float = RESOLVE_TIMEOUT) -> list[dict]:
    """pip's resolution of name==version with its dependencies for the target: [{name, version,
    filename, url, sha256}], kept a day. RuntimeError with pip's last lines when it cannot."""
    path = cache / "resolved" / target.key / f"{canonicalize_name(name)}-{version}.json"
    found = _fresh_json(path, RESOLVE_TTL)
    if found is not None:
        return found
    # PyPI alone, as a user's lock: no configuration file's extra indexes, find-links or constraints.
    env = {k: v for k, v in os.environ.items() if k not in PIP_SOURCES} | {"PIP_CONFIG_FILE": os.devnull}
    env["PIP_CACHE_DIR"] = str(cache / "pip")  # pip's HTTP cache with the corpus's: one folder to keep or drop
    with tempfile.TemporaryDirectory(prefix="corpus-resolve-") as tmp:
        report = Path(tmp) / "report.json"
        argv = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--no-input",
            "--progress-bar",
            "off",
            "--report",
            str(report),
            "--target",
            str(Path(tmp) / "target"),
            "--index-url",
            INDEX,
            *target.pip_args,
            f"{name}=={version}",
        ]
        try:
            run = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"pip did not resolve it within {timeout:.0f} s") from None
        if run.returncode != 0:
            lines = [line for line in run.stderr.splitlines() if line.strip()]
            raise RuntimeError(" | ".join(lines[-3:])[-600:] or f"pip exited {run.returncode}")
        items = json.loads(report.read_text(encoding="utf-8"))["install"]
    resolved = []
    for item in items:
        url = item["download_info"]["url"]
        resolved.append(
            {
                "name": canonicalize_name(item["metadata"]["name"]),
                "version": item["metadata"]["version"],
                "filename": url.rsplit("/", 1)[-1],
                "url": url,
                "sha256": item["download_info"].get("archive_info", {}).get("hashes", {}).get("sha256", ""),
            }
        )
    _write_json(path, resolved)
    return resolved


def total_size(cache: Path, http: httpget.Client, resolved: list[dict]) -> int | None:
    """The bytes of the resolved wheels as the index pages give them (None: a size is not known)."""
    total = 0
    for item in resolved:
        sizes = [f.get("size") for f in page(cache, http, item["name"]) if f["filename"] == item["filename"]]
        if not sizes or not isinstance(sizes[0], int):
            return None
        total += sizes[0]
    return total


def fetch(cache: Path, http: httpget.Client, item: dict) -> Path:
    """The wheel in the cache, under its SHA-256; a file already there is used only if its bytes
    still hash to it (wheelfetch.download checks, and checks each download before it takes its name)."""
    digest = item["sha256"].lower()
    folder = cache / "wheels" / digest[:2] / digest
    folder.mkdir(parents=True, exist_ok=True)
    best = wheelfetch.Candidate(item["filename"], item["url"], None, (), digest)
    return wheelfetch.download(http, best, item["name"], folder, threading.Event())[0]


def lock_of(resolved: list[dict]) -> dict:
    """A Pipfile.lock of the resolution: what a user's lock of the package would pin (the audit's
    lock rules compare the zip with it)."""
    default = {r["name"]: {"version": f"=={r['version']}", "hashes": [f"sha256:{r['sha256']}"]} for r in resolved}
    meta = {"hash": {"sha256": "0" * 64}, "sources": [{"name": "pypi", "url": INDEX, "verify_ssl": True}]}
    return {"_meta": meta, "default": default, "develop": {}}


def build_zip(wheels: list[tuple[dict, Path]], target: Target, work: Path) -> Path:
    """The dependencies' zip as the kit's builders make it: the wheels unpacked by the kit's
    installer (hash-checked), console scripts dropped, the tree packed by the kit's zip writer."""
    tree, packed = work / "deps", work / "deps.zip"
    tree.mkdir()
    chosen = [wheelinstall.wheel_for(path, (f"sha256:{item['sha256']}",), item["name"]) for item, path in wheels]
    origins = wheelinstall.install(chosen, tree, f"python{target.runtime}")
    buildsteps.drop_console_scripts(tree)
    buildsteps.pack_dependencies(tree, packed, False, origins)
    return packed


def audit_findings(report: audit.Report) -> dict[str, dict[str, list[str]]]:
    """{"errors": {rule: entries}, "warnings": {rule: entries}} of an audit report."""
    out: dict[str, dict[str, list[str]]] = {"errors": {}, "warnings": {}}
    for finding in report.findings:
        kind = "errors" if finding.severity == audit.ERROR else "warnings"
        out[kind][finding.id] = finding.entries or [finding.message]
    return out


def sweep_one(cache: Path, name: str, version: str, target: Target, loader=None) -> dict:
    """The record of one package for one target: status (audited, unresolvable, too-large,
    build-failed), the versions zipped, errors and warnings by rule, and (`loader`: a callable
    taking the zip and the target, returning {extension module: loads}) the real loader's verdict
    compared with the audit's."""
    started = time.monotonic()
    record: dict = {"package": canonicalize_name(name), "version": version, "target": target.key}
    http = client()
    try:
        resolved = resolve(cache, name, version, target)
    except RuntimeError as exc:
        return {**record, "status": "unresolvable", "reason": str(exc), "seconds": _since(started)}
    record["zipped"] = sorted(f"{r['name']}=={r['version']}" for r in resolved)
    size = total_size(cache, http, resolved)
    if size is not None and size > runtimes.MAX_UNZIPPED_TOTAL:
        return {
            **record,
            "status": "too-large",
            "reason": f"{size:,} bytes of wheels, compressed: over Lambda's "
            f"{runtimes.MAX_UNZIPPED_TOTAL:,} bytes unzipped before unpacking",
            "seconds": _since(started),
        }
    try:
        wheels = [(item, fetch(cache, http, item)) for item in resolved]
        with tempfile.TemporaryDirectory(prefix="corpus-zip-") as tmp:
            packed = build_zip(wheels, target, Path(tmp))
            report = audit.audit_zip(packed, runtime=target.runtime, arch=target.arch, lock=Lock(lock_of(resolved)))
            record.update(audit_findings(report), unzipped_bytes=report.unzipped_bytes)
            verdicts = loader(packed, target) if loader is not None else None
            if verdicts is not None:
                record["loader"] = compare_loader(report, verdicts)
    except (wheelfetch.Unavailable, httpget.NetError, indexclient.PageError, KitError) as exc:
        return {
            **record,
            "status": "build-failed",
            "reason": f"{type(exc).__name__}: {exc}",
            "seconds": _since(started),
        }
    record["status"] = "audited"
    record["seconds"] = _since(started)
    return record


def _since(started: float) -> float:
    return round(time.monotonic() - started, 1)


def audit_failing_modules(findings: dict) -> set[str]:
    """The files the audit says the loader cannot load, named first in each entry of native-needed
    (an error) and native-optional (a warning: the loader fails, the package copes)."""
    entries = findings.get("errors", {}).get("native-needed", []) + findings.get("warnings", {}).get(
        "native-optional", []
    )
    return {entry.split(" ", 1)[0] for entry in entries}


def compare_loader(report: audit.Report, verdicts: dict[str, list[str]]) -> dict:
    """The audit's native verdict against the real loader's ({module: sonames it did not find}),
    extension module by module: a module the audit names fails, any other loads."""
    failing = audit_failing_modules(audit_findings(report))
    mismatches = []
    for module, missing in sorted(verdicts.items()):
        if not missing and module in failing:
            mismatches.append(f"{module}: the loader loads it, the audit says it fails")
        elif missing and module not in failing:
            mismatches.append(f"{module}: the loader does not find {', '.join(missing)}, the audit passes it")
    for module in sorted(failing - verdicts.keys()):
        mismatches.append(f"{module}: the audit names it (not an extension module the loader was asked about)")
    failed = sum(1 for missing in verdicts.values() if missing)
    return {"modules": len(verdicts), "loader-failed": failed, "equal": not mismatches, "mismatches": mismatches}
