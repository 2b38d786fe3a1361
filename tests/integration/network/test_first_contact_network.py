"""A newcomer's first run without Docker: the default builder falls back to the local one and
says so, with progress on long work; a lock that needs Docker names the package that does."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

from helpers import PROJECTS, copy_kit, kit_env, make, path_without_docker


def no_docker_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return kit_env(PATH=path_without_docker(tmp_path / "no-docker-bin"), LAMBDA_KIT_PROGRESS_SECONDS="0.2", **extra)


def test_without_docker_the_default_builder_falls_back_to_local_and_says_so(sample, tmp_path):
    result = make(sample, "package", env=no_docker_env(tmp_path))
    assert result.returncode == 0, result.stderr + result.stdout
    assert (
        "lambda-kit: no Docker engine (docker is not installed or not on PATH): building without Docker, same bytes"
        in result.stdout.splitlines()
    )
    progress = [line for line in result.stdout.splitlines() if line.startswith("lambda-kit: ... ")]
    assert progress and any(re.search(r"packages: \d+ of \d+ fetched", line) for line in progress), result.stdout
    assert zipfile.ZipFile(sample / "build.zip").testzip() is None
    # The kit's own zip is replaced without a question; `make clean` removes it.
    (sample / "lambdas" / "app.py").write_text((sample / "lambdas" / "app.py").read_text() + "\n# changed\n")
    again = make(sample, "package", env=no_docker_env(tmp_path))
    assert again.returncode == 0 and "dependencies unchanged" in again.stdout, again.stderr
    assert make(sample, "clean", env=no_docker_env(tmp_path)).returncode == 0
    assert not (sample / "build.zip").exists()


def test_a_lock_that_needs_docker_without_an_engine_names_the_package(tmp_path):
    project = tmp_path / "sdist-only"
    shutil.copytree(PROJECTS / "sdist-only", project)
    copy_kit(project)
    result = make(project, "package", env=no_docker_env(tmp_path))
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("lambda-kit: error:")]
    assert len(errors) == 1 and "docopt==0.6.2: only a source distribution (docopt-0.6.2.tar.gz)" in errors[0], (
        result.stderr
    )
    assert "hint: Docker is needed for such packages" in result.stderr
    assert "Traceback" not in result.stderr and not (project / "build.zip").exists()
