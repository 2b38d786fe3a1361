"""The one route to a deployment zip: the packed dependencies, then the function's code, written on
the host by one zip writer, whichever builder packed the dependencies and whether they came from a
build just now or from the cache.

The builders (the Docker image, `BUILDER=local`) only produce `deps.zip`; nothing else writes a
deployment zip, so there is no second path whose bytes must be kept equal to this one.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from lambda_kit.common import contract
from lambda_kit.common.digests import sha256_file
from lambda_kit.common.errors import KitError
from lambda_kit.steps import buildsteps
from lambda_kit.zips import zipwriter

DEPS_PART, CODE_PART = "the dependencies", "the source folder"


def build_zip(
    packed_deps: Path | None,
    src: Path,
    work: Path,
    dest: Path,
    source_date_epoch: str | None,
    compile_handler: str | None = None,
    profile: Sequence[str] = (),
) -> bytes:
    """`dest` = `packed_deps` (None: no dependencies, they come from a layer) extended with the code
    staged in `src` (what `sources` selected); with `compile_handler` (COMPILE=1, this host runs the
    runtime's Python), plus bytecode for the code's modules the handler's module (and the profile)
    imports. Returns the zip's SHA-256."""
    code_copy = work / "src"
    shutil.copytree(src, code_copy)  # compiling writes into the copy
    date_time = zipwriter.zip_date_time(source_date_epoch)
    if compile_handler:
        buildsteps.compile_code(code_copy, compile_handler, profile)
    code = zipwriter.collect(code_copy, skip=lambda n: n in ("Pipfile", "Pipfile.lock"), bytecode=bool(compile_handler))
    dest.parent.mkdir(parents=True, exist_ok=True)
    if packed_deps is None or not zipwriter.extend_zip(packed_deps, DEPS_PART, code, CODE_PART, dest, date_time):
        # Not a plain packed zip, or too many entries for one without zip64: entry by entry, the same bytes.
        deps = zipwriter.collect_zip(packed_deps) if packed_deps else {}
        zipwriter.write_zip(zipwriter.merge((DEPS_PART, deps), (CODE_PART, code)), dest, date_time)
    return sha256_file(dest)


def build_layer_zip(packed_deps: Path, dest: Path, source_date_epoch: str | None) -> None:
    """A layer's zip: deps.zip's entries under python/, their compressed bytes copied as they are."""
    entries = [zipwriter.Entry("python/", None, 0o755)] + [
        zipwriter.Entry(f"python/{e.name}", e.source, e.mode, e.packed)
        for e in zipwriter.collect_zip(packed_deps).values()
    ]
    zipwriter.write_zip(sorted(entries, key=lambda e: e.name), dest, zipwriter.zip_date_time(source_date_epoch))


def verify_copied(packed: Path) -> None:
    """deps.zip copied out of a build must be the bytes the build wrote (its SHA-256 beside it)."""
    expected = packed.with_name(packed.name + contract.DIGEST_SUFFIX)
    if not expected.is_file():
        raise KitError("the build wrote no digest beside deps.zip", str(expected), hint="report this as a kit bug")
    digest = sha256_file(packed).hex()
    if digest != expected.read_text(encoding="ascii").strip():
        raise KitError(
            "the packed dependencies changed on their way out of the build", digest, hint="run the build again"
        )
