"""Plain helpers shared by the test files (and the corpus and fault-network tools beside them): the
repository's paths, the stand-in base image, running `make` in a checkout, copies of the sample and
of fixture projects. Fixtures live in conftest.py; this module needs no pytest."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository: tests/ is one level down
TESTS = ROOT / "tests"
PROJECTS = TESTS / "projects"  # fixture projects, each a repository as users have them
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

from lambda_kit.code import kitfiles  # noqa: E402  (needs scripts/ on sys.path)

SAMPLE_FILES = ("lambdas", "events", "Pipfile", "Pipfile.lock")
# A Debian bookworm root file system loaded with `docker import` (no registry is reachable):
# python3.11, pip, venv. Tests build for python3.11 on it.
BASE_IMAGE = os.environ.get("LAMBDA_KIT_TEST_BASE_IMAGE", "lambda-kit-test/base:bookworm-3")
RUNTIME = os.environ.get("LAMBDA_KIT_TEST_RUNTIME", "3.11")
KIT_LABEL = "org.lambda-kit.kit=lambda-kit"


def docker_problem() -> str | None:
    """Why the Docker tests cannot run here (no docker, no daemon, no stand-in base image), or None."""
    if shutil.which("docker") is None:
        return "docker is not installed"
    try:
        subprocess.run(["docker", "version"], capture_output=True, check=True, timeout=20)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return "the Docker daemon is not reachable"
    probe = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True)
    if probe.returncode != 0:
        return f"the stand-in base image {BASE_IMAGE} is missing (build it with tests/make-base-image)"
    return None


def copy_kit(dest: Path) -> Path:
    return kitfiles.copy_kit(ROOT, dest)


def copy_sample(dest: Path) -> Path:
    """A copy of this repo's worked example: the kit plus the sample function."""
    project = copy_kit(dest)
    for name in SAMPLE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name)
        else:
            shutil.copy2(source, project / name)
    return project


