"""Install downloaded wheels into a `--target` folder: the files `pip install --target` writes, byte
for byte, without a pip process.

pip spends most of an install in Python overhead per file and in starting up; the kit already has
every wheel on disk, chosen by pip for the runtime's exact tags and hash-checked against the lock.
What is left is unpacking, and this module does it the way pip 26 lays a wheel out under
`--target` (from a venv, as both builders run it):

- files at the wheel's root and under `<name>.data/purelib|platlib/` go to the target (as in pip,
  every top-level `*.data/` folder is a scheme folder, also one named for another distribution);
- `<name>.data/data/` goes to the target's root too, except a top-level item whose name starts
  `lib/python` (pip's own lib folder) or that a package folder of the same name already holds
  (pip warns "already exists" and skips it);
- `<name>.data/headers/` goes to `include/site/pythonX.Y/<dist name>/`;
- `<name>.data/scripts/` and console scripts go to `bin/`, which the kit drops (they point at the
  build's interpreter), so they are not written at all;
- `.dist-info/` gains INSTALLER (`pip`) and REQUESTED (empty), and its RECORD is rewritten as pip
  rewrites it: the wheel's rows with paths mapped to where the files went, rows for the
  generated files, rows for files the wheel's RECORD did not list, sorted, CSV with CRLF. Rows of
  files outside the target (`../`) are left out, as the kit's drop_console_scripts would drop them.

Every wheel's SHA-256 is checked against the lock's hashes before it is opened (end to end: the
file unpacked is the file the lock names), every name is checked to stay inside the target, and
two wheels writing one path with different bytes is an error rather than a silent overwrite, as is
a path one wheel writes as a file and another (or the same) as a folder, or an entry that names the
target itself (`.`, `pkg/..`): one line naming the path and the wheels.

A deflated file is inflated from the wheel's raw bytes (mapped into memory, not read), and its
stream must prove that it is exactly the file: the size and CRC the directory gives, the end of
the stream reached with no byte of its compressed size left over. Anything else is an error, never
a short or padded file; at most CHUNK bytes are inflated at a time and never more than one byte
past the declared size, so a deflate bomb stops there. `install` returns each such file's `Origin`
(the wheel, its entry, the file's stat right after it was written): `buildsteps.pack_dependencies`
copies that stream into deps.zip instead of deflating the file again, while the file is unchanged.

Standard library plus `packaging`: runs in the build image and on the host.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import posixpath
import stat
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from email.parser import BytesParser
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from lambda_kit.common.digests import record_digest
from lambda_kit.common.errors import WheelError, hash_mismatch
from lambda_kit.steps.wheelarchive import CHUNK, Archive, Identity, identity
from lambda_kit.zips.zipreader import escape

CLOCK_WAIT = 3.0  # seconds install waits at most for the file system's clock to pass its last write


@dataclass(frozen=True)
class Wheel:
    path: Path
    name: str  # the project's name as the lock writes it (pip names the headers folder so)
    hashes: tuple[str, ...]  # "algorithm:hexdigest" from the lock


@dataclass(frozen=True)
class Origin:
    """Where a file of the tree came from: a wheel's deflate stream that inflated to exactly the
    file's bytes as it was written, and the file's and the wheel's stat identities at that time."""

    wheel: str  # the wheel's path
    wheel_identity: Identity
    info: zipfile.ZipInfo  # the wheel's entry (ZIP_DEFLATED): header offset, sizes, CRC
    identity: Identity  # the file's, after it was written and its mode set

    def unchanged(self, path: Path, wheels: dict[str, bool]) -> bool:
        """The file at `path` is still the one unpacked, and the wheel still the one it was
        unpacked from (`wheels` remembers each wheel's answer)."""
        if self.wheel not in wheels:
            try:
                wheels[self.wheel] = identity(os.stat(self.wheel)) == self.wheel_identity
            except OSError:
                wheels[self.wheel] = False
        try:
            return wheels[self.wheel] and identity(os.stat(path)) == self.identity
        except OSError:
            return False


