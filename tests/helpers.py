"""Plain helpers shared by the test files (and the corpus and fault-network tools beside them): the
repository's paths, the stand-in base image, running `make` in a checkout, copies of the sample and
of fixture projects, zips and wheels made here; then, by subject, what the unit and integration
tests of one part of the kit both use. Fixtures live in the conftest.py files."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # the repository: tests/ is one level down
TESTS = ROOT / "tests"
PROJECTS = TESTS / "projects"  # fixture projects, each a repository as users have them
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

from awsfake import ACCOUNT  # noqa: E402
from lambda_kit.code import kitfiles, sources  # noqa: E402  (needs scripts/ on sys.path)
from lambda_kit.common import runtimes  # noqa: E402
from lambda_kit.dependencies import cachesign  # noqa: E402
from lambda_kit.steps import buildsteps, wheelinstall  # noqa: E402
from lambda_kit.steps.target import Target  # noqa: E402

HOST_PYTHON = "{}.{}".format(*sys.version_info[:2])  # this interpreter, as a runtime's version
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
    from lambda_kit.common.digests import sha256_file
    from lambda_kit.outputs import OutputRecords

    OutputRecords(project / ".lambda-kit").record(zip_path.resolve(), sha256_file(zip_path).hex())


def kit_containers(under: Path | None = None) -> list[str]:
    """The kit's containers on the engine; with `under`, only those of checkouts in that folder
    (other test runs may share the engine)."""
    out = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label={KIT_LABEL}",
            "--format",
            '{{.Names}} {{.Label "org.lambda-kit.checkout"}}',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
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


# ---- zips of given files ----


def zip_entry(name: str, mode: int = 0o644) -> zipfile.ZipInfo:
    """A zip entry as pip's and the kit's zips have them: dated 1980-01-01, a Unix mode (a name
    ending in / is a folder), deflated."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.create_system = 3
    is_dir = name.endswith("/")
    info.external_attr = ((stat.S_IFDIR if is_dir else stat.S_IFREG) | mode) << 16 | (0x10 if is_dir else 0)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def write_zip(
    path: Path, files: dict[str, bytes], modes: dict[str, int] | None = None, extra_infos=(), mode: int = 0o644
) -> Path:
    """A zip of `files` in their order (each `mode` unless `modes` says otherwise), then the raw
    (ZipInfo, data) entries of `extra_infos`."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(zip_entry(name, (modes or {}).get(name, mode)), data)
        for info, data in extra_infos:
            zf.writestr(info, data)
    return path


def elf_zip(path: Path, files: dict[str, bytes]) -> Path:
    """The loader tests' zips: the files sorted by name, each executable (0755)."""
    return write_zip(path, dict(sorted(files.items())), mode=0o755)


def wheel_members(*wheels: Path) -> dict[str, bytes]:
    """The files of the wheels, by name (folders left out); a later wheel's file wins."""
    files = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            files.update({n: zf.read(n) for n in zf.namelist() if not n.endswith("/")})
    return files


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


def make_wheel(
    folder: Path,
    name: str,
    version: str,
    files: dict,
    unlisted: dict | None = None,
    tag="py3-none-any",
    entry_points: str = "",
    wheel_version: str = "1.0",
    stored: tuple = (),
    level: int = 6,
) -> Path:
    """A wheel with `files` ({name: bytes or (bytes, mode)}) listed in its RECORD, `unlisted` not;
    each deflated at `level`, but the `stored` ones."""
    dist_info = f"{name}-{version}.dist-info"
    meta = {
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: {wheel_version}\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ).encode(),
    }
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


# ---- signed caches ----


def new_key(folder, name="cache.key") -> tuple[str, str, str]:
    """make cache-keygen's files: (private key path, public key path, public key line)."""
    said = []
    cachesign.keygen(folder / name, said.append)
    public = (folder / f"{name}.pub").read_text().strip()
    return str(folder / name), str(folder / f"{name}.pub"), public


# ---- deploy, against the local AWS API ----


ROLE = f"arn:aws:iam::{ACCOUNT}:role/lambda-kit-test"
CODE_PATH = "/2015-03-31/functions/{}/code"


def code_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def make_role(local_aws) -> None:
    iam = local_aws.client("iam")
    if not iam.list_roles()["Roles"]:
        iam.create_role(RoleName="lambda-kit-test", AssumeRolePolicyDocument="{}")


