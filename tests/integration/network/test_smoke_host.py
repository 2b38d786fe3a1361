"""`make smoke` without Docker: on a host whose Python is the runtime's version, the zip is unpacked in
a temporary task folder and the handler loaded by awslambdaric in a separate process with only the
zip on its path, with a line saying it ran on the host; on another Python, the error as before."""

from __future__ import annotations

import json
import platform
import zipfile
from pathlib import Path

import pytest
from helpers import HOST_PYTHON, RUNTIME, kit_env, make, path_without_docker

# In network/: awslambdaric comes from the index, once per machine cache.
pytestmark = pytest.mark.skipif(
    HOST_PYTHON != RUNTIME or platform.machine() != "x86_64",
    reason=f"the host runs python{HOST_PYTHON} on {platform.machine()}, the tests' zips are for {RUNTIME} x86_64",
)
ON_HOST = "running the handler on the host"


@pytest.fixture
def no_docker(tmp_path) -> dict[str, str]:
    return kit_env(PATH=path_without_docker(tmp_path / "no-docker-bin"))


def without(source: Path, dest: Path, folder: str) -> Path:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if not info.filename.startswith(folder):
                out.writestr(info, src.read(info))
    return dest


def test_without_docker_the_sample_runs_on_the_host_with_only_the_zip_on_its_path(sample, no_docker):
    built = make(sample, "package", env=no_docker)
    assert built.returncode == 0, built.stderr + built.stdout
    result = make(sample, "smoke", "EVENT=events/order.json", env=no_docker)
    assert result.returncode == 0, result.stderr + result.stdout
    lines = result.stdout.splitlines()
    said = [line for line in lines if ON_HOST in line]
    assert len(said) == 1 and "not in the Lambda image" in said[0] and f"python{RUNTIME}" in said[0], lines
    response = json.loads(next(line for line in lines if line.startswith('{"statusCode"')))
    assert response["statusCode"] == 200 and json.loads(response["body"])["total"] == "104.40"
    assert any(line.startswith("lambda-kit: smoke passed: app.handler returned") for line in lines), lines

    # PyYAML is in this host's own site-packages, not in this zip: the handler fails as on Lambda.
    without(sample / "build.zip", sample / "no-yaml.zip", "yaml/")
    broken = make(sample, "smoke", "ZIP=no-yaml.zip", env=no_docker)
    assert broken.returncode != 0, broken.stdout
    assert broken.stderr.startswith(
        "lambda-kit: error: the handler failed (Runtime.ImportModuleError: Unable to import module 'app': "
        "No module named 'yaml')"
    ), broken.stderr
    assert "Traceback" not in broken.stderr


def test_without_docker_another_runtime_than_the_hosts_is_the_error_it_was(sample, no_docker):
    plain = sample / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        info = zipfile.ZipInfo("app.py")
        info.external_attr = 0o100644 << 16
        zf.writestr(info, "def handler(event, context):\n    return 1\n")
    other = "3.12" if HOST_PYTHON != "3.12" else "3.13"
    result = make(sample, "smoke", "ZIP=plain.zip", f"PYTHON_VERSION={other}", env=no_docker)
    assert result.returncode != 0
    assert result.stderr.startswith("lambda-kit: error: docker is not installed or not on PATH"), result.stderr
    assert ON_HOST not in result.stdout