def wheel_for(path: Path, hashes: tuple[str, ...], name: str | None = None) -> Wheel:
    try:
        project = parse_wheel_filename(path.name)[0]
    except InvalidWheelFilename as exc:
        raise WheelError(f"not a wheel file name ({path.name}: {exc})", "report this as a kit bug") from None
    return Wheel(path, name or str(project), hashes)


def check_hash(wheel: Wheel) -> None:
    """The file must be one the lock names: its digest in one of the lock's algorithms."""
    by_algorithm: dict[str, set[str]] = {}
    for pin in wheel.hashes:
        algorithm, _, digest = pin.partition(":")
        by_algorithm.setdefault(algorithm.lower(), set()).add(digest.lower())
    usable = [a for a in sorted(by_algorithm) if a in hashlib.algorithms_guaranteed]
    if not usable:
        raise WheelError(f"the lock gives no usable hash for {wheel.path.name}", "run `pipenv lock` again")
    digests = {a: hashlib.new(a) for a in usable}
    with open(wheel.path, "rb") as f:
        while chunk := f.read(CHUNK):
            for hasher in digests.values():
                hasher.update(chunk)
    if not any(digests[a].hexdigest() in by_algorithm[a] for a in usable):
        got = digests[usable[0]].hexdigest()
        raise WheelError(
            hash_mismatch(wheel.path.name, got, algorithm=usable[0]),
            "the file differs from what `pipenv lock` recorded: delete .lambda-kit/wheelhouse and build again",
        )


def install(
    wheels: list[Wheel], target: Path, python_xy: str, checked: frozenset[Path] = frozenset()
) -> dict[str, Origin]:
    """Unpack `wheels` (hash-checked first, but for the files in `checked`, which the caller has
    just checked) into `target` as pip --target would, for an interpreter of version `python_xy`
    ("python3.12": the headers folder's name). Returns the `Origin` of every file unpacked from a
    deflate stream, by its target-relative POSIX path (its name in a zip of the target)."""
    for wheel in wheels:
        if wheel.path not in checked:
            check_hash(wheel)
    written: dict[str, str] = {}  # target-relative path -> the wheel that wrote it, to catch two writers
    origins: dict[str, Origin] = {}
    home_items: list[tuple[str, zipfile.ZipInfo, Archive]] = []
    archives = []
    try:
        for wheel in sorted(wheels, key=lambda w: w.path.name):
            archive = Archive(wheel.path)
            archives.append(archive)
            home_items += _install_one(wheel, archive, target, python_xy, written, origins)
        # pip installs into a temporary home and then moves what its lib folder holds into the
        # target, then the home's other top-level items (data, headers), skipping its own lib
        # folder and any item the packages already put in the target.
        package_tops = {name.split("/", 1)[0] for name in written}
        for name, info, archive in home_items:
            top = name.split("/", 1)[0]
            if "lib/python".startswith(top) or top in package_tops:
                continue
            _extract(archive, info, target, name, written, origins)
    finally:
        for archive in archives:
            archive.close()
    _wait_for_a_later_stamp(target, max((max(o.identity[2:]) for o in origins.values()), default=0))
    return origins


def _wait_for_a_later_stamp(target: Path, latest_ns: int) -> None:
    """Return once the file system stamps a write later than `latest_ns`, so a file rewritten in
    place after `install` (even at the same size, by a step that follows at once) never keeps the
    identity recorded here: file times move in ticks of the kernel's clock (a few ms), or coarser
    on some file systems. Bounded: past CLOCK_WAIT a clock that does not move is not waited for."""
    if not latest_ns:
        return
    handle, probe = tempfile.mkstemp(prefix=".lambda-kit-clock-", dir=target)  # the tree's file system
    os.close(handle)
    deadline = time.monotonic() + CLOCK_WAIT
    try:
        while os.stat(probe).st_mtime_ns <= latest_ns and time.monotonic() < deadline:
            time.sleep(0.001)
            os.utime(probe)
    finally:
        os.unlink(probe)