def make_function(local_aws, name="orders", runtime="python3.11", arch="x86_64", handler="app.handler") -> dict:
    make_role(local_aws)
    return local_aws.client("lambda").create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler=handler,
        Architectures=[arch],
        Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18},  # an empty zip: other code than any test's
    )


def function_config(local_aws, name="orders") -> dict:
    return local_aws.client("lambda").get_function(FunctionName=name)["Configuration"]


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("lambda-kit: error:")]


def aws_writes(local_aws) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in local_aws.requests if r.method not in ("GET", "HEAD")]


# ---- the loader's search: small ELF files and real wheels ----


EXT = ".cpython-311-x86_64-linux-gnu.so"
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc builds the small ELF files")


def so(folder: Path, name: str, *, soname: str = "", needs=(), rpath: str = "", runpath: str = "") -> bytes:
    """A shared object built by gcc: DT_SONAME, DT_NEEDED of `needs` (built files), DT_RPATH or
    DT_RUNPATH as given."""
    src = folder / f"{name}.c"
    symbol = re.sub(r"\W", "_", name)
    src.write_text(f"int f_{symbol}(void) {{ return 1; }}\n")
    out = folder / name
    args = ["gcc", "-shared", "-fPIC", "-o", str(out), str(src), "-Wl,--no-as-needed"]
    args += [f"-Wl,-soname,{soname}"] if soname else []
    args += [str(folder / n) for n in needs]
    if rpath:
        args += ["-Wl,--disable-new-dtags", f"-Wl,-rpath,{rpath}"]
    if runpath:
        args += ["-Wl,--enable-new-dtags", f"-Wl,-rpath,{runpath}"]
    subprocess.run(args, check=True, capture_output=True)
    return out.read_bytes()


def with_machine(data: bytes, machine: int) -> bytes:
    return data[:18] + machine.to_bytes(2, "little") + data[20:]


def loader_cases(folder: Path) -> tuple[dict[str, bytes], dict[str, list[str]]]:
    """One zip's members, one package per rule, and what the loader must say of each extension."""
    b = so(folder, "libb.so.1", soname="libb.so.1")
    a = so(folder, "liba.so.1", soname="liba.so.1", needs=["libb.so.1"])
    files, expect = {}, {}
    # DT_RPATH is inherited: liba has no path of its own and finds libb through the extension's.
    files |= {"inherited/deps/liba.so.1": a, "inherited/deps/libb.so.1": b}
    files["inherited/ext" + EXT] = so(folder, "e1", needs=["liba.so.1"], rpath="$ORIGIN/deps")
    expect["inherited/ext" + EXT] = []
    # DT_RUNPATH is not: the same tree with a RUNPATH misses libb.
    files |= {"runpath/deps/liba.so.1": a, "runpath/deps/libb.so.1": b}
    files["runpath/ext" + EXT] = so(folder, "e2", needs=["liba.so.1"], runpath="$ORIGIN/deps")
    expect["runpath/ext" + EXT] = ["libb.so.1"]
    # An object with a RUNPATH of its own stops the inherited RPATH for its needs.
    r = so(folder, "libr.so.1", soname="libr.so.1", needs=["libb.so.1"], runpath="$ORIGIN/nowhere")
    files |= {"stopped/deps/libr.so.1": r, "stopped/deps/libb.so.1": b}
    files["stopped/ext" + EXT] = so(folder, "e3", needs=["libr.so.1"], rpath="$ORIGIN/deps")
    expect["stopped/ext" + EXT] = ["libb.so.1"]
    # Lambda's LD_LIBRARY_PATH has /var/task/lib.
    files["lib/libl.so.1"] = so(folder, "libl.so.1", soname="libl.so.1")
    files["tasklib/ext" + EXT] = so(folder, "e4", needs=["libl.so.1"])
    expect["tasklib/ext" + EXT] = []
    # A relative RPATH counts from the working folder, /var/task (psycopg2-binary's libpq has one).
    files["relative/deps/libb.so.1"] = b
    files["relative/ext" + EXT] = so(folder, "e5", needs=["libb.so.1"], rpath="relative/deps")
    expect["relative/ext" + EXT] = []
    # A library already loaded answers to its DT_SONAME: libx needs libsoname.so.7, which no file
    # is named; the file loaded as libfile.so.1 carries that soname.
    so(folder, "libfile.so.1", soname="libfile.so.1")
    so(folder, "libsoname.so.7", soname="libsoname.so.7")
    x = so(folder, "libx.so.1", soname="libx.so.1", needs=["libsoname.so.7"])
    files |= {"soname/deps/libfile.so.1": (folder / "libsoname.so.7").read_bytes(), "soname/deps/libx.so.1": x}
    files["soname/ext" + EXT] = so(folder, "e6", needs=["libfile.so.1", "libx.so.1"], rpath="$ORIGIN/deps")
    expect["soname/ext" + EXT] = []
    # A file for another machine is passed over and the search goes on.
    files |= {"machine/arm/libb.so.1": with_machine(b, 183), "machine/deps/libb.so.1": b}
    files["machine/ext" + EXT] = so(folder, "e7", needs=["libb.so.1"], rpath="$ORIGIN/arm:$ORIGIN/deps")
    expect["machine/ext" + EXT] = []
    # The bundled library is missing altogether (a .libs folder with a file deleted).
    files["deleted/deps/liba.so.1"] = a
    files["deleted/ext" + EXT] = so(folder, "e8", needs=["liba.so.1"], rpath="$ORIGIN/deps")
    expect["deleted/ext" + EXT] = ["libb.so.1"]
    # No extension module loads this one (ctypes might): alone, it misses libb.
    files["loose/liba.so.1"] = a
    return files, expect