def kit_env(**extra: str) -> dict[str, str]:
    """The environment for running the kit in tests: this test run's own helper environment,
    so each sample copy does not build a new one."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "LAMBDA_KIT_CACHE")}
    env["LAMBDA_KIT_VENV"] = sys.prefix
    env["KIT_CACHE"] = "$(KIT_STATE)"  # make's: each sample copy keeps its caches to itself (tests start cold)
    env.update(extra)
    return env


def make(
    project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    settings = [f"PYTHON_VERSION={RUNTIME}", f"BASE_IMAGE={BASE_IMAGE}"]
    return subprocess.run(
        ["make", "--no-print-directory", *settings, *args],
        cwd=project,
        env=env or kit_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def make_at_once(projects: list[Path], *args: str, env: dict[str, str] | None = None) -> list[tuple[str, str, int]]:
    """`make` in several checkouts at the same time (two CI jobs on one agent): (stdout, stderr, exit) each."""
    settings = [f"PYTHON_VERSION={RUNTIME}", f"BASE_IMAGE={BASE_IMAGE}"]
    jobs = [
        subprocess.Popen(
            ["make", "--no-print-directory", *settings, *args],
            cwd=project,
            env=env or kit_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for project in projects
    ]
    return [job.communicate(timeout=900) + (job.returncode,) for job in jobs]


def path_without_docker(folder: Path) -> str:
    """A PATH with the tools the kit and make need, and no `docker`: a machine without Docker."""
    folder.mkdir(parents=True, exist_ok=True)
    # python3 is this interpreter itself: a version manager's shim may pick another Python on a bare PATH.
    tools = {"python3": os.path.realpath(sys.executable)}
    for tool in ("make", "bash", "sh", "find", "mkdir", "printf", "sha256sum", "cut", "rm", "touch", "env"):
        tools[tool] = shutil.which(tool)
    for tool, found in tools.items():
        if found and not (folder / tool).exists():
            os.symlink(found, folder / tool)
    return str(folder)


def record_as_kit_output(project: Path, zip_path: Path) -> None:
    """Make `zip_path` count as written by the kit (as an earlier build would have), so a test can
    use any bytes as "the previous zip"."""
    from lambda_kit.outputs import OutputRecords
    from lambda_kit.common.digests import sha256_file

    OutputRecords(project / ".lambda-kit").record(zip_path.resolve(), sha256_file(zip_path).hex())


def kit_containers(under: Path | None = None) -> list[str]:
    """The kit's containers on the engine; with `under`, only those of checkouts in that folder
    (other test runs may share the engine)."""
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label={KIT_LABEL}", "--format",
         '{{.Names}} {{.Label "org.lambda-kit.checkout"}}'],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = [line.split() for line in out.splitlines() if line.strip()]
    if under is None:
        return [row[0] for row in rows]
    folders = [under, *under.glob("*"), *under.glob("*/*"), *under.glob("*/*/*")]
    ids = {hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:12] for p in folders if p.is_dir()}
    return [row[0] for row in rows if len(row) > 1 and row[1] in ids]


def lock_versions(project: Path) -> dict[str, str]:
    lock = json.loads((project / "Pipfile.lock").read_text())
    return {name: entry["version"].lstrip("=") for name, entry in lock["default"].items() if "version" in entry}


def download_wheels(folder: Path, wanted: dict[str, tuple[str, str, str]]) -> dict[str, Path]:
    """key -> the real wheel pip downloads for (requirement, pip platform or "any", python version
    as "311"), from the index only (no config file's indexes or find-links)."""
    found = {}
    for key, (requirement, platform, python) in wanted.items():
        dest = folder / key
        implementation = "cp" if platform != "any" else "py"
        target = ["--platform", platform, "--python-version", python, "--implementation", implementation]
        download = [sys.executable, *"-m pip download --quiet --no-deps --only-binary=:all:".split(), *target]
        subprocess.run(
            [*download, "--dest", str(dest), requirement],
            check=True,
            env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": ""},
        )
        (found[key],) = dest.glob("*.whl")
    return found


# ---- zips written by hand, whose headers can say anything ----


def zeros_deflated(size: int) -> bytes:
    """Raw deflate data that inflates to `size` zero bytes (a whole number of MiB), made from one
    compressed MiB repeated: after a full flush each copy stands alone."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(b"\0" * (1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    return block * (size >> 20) + c.flush()


def raw_zip(path: Path, entries: list[dict]) -> Path:
    """A zip written by hand, so headers can say anything: each entry has name (bytes or str),
    data (as stored), and optionally method, crc, size (declared inflated size), mode."""
    out, central = bytearray(), bytearray()
    for e in entries:
        name = e["name"].encode() if isinstance(e["name"], str) else e["name"]
        data, method = e["data"], e.get("method", 8)
        size = e.get("size", len(data))
        crc = e.get("crc", 0)
        attr = (0o100000 | e.get("mode", 0o644)) << 16
        fields = (20, 0x800, method, 0, 0x21, crc, len(data), size, len(name))
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields, 0) + name + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 0x031E, *fields, 0, 0, 0, 0, attr, offset) + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))
    return path


def text_entry(name, data: bytes, **overrides) -> dict:
    return {"name": name, "data": zlib.compress(data, 9)[2:-4], "crc": zlib.crc32(data), "size": len(data), **overrides}


# ---- wheels made here ----


def record_line(name: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(data))]


def make_wheel(folder: Path, name: str, version: str, files: dict, unlisted: dict | None = None, tag="py3-none-any",
               entry_points: str = "", wheel_version: str = "1.0", stored: tuple = (), level: int = 6) -> Path:  # fmt: skip
    """A wheel with `files` ({name: bytes or (bytes, mode)}) listed in its RECORD, `unlisted` not;
    each deflated at `level`, but the `stored` ones."""
    dist_info = f"{name}-{version}.dist-info"
    meta = {
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": f"Wheel-Version: {wheel_version}\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n".encode(),
    }  # fmt: skip
    if entry_points:
        meta[f"{dist_info}/entry_points.txt"] = entry_points.encode()
    path = folder / f"{name}-{version}-{tag}.whl"
    rows = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, content in {**files, **meta, **(unlisted or {})}.items():
            data, mode = content if isinstance(content, tuple) else (content, 0o644)
            info = zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_STORED if member in stored else zipfile.ZIP_DEFLATED
            zf.writestr(info, data, compresslevel=level)
            if not unlisted or member not in unlisted:
                rows.append(record_line(member, data))
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([*rows, [f"{dist_info}/RECORD", "", ""]])
        zf.writestr(f"{dist_info}/RECORD", out.getvalue())
    return path


# ---- Docker ----


def buildkit_env() -> dict[str, str] | None:
    """Settings that make `docker build` use BuildKit: a client with buildx, or one with it built in."""
    for folder in ("", "/usr/bin"):
        docker_bin = os.path.join(folder, "docker") if folder else "docker"
        try:
            subprocess.run([docker_bin, "buildx", "version"], capture_output=True, check=True)
            return {"DOCKER_BUILDKIT": "1", "PATH": f"{folder}:{os.environ['PATH']}" if folder else os.environ["PATH"]}
        except (subprocess.CalledProcessError, FileNotFoundError):
            pass
        try:
            version = subprocess.run(
                [docker_bin, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True, check=True
            ).stdout
        except (subprocess.CalledProcessError, FileNotFoundError):
            continue
        if int(version.split(".")[0]) < 23:  # before 23, BuildKit was built into the client
            return {"DOCKER_BUILDKIT": "1", "PATH": f"{folder}:{os.environ['PATH']}" if folder else os.environ["PATH"]}
    return None
