"""A newcomer's first run: no Docker is no problem, image problems in plain words, progress on long
work, image names valid whatever the folder is called, and no zip replaced that the kit did not write."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from helpers import BASE_IMAGE, PROJECTS, ROOT, copy_kit, copy_sample, kit_env, make, path_without_docker
from lambda_kit.builders import docker
from lambda_kit.common import runtimes
from lambda_kit.plan.buildplan import image_tag
from lambda_kit.builders.progress import BuildProgress

# Docker's reference grammar (distribution/reference): path components of lower-case letters and
# digits joined by one separator (`.`, `_`, `__` or a run of `-`); a tag of up to 128 word characters.
COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REFERENCE = re.compile(rf"^{COMPONENT}(?:/{COMPONENT})*:[\w][\w.-]{{0,127}}$")

AWKWARD_NAMES = [
    "acc-_3yi0xyi",
    "my_-lambda",
    "old..copy",
    "__init__",
    "..hidden",
    "_leading",
    "-dash-",
    "UPPER Case",
    "Ünïcödé-fünctiön",
    "日本語",
    "a" * 200,
    "x.-_.y",
    "a__b",
    "a___b",
    "tab\there",
    "new\nline",
    "-",
]


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_image_tags_are_valid_docker_references_whatever_the_folder_is_called(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    tag = image_tag(folder, runtimes.lookup("3.12"), "x86_64")
    assert REFERENCE.match(tag), tag
    assert len(tag) <= 255


def test_pull_failures_are_classified_from_dockers_words():
    network = (
        'Error response from daemon: Get "https://public.ecr.aws/v2/": dial tcp: lookup public.ecr.aws: no such host'
    )
    assert docker.pull_problem(network) == "no network to the registry"
    assert (
        docker.pull_problem("Error response from daemon: manifest for x/y:z not found: manifest unknown") == "not found"
    )
    assert docker.pull_problem("Error response from daemon: unauthorized: authentication required") == "access denied"
    assert (
        docker.pull_problem("invalid reference format: repository name must be lowercase") == "not a valid image name"
    )


def test_progress_counts_what_both_builders_logs_say():
    ticks = iter(range(0, 1000, 7))
    progress = BuildProgress(total=3, out=io.StringIO(), live=False, every=10, clock=lambda: next(ticks))
    for line in [
        "Step 5/11 : RUN --mount=... tools/bin/python -m lambda_kit.steps.incontainer deps",  # legacy builder
        "lambda-kit: lock verified against Pipfile (pipenv verify)",
        "#9 3.21 Downloading idna-3.10-py3-none-any.whl (70 kB)",  # BuildKit's prefix
        "#9 3.40 Saved /opt/lambda-kit/out/wheels/idna-3.10-py3-none-any.whl",
        "Downloading pyyaml-6.0.2-cp311-manylinux_2_17_x86_64.whl (1.2 MB)",
        "Saved ./wheels/pyyaml-6.0.2-cp311-manylinux_2_17_x86_64.whl",
        "File was already downloaded /opt/lambda-kit/out/wheels/six-1.17.0-py2.py3-none-any.whl",
        "lambda-kit: installing",
    ]:
        progress.feed(line)
    assert progress.line() == (
        "lambda-kit: ... 7s; image step 5/11; packages: 3 of 3 fetched (2 downloaded, 1.3 MB; 1 reused), "
        "0 of 3 installed; now: installing"
    )
    progress.feed("lambda-kit: 2 wheels unpacked (hash-checked against the lock)")  # the kit's installer
    progress.feed("Successfully installed idna-3.10")  # pip, for a source distribution
    progress.feed("lambda-kit: installed 3 hash-checked and 0 local/VCS packages from [packages]")
    assert "3 of 3 installed; now: installed 3 hash-checked" in progress.line()


def foreign_zip(path: Path) -> bytes:
    """A zip the kit did not write, older than every project file (make would call it out of date)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("app.py", "def handler(event, context):\n    return 'theirs'\n")
    os.utime(path, (946684800, 946684800))  # 2000-01-01
    return path.read_bytes()


def test_check_and_clean_leave_a_foreign_zip_alone_and_package_refuses_it(sample):
    theirs = sample / "x.zip"
    before = foreign_zip(theirs)
    check = make(sample, "check", "ZIP=x.zip")
    assert "lambda-kit: audit of" in check.stdout and theirs.read_bytes() == before
    package = make(sample, "package", "ZIP=x.zip")
    assert package.returncode != 0
    assert package.stderr.splitlines()[0] == (
        f"lambda-kit: error: refusing to replace a zip the kit did not write (or that changed since) ({theirs})"
    )
    assert package.stderr.splitlines()[1].startswith("hint: move it away or delete it")
    assert "Traceback" not in package.stderr and theirs.read_bytes() == before
    clean = make(sample, "clean", "ZIP=x.zip")
    assert clean.returncode == 0 and f"kept {theirs} (not written by the kit)" in clean.stdout
    assert theirs.read_bytes() == before


def no_docker_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return kit_env(PATH=path_without_docker(tmp_path / "no-docker-bin"), LAMBDA_KIT_PROGRESS_SECONDS="0.2", **extra)


@pytest.mark.network
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


@pytest.mark.network
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


@pytest.mark.docker
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
        cwd=project, env=kit_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.docker
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


@pytest.mark.docker
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


@pytest.mark.docker
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
