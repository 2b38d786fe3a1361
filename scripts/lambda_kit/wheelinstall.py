"""Install downloaded wheels into a `--target` folder: the files `pip install --target` writes, byte
for byte, without a pip process.

pip spends most of an install in Python overhead per file and in starting up; the kit already has
every wheel on disk, chosen by pip for the runtime's exact tags and hash-checked against the lock.
What is left is unpacking, and this module does it the way pip 26 lays a wheel out under
`--target` (from a venv, as both builders run it):

- files at the wheel's root and under `<name>.data/purelib|platlib/` go to the target;
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
two wheels writing one path with different bytes is an error rather than a silent overwrite.
Standard library plus `packaging`: runs in the build image and on the host.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import posixpath
import shutil
import stat
import zipfile
from dataclasses import dataclass
from email.parser import BytesParser
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from .errors import StepError

CHUNK = 1 << 20


class WheelError(StepError):
    """A wheel the kit will not unpack: one line, as every build step's error."""


@dataclass(frozen=True)
class Wheel:
    path: Path
    name: str  # the project's name as the lock writes it (pip names the headers folder so)
    hashes: tuple[str, ...]  # "algorithm:hexdigest" from the lock


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
            for digest in digests.values():
                digest.update(chunk)
    if not any(digests[a].hexdigest() in by_algorithm[a] for a in usable):
        got = digests[usable[0]].hexdigest()
        raise WheelError(
            f"hash mismatch: {wheel.path.name} does not match Pipfile.lock ({usable[0]} {got[:16]}...)",
            "the file differs from what `pipenv lock` recorded: delete .lambda-kit/wheelhouse and build again",
        )


def install(wheels: list[Wheel], target: Path, python_xy: str, checked: frozenset[Path] = frozenset()) -> None:
    """Unpack `wheels` (hash-checked first, but for the files in `checked`, which the caller has
    just checked) into `target` as pip --target would, for an interpreter of version `python_xy`
    ("python3.12": the headers folder's name)."""
    for wheel in wheels:
        if wheel.path not in checked:
            check_hash(wheel)
    written: dict[str, str] = {}  # target-relative path -> the wheel that wrote it, to catch two writers
    home_items: list[tuple[str, zipfile.ZipInfo, zipfile.ZipFile]] = []
    archives = []
    try:
        for wheel in sorted(wheels, key=lambda w: w.path.name):
            archive = zipfile.ZipFile(wheel.path)
            archives.append(archive)
            home_items += _install_one(wheel, archive, target, python_xy, written)
        # pip installs into a temporary home and then moves what its lib folder holds into the
        # target, then the home's other top-level items (data, headers), skipping its own lib
        # folder and any item the packages already put in the target.
        package_tops = {name.split("/", 1)[0] for name in written}
        for name, info, archive in home_items:
            top = name.split("/", 1)[0]
            if "lib/python".startswith(top) or top in package_tops:
                continue
            _extract(archive, info, target, name, written)
    finally:
        for archive in archives:
            archive.close()


def _install_one(wheel: Wheel, archive: zipfile.ZipFile, target: Path, python_xy: str, written: dict):
    """The wheel's packages into `target`, its dist-info finished; returns its data and headers
    files as (home-relative name, entry, archive) for `install` to place."""
    infos = [i for i in archive.infolist() if not i.filename.endswith("/")]
    dist_info = _dist_info_folder(wheel, infos)
    wheel_meta = BytesParser().parsebytes(archive.read(f"{dist_info}/WHEEL"))
    if (wheel_meta.get("Wheel-Version") or "").split(".")[0] != "1":
        raise WheelError(
            f"{wheel.path.name} has Wheel-Version {wheel_meta.get('Wheel-Version')}", "pin another version"
        )
    data_folder = dist_info[: -len(".dist-info")] + ".data/"
    root = [i for i in infos if not i.filename.startswith(data_folder)]
    data = [i for i in infos if i.filename.startswith(data_folder)]
    installed: dict[str, str] = {}  # the wheel's name -> the RECORD path pip gives it
    for info in root:
        installed[info.filename] = _extract(archive, info, target, info.filename, written)
    wrappers = _entry_point_names(archive, dist_info)
    home_items = []
    for info in data:
        scheme, _, sub = info.filename[len(data_folder) :].partition("/")
        if not sub:
            raise WheelError(f"{wheel.path.name} has a file outside a .data scheme folder ({info.filename})",
                             "pin another version")  # fmt: skip
        if scheme in ("purelib", "platlib"):
            installed[info.filename] = _extract(archive, info, target, sub, written)
        elif scheme == "scripts":
            # bin/ is dropped by the kit: not written. pip leaves a setuptools wrapper of an entry
            # point out, and its RECORD row as it was; other scripts' rows point outside.
            if not _is_wrapper(sub, wrappers):
                installed[info.filename] = "../../bin/" + sub
        elif scheme in ("headers", "data"):
            name = f"include/site/{python_xy}/{wheel.name}/{sub}" if scheme == "headers" else sub
            home_items.append((_safe(name, wheel.path.name), info, archive))
            installed[info.filename] = "../../" + name  # outside the lib folder: not in RECORD
        else:
            raise WheelError(f"{wheel.path.name} uses an unknown .data scheme ({scheme})", "pin another version")
    _finish_dist_info(archive, target, dist_info, installed)
    return home_items


def _entry_point_names(archive: zipfile.ZipFile, dist_info: str) -> set[str]:
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


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, name: str, written: dict) -> str:
    relative = _safe(name, Path(archive.filename).name)
    dest = target / relative
    previous = written.get(relative)
    if previous is not None and previous != archive.filename:
        with archive.open(info) as new, open(dest, "rb") as old:
            if not _same_stream(new, old):
                raise WheelError(
                    f"two dependencies install {relative} with different contents "
                    f"({Path(previous).name}, {Path(archive.filename).name})",
                    "check the lock for packages that provide the same module",
                )
        return relative
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink() or dest.exists():
        dest.unlink()
    with archive.open(info) as source, open(dest, "wb") as out:
        shutil.copyfileobj(source, out, CHUNK)
    mode = info.external_attr >> 16
    if mode and stat.S_ISREG(mode) and mode & 0o111:
        dest.chmod(0o755)
    written[relative] = archive.filename
    return relative


def _same_stream(a, b) -> bool:
    while True:
        x, y = a.read(CHUNK), b.read(CHUNK)
        if x != y:
            return False
        if not x:
            return True


def _finish_dist_info(archive: zipfile.ZipFile, target: Path, dist_info: str, installed: dict[str, str]) -> None:
    folder = target / dist_info
    generated = {f"{dist_info}/INSTALLER": b"pip\n", f"{dist_info}/REQUESTED": b""}
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
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
        rows.append((name, f"sha256={digest}", str(len(data))))
    rows += [(path, "", "") for path in remaining.values()]
    out = io.StringIO(newline="")
    csv.writer(out).writerows(sorted((p, h, str(s)) for p, h, s in rows if not p.startswith("../")))
    (folder / "RECORD").write_bytes(out.getvalue().encode("utf-8"))
