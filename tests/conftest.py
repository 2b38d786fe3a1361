"""Shared fixtures. Unit tests need nothing; tests marked `docker` need a Docker engine and the
stand-in base image (see .ci/run): they skip without one on a laptop and FAIL when CI is set."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from lambda_kit.code import kitfiles  # noqa: E402  (needs scripts/ on sys.path)
from awsfake import _moto_server, local_aws  # noqa: E402,F401  (a local AWS API for any test)

SAMPLE_FILES = ("lambdas", "events", "Pipfile", "Pipfile.lock")
# A Debian bookworm root file system loaded with `docker import` (no registry is reachable):
# python3.11, pip, venv. Tests build for python3.11 on it.
BASE_IMAGE = os.environ.get("LAMBDA_KIT_TEST_BASE_IMAGE", "lambda-kit-test/base:bookworm-3")
RUNTIME = os.environ.get("LAMBDA_KIT_TEST_RUNTIME", "3.11")
KIT_LABEL = "org.lambda-kit.kit=lambda-kit"


def _docker_problem() -> str | None:
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


NETWORK_FIXTURES = {"wheels"}  # fixtures that download real wheels from the index


def pytest_collection_modifyitems(config, items):
    for item in items:
        if NETWORK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.network)
    docker_items = [i for i in items if "docker" in i.keywords]
    if not docker_items:
        return
    problem = _docker_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"CI is set and Docker tests cannot run: {problem}")
    for item in docker_items:
        item.add_marker(pytest.mark.skip(reason=problem))


def copy_kit(dest: Path) -> Path:
    return kitfiles.copy_kit(ROOT, dest)


@pytest.fixture
def sample(tmp_path) -> Path:
    return copy_sample(tmp_path / "sample")


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


@pytest.fixture
def local_lib_project(tmp_path) -> Path:
    """A project with an editable local path dependency and a marker-excluded package."""
    project = tmp_path / "local-lib"
    shutil.copytree(ROOT / "tests" / "projects" / "local-lib", project)
    return copy_kit(project)


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


@pytest.fixture
def no_leftover_containers(tmp_path):
    """Asserts after the test that no container of a checkout in its folder survived it."""
    yield
    assert kit_containers(tmp_path) == []


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
