"""Issue 11 on the real engine: a Docker build on the Debian stand-in image (glibc 2.36) takes the
runtime's wheels (python3.11: manylinux up to 2_26), and the sources rules hold in the container."""

from __future__ import annotations

import shutil
import zipfile

import pytest
from helpers import PROJECTS, RUNTIME, copy_kit, make
from lambda_kit.audit import audit

pytestmark = [pytest.mark.network, pytest.mark.usefixtures("no_leftover_containers")]


def test_debian_image_builds_with_the_runtimes_wheels_not_its_own_glibcs(tmp_path):
    assert RUNTIME == "3.11"  # the stand-in image's Python; its glibc 2.36 would pick manylinux_2_28
    project = copy_kit(tmp_path / "manylinux-choice")
    shutil.copytree(PROJECTS / "manylinux-choice", project, dirs_exist_ok=True)
    result = make(project, "package")
    assert result.returncode == 0, result.stderr + result.stdout
    zip_path = project / "build.zip"
    with zipfile.ZipFile(zip_path) as zf:
        wheel = zf.read("cryptography-44.0.0.dist-info/WHEEL").decode()
        names = zf.namelist()
    tags = [line.split(": ", 1)[1] for line in wheel.splitlines() if line.startswith("Tag: ")]
    assert tags and all("manylinux_2_28" not in t for t in tags) and any("manylinux_2_17" in t for t in tags), tags
    assert "app.py" in names and any(n.startswith("cffi/") for n in names)
    assert audit.audit_zip(zip_path, runtime="3.11", arch="x86_64", handler="app.handler").errors == 0


def test_sdist_only_package_still_builds_in_the_image_and_odd_names_ship(tmp_path):
    project = copy_kit(tmp_path / "sdist only")
    shutil.copytree(PROJECTS / "sdist-only", project, dirs_exist_ok=True)
    (project / "lambdas" / "build").mkdir()
    (project / "lambdas" / "build" / "__init__.py").write_text("")
    (project / "lambdas" / "new\nline: café.txt").write_text("odd\n")
    result = make(project, "package")
    assert result.returncode == 0, result.stderr + result.stdout
    with zipfile.ZipFile(project / "build.zip") as zf:
        names = zf.namelist()
        assert zf.read("new\nline: café.txt") == b"odd\n"
    assert "docopt.py" in names and "build/__init__.py" in names
