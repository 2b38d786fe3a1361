"""Several functions from one repository, sharing one dependency build; layers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile

import pytest
from helpers import PROJECTS, RUNTIME, copy_kit, kit_env, make

pytestmark = [pytest.mark.network, pytest.mark.usefixtures("no_leftover_containers")]
SETTINGS = ["SRC=functions", "FUNCTIONS=*", "HANDLER=app.handler", "HANDLER_reports=report.main"]


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "functions-repo"
    shutil.copytree(PROJECTS / "functions", folder)
    return copy_kit(folder)


def names(path):
    return set(zipfile.ZipFile(path).namelist())


def test_three_functions_with_make_j3_share_one_dependency_build(project):
    result = make(project, "-j3", "functions", *SETTINGS)
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.count("lambda-kit: docker build ") == 1
    assert result.stdout.count("dependencies unchanged") == 3
    for function, handler_file in (("orders", "app.py"), ("billing", "app.py"), ("reports", "report.py")):
        zip_names = names(project / "dist" / f"{function}.zip")
        assert handler_file in zip_names and "yaml/__init__.py" in zip_names and "six.py" in zip_names
        assert not any(n.startswith(("orders/", "billing/", "reports/")) for n in zip_names)
    assert "report.py" not in names(project / "dist" / "orders.zip")
    again = make(project, "-j3", "functions", *SETTINGS)
    assert again.returncode == 0 and again.stdout == ""  # nothing changed, nothing runs


def test_layer_and_function_zips_without_dependencies(project):
    result = make(project, "functions", "layer", "INCLUDE_DEPS=0", *SETTINGS)
    assert result.returncode == 0, result.stderr + result.stdout
    layer = names(project / "dist" / "layer.zip")
    assert "python/yaml/__init__.py" in layer and "python/six.py" in layer
    assert any(n.startswith("python/") and n.endswith(".dist-info/RECORD") for n in layer)
    assert all(n.startswith("python/") for n in layer)
    orders = names(project / "dist" / "orders.zip")
    assert "app.py" in orders and not any(n.startswith(("yaml/", "six")) for n in orders)

    def check(*extra):
        return subprocess.run(
            [
                sys.executable,
                str(project / "scripts" / "lambda-kit"),
                "check",
                str(project / "dist" / "orders.zip"),
                "--runtime",
                RUNTIME,
                "--handler",
                "app.handler",
                "--lock",
                str(project / "Pipfile.lock"),
                "--json",
                *extra,
            ],
            env=kit_env(),
            capture_output=True,
            text=True,
        )

    alone = check()
    assert alone.returncode == 1 and {f["id"] for f in json.loads(alone.stdout)["findings"]} == {"lock-missing"}
    with_layer = check("--layer", str(project / "dist" / "layer.zip"))
    assert with_layer.returncode == 0, with_layer.stdout
    report = json.loads(with_layer.stdout)
    assert report["findings"] == []
