"""The kit dropped into an existing repository: its own Makefile, a src/ layout, a handler inside
a package. `make install-kit` copies the kit beside the repo's files; the kit works via `include`
and via `make -f`."""

from __future__ import annotations

import shutil
import subprocess
import zipfile

import pytest
from helpers import BASE_IMAGE, PROJECTS, RUNTIME, copy_kit, kit_env

pytestmark = [pytest.mark.network, pytest.mark.usefixtures("no_leftover_containers")]
SETTINGS = [f"PYTHON_VERSION={RUNTIME}", f"BASE_IMAGE={BASE_IMAGE}", "SRC=src", "HANDLER=myapp.handlers.api.handler"]


def make_in(folder, *args):
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=folder, env=kit_env(), capture_output=True, text=True, timeout=900
    )


def test_install_into_an_existing_repo_then_package_via_include_and_via_f(tmp_path):
    repo = tmp_path / "existing-repo"
    shutil.copytree(PROJECTS / "existing-repo", repo)
    own_makefile = (repo / "Makefile").read_bytes()
    kit = copy_kit(tmp_path / "kit-checkout")

    installed = make_in(kit, "install-kit", f"DEST={repo}")
    assert installed.returncode == 0, installed.stderr
    assert (repo / "Makefile").read_bytes() == own_makefile
    assert sorted(p.name for p in (repo / "lambda-kit").iterdir()) == ["Dockerfile", "Makefile", "scripts"]
    assert "/lambda-kit/.lambda-kit/" in (repo / ".gitignore").read_text().splitlines()

    assert make_in(repo).stdout.strip() == "existing repo: default target"  # its default goal stays

    via_include = make_in(repo, "package", *SETTINGS)
    assert via_include.returncode == 0, via_include.stderr + via_include.stdout
    names = set(zipfile.ZipFile(repo / "build.zip").namelist())
    assert {"myapp/__init__.py", "myapp/handlers/__init__.py", "myapp/handlers/api.py", "yaml/__init__.py"} <= names
    assert not any(n.startswith("src/") for n in names)

    via_f = make_in(repo, "-f", "lambda-kit/Makefile", "package", "ZIP=dist/api.zip", *SETTINGS)
    assert via_f.returncode == 0, via_f.stderr + via_f.stdout
    assert (repo / "dist" / "api.zip").read_bytes() == (repo / "build.zip").read_bytes()

    wrong = make_in(repo, "package", "ZIP=wrong.zip", *SETTINGS[:3], "HANDLER=myapp.handlers.api.missing")
    assert wrong.returncode != 0
    assert "handler-function" in wrong.stderr and not (repo / "wrong.zip").exists()
