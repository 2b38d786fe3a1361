"""BUILDER=local: the same zip without Docker, for locks whose packages all have binary wheels."""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import PROJECTS, copy_kit, kit_env, make, path_without_docker, record_as_kit_output
from lambda_kit.audit import audit


def local_make(project: Path, *args: str):
    return make(project, "package", "BUILDER=local", *args)


def test_arm64_zip_from_an_x86_64_host_without_docker(sample, tmp_path):
    # No docker on PATH at all: the local builder must not need it.
    env = kit_env(PATH=path_without_docker(tmp_path / "bin"))
    result = make(sample, "package", "BUILDER=local", "ARCH=arm64", "PYTHON_VERSION=3.12", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    zip_path = sample / "build.zip"
    natives = [n for n in zipfile.ZipFile(zip_path).namelist() if n.endswith(".so")]
    assert natives and all("aarch64-linux-gnu" in n for n in natives)
    assert audit.audit_zip(zip_path, runtime="3.12", arch="arm64", handler="app.handler").ids() == []
    assert "native-arch" in audit.audit_zip(zip_path, runtime="3.12", arch="x86_64").ids()
    # The helper's bytecode went with its environment, none into the checkout's scripts/.
    assert not list((sample / "scripts").rglob("__pycache__"))
    mirrored = Path(sys.prefix, "lambda-kit-bytecode", *(sample / "scripts" / "lambda_kit").resolve().parts[1:])
    assert (mirrored / "steps" / f"wheelfetch.{sys.implementation.cache_tag}.pyc").is_file()


def test_source_only_package_is_a_clear_error_naming_it(tmp_path):
    project = tmp_path / "sdist-only"
    shutil.copytree(PROJECTS / "sdist-only", project)
    copy_kit(project)
    (project / "build.zip").write_bytes(b"previous zip")
    record_as_kit_output(project, project / "build.zip")
    result = local_make(project)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("lambda-kit: error:")]
    assert errors == [
        "lambda-kit: error: cannot install 1 locked package(s) for python3.11 x86_64: "
        "docopt==0.6.2: only a source distribution (docopt-0.6.2.tar.gz), which this builder cannot compile"
    ]
    assert "make package without BUILDER=local" in result.stderr
    assert (project / "build.zip").read_bytes() == b"previous zip"


@pytest.mark.docker
@pytest.mark.usefixtures("no_leftover_containers")
def test_local_and_docker_builds_of_the_same_inputs_are_byte_identical(sample):
    docker_build = make(sample, "package")
    assert docker_build.returncode == 0, docker_build.stderr
    docker_bytes = (sample / "build.zip").read_bytes()
    # The Docker build's files were chosen by the kit (wheelfetch); here pip chooses and downloads
    # every one: the same files, so the same bytes.
    local = make(sample, "package", "BUILDER=local", env=kit_env(LAMBDA_KIT_FETCH="pip"))
    assert local.returncode == 0, local.stderr
    assert "local build (no Docker)" in local.stdout
    log = (sample / ".lambda-kit" / "build.log").read_text()
    assert "Collecting pydantic-core" in log and "lambda-kit: fetched " not in log
    assert (sample / "build.zip").read_bytes() == docker_bytes