def _install_one(wheel: Wheel, archive: Archive, target: Path, python_xy: str, written: dict, origins: dict):
    """The wheel's packages into `target`, its dist-info finished; returns its data and headers
    files as (home-relative name, entry, archive) for `install` to place."""
    infos = [i for i in archive.infolist() if not i.filename.endswith("/")]
    dist_info = _dist_info_folder(wheel, infos)
    wheel_meta = BytesParser().parsebytes(archive.read(f"{dist_info}/WHEEL"))
    if (wheel_meta.get("Wheel-Version") or "").split(".")[0] != "1":
        raise WheelError(
            f"{wheel.path.name} has Wheel-Version {wheel_meta.get('Wheel-Version')}", "pin another version"
        )
    # As pip: every top-level folder named *.data is a scheme folder, whoever's name it carries.
    root = [i for i in infos if not i.filename.split("/", 1)[0].endswith(".data")]
    data = [i for i in infos if i.filename.split("/", 1)[0].endswith(".data")]
    installed: dict[str, str] = {}  # the wheel's name -> the RECORD path pip gives it
    for info in root:
        installed[info.filename] = _extract(archive, info, target, info.filename, written, origins)
    wrappers = _entry_point_names(archive, dist_info)
    home_items = []
    for info in data:
        parts = posixpath.normpath(info.filename).split("/", 2)  # pip splits the normalised path
        scheme, sub = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
        if not sub:
            raise WheelError(
                f"{wheel.path.name} has a file outside a .data scheme folder ({info.filename})", "pin another version"
            )
        if scheme in ("purelib", "platlib"):
            installed[info.filename] = _extract(archive, info, target, sub, written, origins)
        elif info.filename.split("/", 2)[1] == "scripts":
            # bin/ is dropped by the kit: not written. pip leaves a setuptools wrapper of an entry
            # point out, and its RECORD row as it was; other scripts' rows point outside.
            if not _is_wrapper(sub, wrappers):
                installed[info.filename] = "../../bin/" + _safe(sub, wheel.path.name)
        elif scheme in ("headers", "data"):
            name = f"include/site/{python_xy}/{wheel.name}/{sub}" if scheme == "headers" else sub
            home_items.append((_safe(name, wheel.path.name), info, archive))
            installed[info.filename] = "../../" + name  # outside the lib folder: not in RECORD
        else:
            raise WheelError(f"{wheel.path.name} uses an unknown .data scheme ({scheme})", "pin another version")
    _finish_dist_info(archive, target, dist_info, installed, origins)
    return home_items


def _entry_point_names(archive: Archive, dist_info: str) -> set[str]:
    try:
        text = archive.read(f"{dist_info}/entry_points.txt").decode("utf-8")
    except KeyError:
        return set()
    names, section = set(), ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]").strip()
        elif "=" in line and section in ("console_scripts", "gui_scripts"):
            names.add(line.split("=", 1)[0].strip())
    return names


