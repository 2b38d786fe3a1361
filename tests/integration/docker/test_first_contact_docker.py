"""A newcomer's first run with Docker: an image that cannot be pulled is one plain line (or a build
without Docker when every package has a wheel, the same bytes), and a folder with an awkward name
builds, reports progress and smoke-runs a zip the kit did not write without replacing it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import BASE_IMAGE, PROJECTS, ROOT, copy_kit, copy_sample, kit_env, make


def test_an_image_that_cannot_be_pulled_is_one_plain_line(sample, no_leftover_containers):
    missing = "lambda-kit-test/no-such-image:never"
    result = subprocess.run(
        ["make", "--no-print-directory", "package", "PYTHON_VERSION=3.11", f"BASE_IMAGE={missing}", "BUILDER=docker"],
        cwd=sample,
        env=kit_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("lambda-kit: error:")]
    assert len(errors) == 1 and re.fullmatch(
        r"lambda-kit: error: cannot pull the build image: "
        rf"(no network to the registry|not found|access denied) \({missing}\)",
        errors[0],
    ), result.stderr
    assert f"hint: `docker pull {missing}` shows docker's answer" in result.stderr
    assert "BUILDER=local" in result.stderr and "Traceback" not in result.stderr
    assert not (sample / "build.zip").exists()


def make_with_image(project: Path, image: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "package", "PYTHON_VERSION=3.11", f"BASE_IMAGE={image}", *args],
        cwd=project,
        env=kit_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.network
def test_an_image_that_cannot_be_pulled_builds_without_docker_when_every_package_has_a_wheel(
    sample, tmp_path, no_leftover_containers
):
    missing = "lambda-kit-test/no-such-image:never"  # not on the engine; no registry answers here
    result = make_with_image(sample, missing)  # BUILDER=auto
    assert result.returncode == 0, result.stderr + result.stdout
    fallback = [line for line in result.stdout.splitlines() if "building without Docker" in line]
    assert len(fallback) == 1 and re.fullmatch(
        r"lambda-kit: the build image cannot be pulled "
        rf"\((no network to the registry|not found|access denied): {missing}\): building without Docker, same bytes",
        fallback[0],
    ), result.stdout
    assert "lambda-kit: local build (no Docker)" in result.stdout and result.stderr == ""
    # The same bytes as the local builder's, in another checkout with its own caches.
    other = copy_sample(tmp_path / "other")
    local = make(other, "package", "BUILDER=local")
    assert local.returncode == 0, local.stderr
    assert (sample / "build.zip").read_bytes() == (other / "build.zip").read_bytes()


@pytest.mark.network
def test_an_image_that_cannot_be_pulled_is_still_the_error_when_a_package_needs_docker(
    tmp_path, no_leftover_containers
):
    project = tmp_path / "sdist-only"
    shutil.copytree(PROJECTS / "sdist-only", project)
    copy_kit(project)
    missing = "lambda-kit-test/no-such-image:never"
    result = make_with_image(project, missing)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("lambda-kit: error:")]
    assert len(errors) == 1 and errors[0].startswith("lambda-kit: error: cannot pull the build image: "), result.stderr
    assert errors[0].endswith(f"({missing})")
    hint = result.stderr.split("hint: ", 1)[1]
    assert "BUILDER=local" not in hint and "without Docker: cannot install 1 locked package(s)" in hint, hint
    assert "docopt==0.6.2: only a source distribution" in hint, hint
    assert "Traceback" not in result.stderr and not (project / "build.zip").exists()
    # A typo'd image name is said as it is, never built around.
    typo = make_with_image(project, "Not A/Valid Name")
    assert "cannot pull the build image: not a valid image name" in typo.stderr, typo.stderr
    assert "building without Docker" not in typo.stdout


def test_awkward_folder_builds_with_docker_reports_progress_and_smoke_leaves_a_foreign_zip(
    tmp_path, no_leftover_containers
):
    project = copy_kit(tmp_path / "Acc-_3yi0xyi..Ünï")
    for name in ("lambdas", "events", "Pipfile", "Pipfile.lock"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, project / name)
    env = kit_env(LAMBDA_KIT_PROGRESS_SECONDS="0.2", DOCKER_BUILDKIT="0")
    built = make(project, "-B", "package", "BUILDER=docker", env=env)
    assert built.returncode == 0, built.stderr + built.stdout
    progress = [line for line in built.stdout.splitlines() if line.startswith("lambda-kit: ... ")]
    assert progress and all(re.match(r"lambda-kit: \.\.\. \d+s; ", line) for line in progress), built.stdout
    assert any("image step" in line for line in progress), progress

    # A zip the user brought, older than the sources: smoke runs it as it is, never rebuilt.
    theirs = project / "x.zip"
    shutil.copyfile(project / "build.zip", theirs)
    os.utime(theirs, (946684800, 946684800))
    before = theirs.read_bytes()
    smoke = make(project, "smoke", "ZIP=x.zip", f"RUNTIME_IMAGE={BASE_IMAGE}", env=env)
    assert smoke.returncode == 0, smoke.stderr + smoke.stdout
    assert smoke.stdout.splitlines()[-1].startswith("lambda-kit: smoke passed")
    assert theirs.read_bytes() == before and "docker build" not in smoke.stdout
