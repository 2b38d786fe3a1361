"""Locks from any pipenv through make: an entry without hashes, a malformed lock (package and
check) and a missing Pipfile or lock are each the kit's own one-line error, before any build."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest
from helpers import MALFORMED, PROJECTS, changed_lock, copy_kit, kit_env, make, typing_extensions_entry


def test_entry_without_hashes_is_refused_before_docker(tmp_path):
    project = copy_kit(tmp_path / "p")
    shutil.copytree(PROJECTS / "older-pipenv", project, dirs_exist_ok=True)
    lock = changed_lock(lambda ln: typing_extensions_entry(ln).pop("hashes"))
    (project / "Pipfile.lock").write_text(json.dumps(lock))
    result = make(project, "package", "HANDLER=app.handler", env=kit_env(DOCKER_HOST="tcp://127.0.0.1:9"))
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == "lambda-kit: error: typing-extensions==4.12.2 has no hashes in Pipfile.lock"
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("case", ["meta-list", "entry-string", "version-null", "hashes-null"])
def test_malformed_lock_in_make_package_and_check_is_one_line(tmp_path, case):
    project = copy_kit(tmp_path / "p")
    shutil.copytree(PROJECTS / "older-pipenv", project, dirs_exist_ok=True)
    (project / "Pipfile.lock").write_text(json.dumps(changed_lock(MALFORMED[case][0])))
    with zipfile.ZipFile(project / "build.zip", "w") as zf:
        zf.writestr("app.py", "def handler(e, c):\n    return 1\n")
    before = (project / "build.zip").read_bytes()
    for target in ("package", "check"):
        result = make(project, "-B" if target == "package" else "-s", target, "HANDLER=app.handler")
        assert result.returncode != 0, target
        lines = result.stderr.splitlines()
        assert lines[0].startswith(f"lambda-kit: error: malformed lock: {MALFORMED[case][1]}"), (target, result.stderr)
        assert lines[0].endswith("Pipfile.lock)") and lines[1].startswith("hint: run `pipenv lock`")
        assert "Traceback" not in result.stderr + result.stdout
    assert (project / "build.zip").read_bytes() == before


@pytest.mark.parametrize("missing", ["Pipfile", "Pipfile.lock"])
def test_missing_pipfile_or_lock_is_the_kits_own_error(tmp_path, missing):
    project = copy_kit(tmp_path / "p")
    shutil.copytree(PROJECTS / "older-pipenv", project, dirs_exist_ok=True)
    (project / missing).unlink()
    result = make(project, "package", "HANDLER=app.handler")
    assert result.returncode != 0
    assert "No rule to make target" not in result.stderr
    first, hint = result.stderr.splitlines()[:2]
    assert (
        first
        == {
            "Pipfile": f"lambda-kit: error: no Pipfile ({project / 'Pipfile'})",
            "Pipfile.lock": f"lambda-kit: error: no lock file ({project / 'Pipfile.lock'})",
        }[missing]
    )
    assert "pipenv lock" in hint
