"""Issue 23, done when: `make package` of a repository with psycopg2-binary 2.9.5 on python3.11, and
of one with Pillow 10.1 and numpy 1.26, succeeds with Docker and with BUILDER=local: the audit that
ends the build passes them, and the real loader (tests/loaderimage.py) finds every library."""

from __future__ import annotations

import shutil
import zipfile

import pytest
from helpers import PROJECTS, RUNTIME, copy_kit, make
from lambda_kit.audit import audit
from loaderimage import loader_image, loader_verdicts

BUNDLED = {"psycopg2-binary": "psycopg2_binary.libs/", "pillow-numpy": "Pillow.libs/"}


def project_copy(tmp_path, name: str):
    project = copy_kit(tmp_path / name)
    shutil.copytree(PROJECTS / name, project, dirs_exist_ok=True)
    return project


def built_and_loadable(project, name: str, *args: str) -> None:
    result = make(project, "package", *args)
    assert result.returncode == 0, result.stderr + result.stdout
    zip_path = project / "build.zip"
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
    assert "app.py" in names and any(n.startswith(BUNDLED[name]) for n in names)
    report = audit.audit_zip(zip_path, runtime=RUNTIME, arch="x86_64", handler="app.handler")
    assert [f.id for f in report.findings if f.id.startswith("native-")] == []
    return zip_path


@pytest.mark.docker
@pytest.mark.usefixtures("no_leftover_containers")
@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_make_package_with_docker(tmp_path, name):
    assert RUNTIME == "3.11"
    zip_path = built_and_loadable(project_copy(tmp_path, name), name)
    verdicts = loader_verdicts(loader_image(RUNTIME), zip_path)
    assert verdicts and all(missing == [] for missing in verdicts.values()), verdicts


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_make_package_with_the_local_builder(tmp_path, name):
    built_and_loadable(project_copy(tmp_path, name), name, "BUILDER=local")
