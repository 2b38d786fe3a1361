"""SLIM=1: what the function never runs leaves the installed dependencies, and each RECORD is kept
true to what ships. Shared by both builders (the Docker build and BUILDER=local), after the install
and before the dependencies are packed. Standard library only.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

from lambda_kit.common.digests import record_digest
from lambda_kit.common.errors import StepError
from lambda_kit.steps.piprun import run_tool
from lambda_kit.steps.toolchain import say

DEV_ONLY_SUFFIXES = (".pyi", ".h", ".hpp", ".a", ".pxd", ".pyx", ".pxi", ".c", ".cpp")


def slim(target: Path, strip: str | None) -> None:
    """SLIM=1: what the function never runs goes. Packages' own test folders, type stubs, C and
    Cython sources and headers, static libraries, the debug sections of native files that have
    them (typically what an sdist compiled here with -g), and the API reference text in botocore's
    service models (see strip_api_reference). Never a dist-info folder. Libraries that auditwheel
    grafted into `<pkg>.libs/` are left alone: patchelf rewrote them, and strip can make them
    unloadable. RECORD files are rewritten to match what ships."""
    removed: set[str] = set()
    changed: set[str] = set()
    for top in sorted(p for p in target.iterdir() if p.is_dir() and not p.name.endswith(".dist-info")):
        for folder in sorted(top.rglob("*"), reverse=True):
            if folder.is_dir() and folder.name in ("tests", "test") and folder.exists():
                removed.update(f.relative_to(target).as_posix() for f in folder.rglob("*") if f.is_file())
                shutil.rmtree(folder)
    for path in sorted(target.rglob("*")):
        if not path.is_file() or path.parent.name.endswith(".dist-info"):
            continue
        name = path.relative_to(target).as_posix()
        if path.name.endswith(DEV_ONLY_SUFFIXES):
            removed.add(name)
            path.unlink()
        elif (path.name.endswith(".so") or ".so." in path.name) and not name.split("/")[0].endswith(".libs"):
            if b".debug_info\0" not in path.read_bytes():
                continue
            if strip is None:
                raise StepError(
                    f"SLIM=1 would strip debug sections from {name}, and this build has no `strip`",
                    "use a build image with binutils (the AWS SAM build images have it), or SLIM=0",
                )
            code, lines = run_tool([strip, "--strip-debug", str(path)], dict(os.environ))
            if code != 0:
                raise StepError(f"strip failed on {name}: {' '.join(lines).strip()}", "build with SLIM=0")
            changed.add(name)
    stripped = len(changed)
    models = strip_api_reference(target)
    changed |= models
    rewrite_records(target, removed, changed)
    say(
        f"slim: {len(removed)} files dropped, {stripped} native files stripped of debug sections, "
        f"{len(models)} botocore service models without their API reference text"
    )


# What botocore reads `documentation` strings for is the text of help() and generated docs; some of
# its doc handlers expect a section that only a non-empty string creates, hence a short stand-in.
API_REFERENCE_STAND_IN = "See the AWS API reference."


def strip_api_reference(target: Path) -> set[str]:
    """botocore's service models (botocore/data/<service>/<version>/service-2.json[.gz]) carry the
    whole AWS API reference as `documentation` strings: about a quarter of a zip with boto3. The
    client never reads them to make a call (shapes, members, types, limits and errors are kept as
    they are); they become API_REFERENCE_STAND_IN. Returns the zip names of the models changed."""
    changed: set[str] = set()
    for path in sorted((target / "botocore" / "data").glob("*/*/service-2.json*")):
        if path.name not in ("service-2.json", "service-2.json.gz"):
            continue
        packed = path.name.endswith(".gz")
        model = json.loads(gzip.decompress(path.read_bytes()) if packed else path.read_bytes())
        if not _replace_documentation(model):
            continue
        text = json.dumps(model, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        path.write_bytes(_gzip(text) if packed else text)
        changed.add(path.relative_to(target).as_posix())
    return changed


def _replace_documentation(node) -> int:
    """Replace every string under a "documentation" key (a member named so is a dict, not a string)."""
    count = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "documentation" and isinstance(value, str):
                if value and value != API_REFERENCE_STAND_IN:
                    node[key] = API_REFERENCE_STAND_IN
                    count += 1
            else:
                count += _replace_documentation(value)
    elif isinstance(node, list):
        for item in node:
            count += _replace_documentation(item)
    return count


def _gzip(data: bytes) -> bytes:
    """A gzip member with no name and no time (the same bytes on every Python, given the same zlib)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = compressor.compress(data) + compressor.flush()
    header = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x02\xff"  # deflate, no flags, mtime 0, best, OS unknown
    return header + body + struct.pack("<LL", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def rewrite_records(target: Path, removed: set[str], changed: set[str]) -> None:
    """Keep each RECORD true to the files that ship: drop removed ones, re-hash changed ones."""
    for record in sorted(target.glob("*.dist-info/RECORD")):
        out = []
        for line in record.read_bytes().decode("utf-8").splitlines(keepends=True):
            name = line.split(",", 1)[0]
            if name in removed:
                continue
            if name in changed:
                data = (target / name).read_bytes()
                digest = record_digest(data)
                line = f"{name},sha256={digest},{len(data)}" + ("\r\n" if line.endswith("\r\n") else "\n")
            out.append(line)
        record.write_bytes("".join(out).encode("utf-8"))
