"""Shared fixtures, and the markers each test gets from its folder.

tests/unit/<stage>/ mirrors scripts/lambda_kit/<stage>/: the kit's code called in this process, or
its command line on files the test made, with local fakes at most (moto, a fake index, pip as the
oracle). tests/integration/ holds the rest, by what each folder's tests need:

- docker/: a Docker engine and the stand-in base image (marker `docker`);
- network/: downloads from the package index (marker `network`);
- corpus/: the audit on the most downloaded packages (markers `corpus` and `network`);
- make/: `make` run in a checkout, with neither Docker nor the index as a folder; a test or
  parameter there that needs one carries its own marker.

A test's own marker adds what its folder does not say (a Docker test among network ones). Docker
tests skip without an engine on a laptop and FAIL when CI is set (see .ci/run)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from awsfake import _moto_server, local_aws  # noqa: F401  (a local AWS API for any test)
from helpers import PROJECTS, TESTS, copy_kit, copy_sample, docker_problem, kit_containers

FOLDER_MARKERS = {"docker": ("docker",), "network": ("network",), "corpus": ("corpus", "network")}
NETWORK_FIXTURES = {"wheels"}  # fixtures that download real wheels from the index


def folder_markers(path: Path) -> tuple[str, ...]:
    """The markers of tests/integration/<folder>/ for a test file under it; none elsewhere."""
    parts = path.relative_to(TESTS).parts
    if len(parts) > 2 and parts[0] == "integration":
        return FOLDER_MARKERS.get(parts[1], ())
    return ()


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        for name in folder_markers(item.path):
            item.add_marker(name)
        if NETWORK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.network)
    docker_items = [i for i in items if "docker" in i.keywords]
    if not docker_items:
        return
    problem = docker_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"CI is set and Docker tests cannot run: {problem}")
    for item in docker_items:
        item.add_marker(pytest.mark.skip(reason=problem))


@pytest.fixture
def sample(tmp_path) -> Path:
    return copy_sample(tmp_path / "sample")


@pytest.fixture
def local_lib_project(tmp_path) -> Path:
    """A project with an editable local path dependency and a marker-excluded package."""
    project = tmp_path / "local-lib"
    shutil.copytree(PROJECTS / "local-lib", project)
    return copy_kit(project)


@pytest.fixture
def no_leftover_containers(tmp_path):
    """Asserts after the test that no container of a checkout in its folder survived it."""
    yield
    assert kit_containers(tmp_path) == []