def pip_download(requirements, dest: Path, arch: str = "x86_64") -> list[Path]:
    """The wheels pip downloads for python3.11 on `arch` (no dependencies), from the index only."""
    dest.mkdir(parents=True, exist_ok=True)
    args = runtime_target("3.11", arch).pip_args()
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *args, "--dest", str(dest), *requirements],
        check=True,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": ""},
    )
    return sorted(dest.glob("*.whl"))


def zip_of_wheels(wheels, path: Path, drop=()) -> Path:
    """The wheels' files flat at the zip root, as pip install --target lays them out."""
    files = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            files |= {n: zf.read(n) for n in zf.namelist() if not n.endswith("/") and ".data/" not in n}
    return elf_zip(path, {n: d for n, d in files.items() if not any(re.search(p, n) for p in drop)})


# ---- the launcher and the machine's cache ----


LAUNCHER = ROOT / "scripts" / "lambda-kit"


def machine_env(cache: Path, **extra: str) -> dict[str, str]:
    """A machine whose cache folder is `cache` and whose helper environment the kit makes itself."""
    env = kit_env(KIT_CACHE=str(cache), **extra)
    del env["LAMBDA_KIT_VENV"]
    env.pop("LAMBDA_KIT_EXTRAS", None)
    return env


def environments(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "envs").iterdir() if p.is_dir())


def environment_leftovers(cache: Path) -> list[str]:
    return [p.name for p in (cache / "envs").iterdir() if p.name.endswith((".tmp", ".trash"))]


# ---- one-line errors ----


def one_error(result, status: int, start: str) -> None:
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("lambda-kit: ")]
    assert len(errors) == 1 and errors[0].startswith(start), result.stderr


# ---- locks from older pipenv ----


OLDER_PIPENV_LOCK = json.loads((PROJECTS / "older-pipenv" / "Pipfile.lock").read_text())


def changed_lock(change) -> dict:
    lock = json.loads(json.dumps(OLDER_PIPENV_LOCK))
    change(lock)
    return lock


def typing_extensions_entry(lock) -> dict:
    return lock["default"]["typing-extensions"]


