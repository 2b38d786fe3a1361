"""Shared fixtures. Unit tests need nothing; tests marked `docker` need a Docker engine and the
stand-in base image (see .ci/run): they skip without one on a laptop and FAIL when CI is set."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from lambda_kit import kitfiles  # noqa: E402  (needs scripts/ on sys.path)

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


def pytest_collection_modifyitems(config, items):
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
    """A copy of this repo's worked example: the kit plus the sample function."""
    project = copy_kit(tmp_path / "sample")
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
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["LAMBDA_KIT_VENV"] = sys.prefix
    env.update(extra)
    return env


def make(project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    settings = [f"PYTHON_VERSION={RUNTIME}", f"BASE_IMAGE={BASE_IMAGE}"]
    return subprocess.run(
        ["make", "--no-print-directory", *settings, *args],
        cwd=project,
        env=env or kit_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def kit_containers() -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label={KIT_LABEL}", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return out.split()


def lock_versions(project: Path) -> dict[str, str]:
    lock = json.loads((project / "Pipfile.lock").read_text())
    return {name: entry["version"].lstrip("=") for name, entry in lock["default"].items() if "version" in entry}


@pytest.fixture
def no_leftover_containers():
    """Asserts after the test that no kit container survived it."""
    before = set(kit_containers())
    yield
    assert set(kit_containers()) - before == set()
