"""The same zip from every lock format, through make: the sample function's dependency set locked as
Pipfile.lock, pylock.toml, uv.lock, poetry.lock and requirements.txt (tests/projects/locks, made by
the real tools) builds byte-identical zips, with BUILDER=local and with Docker; a stale uv.lock or
poetry.lock is refused before any build; `make check` reads any format."""

from __future__ import annotations

import hashlib
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import PROJECTS, ROOT, copy_kit, make

LOCKS = PROJECTS / "locks"
CASES = {
    "pipenv": "Pipfile.lock",
    "pylock": "pylock.toml",
    "pylock-pip": "pylock.toml",
    "uv": "uv.lock",
    "poetry": "poetry.lock",
    "requirements": "requirements.txt",
}


def project(tmp_path: Path, case: str) -> Path:
    folder = copy_kit(tmp_path / case)
    shutil.copytree(ROOT / "lambdas", folder / "lambdas")
    for path in (LOCKS / case).iterdir():
        shutil.copy2(path, folder / path.name)
    return folder


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_all(tmp_path: Path, *settings: str) -> dict[str, str]:
    digests = {}
    for case, lock in CASES.items():
        folder = project(tmp_path, case)
        result = make(folder, "package", *settings)
        assert result.returncode == 0, (case, result.stdout + result.stderr)
        if case != "pipenv":
            assert f"lambda-kit: building from {lock}, the project's lock" in result.stdout
        names = zipfile.ZipFile(folder / "build.zip").namelist()
        assert "app.py" in names and not [n for n in names if n.startswith(("pytest", "_pytest", "pluggy"))]
        digests[case] = digest(folder / "build.zip")
        if "BUILDER=docker" in settings:  # this checkout's images go with it
            assert make(folder, "clean").returncode == 0
    return digests


def test_every_lock_format_builds_the_same_bytes_locally(tmp_path):
    digests = build_all(tmp_path, "BUILDER=local")
    assert len(set(digests.values())) == 1, digests
    # Nothing changed: make runs nothing; the project file touched: the helper runs, the dependencies are cached.
    folder = tmp_path / "uv"
    again = make(folder, "package", "BUILDER=local")
    assert again.returncode == 0 and "lambda-kit" not in again.stdout + again.stderr
    (folder / "pyproject.toml").touch()
    touched = make(folder, "package", "BUILDER=local")
    assert "dependencies unchanged" in touched.stdout and digest(folder / "build.zip") == digests["uv"]
    # SLIM and COMPILE (the runtime's Python compiles, so the host's: PYTHON_VERSION is the host's here).
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    slim = {}
    for case in ("pipenv", "poetry"):
        built = make(
            tmp_path / case, "package", "BUILDER=local", "SLIM=1", "COMPILE=1", "ZIP=slim.zip", f"PYTHON_VERSION={host}"
        )
        assert built.returncode == 0, built.stdout + built.stderr
        slim[case] = digest(tmp_path / case / "slim.zip")
    assert slim["pipenv"] == slim["poetry"] != digests["pipenv"]


@pytest.mark.docker
def test_every_lock_format_builds_the_same_bytes_in_docker(tmp_path):
    digests = build_all(tmp_path, "BUILDER=docker")
    assert len(set(digests.values())) == 1, digests


@pytest.mark.parametrize("case", ["uv", "poetry"])
def test_a_stale_lock_is_refused_before_any_build_and_the_zip_kept(tmp_path, case):
    folder = project(tmp_path, case)
    assert make(folder, "package", "BUILDER=local").returncode == 0
    before = (folder / "build.zip").read_bytes()
    pyproject = folder / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pyyaml"', '"pyyaml", "six"', 1))
    shutil.rmtree(folder / ".lambda-kit" / "wheelhouse")
    result = make(folder, "package", "BUILDER=local")
    assert result.returncode != 0
    first, hint = result.stderr.splitlines()[:2]
    assert first.startswith(f"lambda-kit: error: {CASES[case]} is out of date with pyproject.toml (")
    assert hint == f"hint: run `{case} lock` and commit {CASES[case]}"
    assert "Traceback" not in result.stdout + result.stderr and "downloaded" not in result.stdout
    assert not (folder / ".lambda-kit" / "wheelhouse").exists() or not any(
        (folder / ".lambda-kit" / "wheelhouse").glob("*.whl")
    )
    assert (folder / "build.zip").read_bytes() == before
    # With Docker too: refused before Docker is asked anything.
    docker = make(folder, "package", "BUILDER=docker")
    assert docker.returncode != 0 and docker.stderr.splitlines()[0] == first, docker.stdout + docker.stderr
    assert "docker" not in docker.stdout and (folder / "build.zip").read_bytes() == before


def test_make_check_reads_any_lock_and_a_changed_version_is_an_error(tmp_path):
    folder = project(tmp_path, "uv")
    assert make(folder, "package", "BUILDER=local").returncode == 0
    for case, lock in CASES.items():
        shutil.copy2(LOCKS / case / lock, folder / f"other-{case}" if case == "pipenv" else folder / lock)
    checked = make(folder, "-s", "check", "LOCK=poetry.lock")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (folder / "poetry.lock").unlink()
    (folder / "requirements.txt").write_text(
        (LOCKS / "requirements" / "requirements.txt").read_text().replace("idna==3.20", "idna==3.21")
    )
    for lock in ("uv.lock", "pylock.toml"):
        assert make(folder, "-s", "check", f"LOCK={lock}").returncode == 0
    stale = make(folder, "-s", "check", "LOCK=requirements.txt")
    assert stale.returncode != 0 and "idna 3.20 (lock: 3.21)" in stale.stdout, stale.stdout + stale.stderr
    two = make(folder, "-s", "check")
    assert two.returncode != 0
    assert two.stderr.splitlines()[0].startswith(f"lambda-kit: error: more than one lock in {folder} (")


def test_functions_and_a_layer_from_a_poetry_lock_share_one_build(tmp_path):
    folder = copy_kit(tmp_path / "poetry-functions")
    shutil.copytree(PROJECTS / "functions" / "functions", folder / "functions")
    for path in (LOCKS / "poetry").iterdir():
        shutil.copy2(path, folder / path.name)
    settings = ["SRC=functions", "FUNCTIONS=*", "HANDLER=app.handler", "HANDLER_reports=report.main", "BUILDER=local"]
    result = make(folder, "-j3", "functions", "layer", *settings)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("lambda-kit: local build") == 1 and result.stdout.count("dependencies unchanged") == 4
    layer = set(zipfile.ZipFile(folder / "dist" / "layer.zip").namelist())
    assert "python/yaml/__init__.py" in layer and not any("pytest" in n or "orjson" in n for n in layer)
    for function in ("orders", "billing", "reports"):
        assert "pydantic/__init__.py" in zipfile.ZipFile(folder / "dist" / f"{function}.zip").namelist()