# (what is changed, the key the error must name)
MALFORMED = {
    "meta-list": (lambda ln: ln.__setitem__("_meta", []), "_meta is a list"),
    "meta-missing": (lambda ln: ln.pop("_meta"), "_meta is missing"),
    "hash-missing": (lambda ln: ln["_meta"].pop("hash"), "_meta.hash.sha256"),
    "sources-string": (lambda ln: ln["_meta"].__setitem__("sources", "pypi"), "_meta.sources"),
    "default-missing": (lambda ln: ln.pop("default"), "default is missing"),
    "default-list": (lambda ln: ln.__setitem__("default", []), "default is a list"),
    "entry-string": (
        lambda ln: ln["default"].__setitem__("typing-extensions", "==4.12.2"),
        "default.typing-extensions is a string",
    ),
    "version-null": (
        lambda ln: typing_extensions_entry(ln).__setitem__("version", None),
        "default.typing-extensions has version null",
    ),
    "hashes-null": (
        lambda ln: typing_extensions_entry(ln).__setitem__("hashes", None),
        "default.typing-extensions has hashes",
    ),
    "hash-no-algorithm": (
        lambda ln: typing_extensions_entry(ln).__setitem__("hashes", ["04e5ca03"]),
        "default.typing-extensions has hashes",
    ),
    "markers-number": (
        lambda ln: typing_extensions_entry(ln).__setitem__("markers", 3),
        "default.typing-extensions has markers a number",
    ),
    "develop-entry-list": (lambda ln: ln["develop"].__setitem__("pytest", []), "develop.pytest is a list"),
}


# ---- sources of a real repository ----


ODD_NAMES = ("with space.py", "colon:name.txt", "new\nline.txt", "café_ünï.py")


def root_package(parent: Path) -> Path:
    """tests/projects/root-package with the kit copied in as lambda-kit/, as a new user would."""
    shutil.copytree(PROJECTS / "root-package", parent)
    copy_kit(parent / "lambda-kit")
    return parent


def selected_names(selection: sources.Selection) -> set[str]:
    return set(selection.dirs) | {name for name, _, _ in selection.files}


# ---- the shared cache ----


def unsigned_warning(url: str) -> str:
    """The first line of every use of a store without keys."""
    return (
        f"lambda-kit: warning: cache {url}: entries are unsigned, so anyone who can write to it can change what "
        "the builds that read it ship (make cache-keygen: CACHE_SIGNING_KEY, CACHE_TRUSTED_KEYS)"
    )


class Fleet:
    """A key pair made by `make cache-keygen`'s code, and the checks a reader makes with it."""

    def __init__(self, folder: Path, name: str = "cache.key") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        cachesign.keygen(folder / name, lambda line: None)
        self.private, self.public = str(folder / name), str(folder / f"{name}.pub")
        self.signer = cachesign.Signer(cachesign.from_environment({"CACHE_SIGNING_KEY": self.private}))
        self.verifier = cachesign.Verifier({self.signer.id: self.signer.public})


# ---- the kit's wheel fetcher ----


def runtime_target(version: str = "3.11", arch: str = "x86_64", sources_allowed: bool = False) -> Target:
    return Target(runtimes.lookup(version), arch, sources_allowed)


def target_args(version: str = "3.11", arch: str = "x86_64") -> list[str]:
    """pip's options for a cross install for the runtime (what the local builder gives pip)."""
    return runtime_target(version, arch).pip_args()


# ---- the kit's wheel installer against pip ----


def pinned_pip_version() -> str:
    text = (ROOT / "scripts" / "container-requirements.txt").read_text()
    return next(line.split("==")[1].split()[0] for line in text.splitlines() if line.startswith("pip=="))


def tree_files(root: Path) -> dict[str, tuple[bytes, bool]]:
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            found[path.relative_to(root).as_posix()] = (path.read_bytes(), bool(path.stat().st_mode & 0o111))
    return found


def sha256_pin(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def pip_target(wheels: list[Path], target: Path, requirements: list[str]) -> None:
    """The pinned pip as the builds ran it before: --target, from a folder of files, by requirement."""
    assert (
        subprocess.run(
            [sys.executable, "-m", "pip", "--version"], capture_output=True, text=True, check=True
        ).stdout.split()[1]
        == pinned_pip_version()
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--target",
            str(target),
            "--no-compile",
            "--no-deps",
            "--no-index",
            "--find-links",
            str(wheels[0].parent),
            "--disable-pip-version-check",
            *requirements,
        ],
        check=True,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )
    buildsteps.drop_console_scripts(target)


def kit_target(wheels: list[Path], target: Path) -> dict:
    target.mkdir()
    origins = wheelinstall.install([wheelinstall.wheel_for(w, (sha256_pin(w),)) for w in wheels], target, "python3.11")
    buildsteps.drop_console_scripts(target)
    return origins