def _is_wrapper(script: str, entry_points: set[str]) -> bool:
    name = posixpath.basename(script)
    for suffix in (".exe", "-script.py", ".pya"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name in entry_points


def _dist_info_folder(wheel: Wheel, infos: list[zipfile.ZipInfo]) -> str:
    folders = {i.filename.split("/", 1)[0] for i in infos if i.filename.split("/", 1)[0].endswith(".dist-info")}
    if len(folders) != 1:
        raise WheelError(f"{wheel.path.name} has {len(folders)} .dist-info folders, not one", "pin another version")
    folder = folders.pop()
    if canonicalize_name(folder[: -len(".dist-info")].rsplit("-", 1)[0]) != canonicalize_name(wheel.name):
        raise WheelError(f"{wheel.path.name} holds {folder}, another project's metadata", "pin another version")
    return folder


def _safe(name: str, wheel_name: str) -> str:
    normal = posixpath.normpath(name)
    if name.startswith("/") or "\\" in name or normal == ".." or normal.startswith("../") or "\0" in name:
        raise WheelError(f"{wheel_name} has a file outside the install folder ({name!r})", "pin another version")
    return normal


def _extract(archive: Archive, info: zipfile.ZipInfo, target: Path, name: str, written: dict, origins: dict) -> str:
    relative = _safe(name, Path(archive.filename).name)
    dest = target / relative
    previous = written.get(relative)
    if previous is not None and previous != archive.filename:
        with closing(archive.content(info)) as new, open(dest, "rb") as old:
            same = _same_stream(new, old)
        if not same:
            raise WheelError(
                f"two dependencies install {relative} with different contents "
                f"({Path(previous).name}, {Path(archive.filename).name})",
                "check the lock for packages that provide the same module",
            )
        return relative
    _check_parents(relative, archive.filename, written)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        if stat.S_ISDIR(os.lstat(dest).st_mode):
            inside = next((w for p, w in sorted(written.items()) if p.startswith(relative + "/")), archive.filename)
            raise _both_ways(relative, Path(archive.filename).name, Path(inside).name)
        dest.unlink()  # a file (or link) of this wheel's own, written again: pip overwrites it
    except FileNotFoundError:
        pass
    origins.pop(relative, None)
    try:
        with open(dest, "wb") as out:
            for chunk in archive.content(info):
                out.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)  # no part of a file that failed its checks stays in the tree
        raise
    mode = info.external_attr >> 16
    if mode and stat.S_ISREG(mode) and mode & 0o111:
        dest.chmod(0o755)
    written[relative] = archive.filename
    if archive.streamed(info):
        origins[relative] = Origin(archive.filename, archive.identity, info, identity(os.stat(dest)))
    return relative


def _check_parents(relative: str, wheel: str, written: dict[str, str]) -> None:
    """A file may be written at `relative` only under no file (every file of the tree was written
    here: `written` knows them all); else one error naming the path and both wheels."""
    if relative == ".":
        raise WheelError(f"{Path(wheel).name} has an entry that names the install folder itself", "pin another version")
    parts = relative.split("/")
    for depth in range(1, len(parts)):
        parent = "/".join(parts[:depth])
        if parent in written:
            raise _both_ways(parent, Path(wheel).name, Path(written[parent]).name)


def _both_ways(path: str, one: str, other: str) -> WheelError:
    who = " and ".join(sorted({one, other})) + (" install" if one != other else " installs")
    return WheelError(
        f"{who} {escape(path)} both as a file and as a folder",
        "check the lock for packages that provide the same module" if one != other else "pin another version",
    )


def _same_stream(chunks: Iterator[bytes], old) -> bool:
    """The content `chunks` gives (of any length each) equals what the file `old` holds."""
    for chunk in chunks:
        if old.read(len(chunk)) != chunk:
            return False
    return not old.read(1)


def _finish_dist_info(archive: Archive, target: Path, dist_info: str, installed: dict[str, str], origins: dict) -> None:
    folder = target / dist_info
    generated = {f"{dist_info}/INSTALLER": b"pip\n", f"{dist_info}/REQUESTED": b""}
    for name in (*generated, f"{dist_info}/RECORD"):
        origins.pop(name, None)  # written again here, maybe within the same clock tick: never the wheel's
    for name, data in generated.items():
        (target / name).write_bytes(data)
    try:
        text = archive.read(f"{dist_info}/RECORD").decode("utf-8")
    except KeyError:
        raise WheelError(f"{Path(archive.filename).name} has no RECORD", "pin another version") from None
    rows = []
    remaining = dict(installed)
    for row in csv.reader(text.splitlines()):
        if not row:
            continue
        path = remaining.pop(row[0], row[0])
        rows.append((path, row[1] if len(row) > 1 else "", row[2] if len(row) > 2 else ""))
    for name, data in generated.items():
        digest = record_digest(data)
        rows.append((name, f"sha256={digest}", str(len(data))))
    rows += [(path, "", "") for path in remaining.values()]
    out = io.StringIO(newline="")
    csv.writer(out).writerows(sorted((p, h, str(s)) for p, h, s in rows if not p.startswith("../")))
    (folder / "RECORD").write_bytes(out.getvalue().encode("utf-8"))
