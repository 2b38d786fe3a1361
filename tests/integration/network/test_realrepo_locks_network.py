"""Locks from any pipenv, built: an older pipenv's lock builds, a stale one shows both Pipfile
hashes, a missing name is named; every package without a wheel is one clause of one error, with why."""

from __future__ import annotations

import json
import shutil
import zipfile

from helpers import PROJECTS, copy_kit, make


def test_older_pipenv_lock_builds_stale_shows_both_hashes_missing_name_is_named(tmp_path):
    project = copy_kit(tmp_path / "older-pipenv")
    shutil.copytree(PROJECTS / "older-pipenv", project, dirs_exist_ok=True)
    build = ("package", "BUILDER=local", "HANDLER=app.handler")
    result = make(project, *build)
    assert result.returncode == 0, result.stderr + result.stdout
    names = zipfile.ZipFile(project / "build.zip").namelist()
    assert "typing_extensions.py" in names and "app.py" in names
    assert "lambda-kit: lock verified against Pipfile (the hash older pipenv wrote" in result.stdout
    before = (project / "build.zip").read_bytes()

    # A package added to the Pipfile without re-locking: stale under both hashes.
    pipfile = (project / "Pipfile").read_text()
    (project / "Pipfile").write_text(pipfile.replace('typing_extensions = "*"', 'typing_extensions = "*"\nsix = "*"'))
    result = make(project, *build)
    assert result.returncode != 0
    first = result.stderr.splitlines()[0]
    assert first.startswith("lambda-kit: error: Pipfile.lock is out of date: its hash 68d8c8a0daf4")
    assert "(pipenv now)" in first and "(older pipenv)" in first
    stale = [line for line in result.stdout.splitlines() if line.startswith("lambda-kit: lock hash ")][-1]
    assert (
        len([w for w in stale.replace(",", " ").split() if len(w) == 64]) == 3
    )  # the lock's and both of the Pipfile's
    assert (project / "build.zip").read_bytes() == before

    # The hash matches but `default` lacks a [packages] name (a hand-edited lock).
    (project / "Pipfile").write_text(pipfile)
    lock = json.loads((project / "Pipfile.lock").read_text())
    lock["default"] = {
        "six": {
            "version": "==1.17.0",
            "hashes": ["sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"],
        }
    }
    (project / "Pipfile.lock").write_text(json.dumps(lock))
    result = make(project, *build)
    assert result.returncode != 0
    assert (
        result.stderr.splitlines()[0]
        == "lambda-kit: error: Pipfile.lock's default lacks [packages] of the Pipfile (typing_extensions)"
    )
    assert "Traceback" not in result.stderr + result.stdout
    assert (project / "build.zip").read_bytes() == before


def test_every_package_without_a_wheel_in_one_error_each_with_why(tmp_path):
    project = copy_kit(tmp_path / "no-wheels")
    shutil.copytree(PROJECTS / "no-wheels", project, dirs_exist_ok=True)
    result = make(project, "package", "BUILDER=local")
    assert result.returncode != 0
    first = result.stderr.splitlines()[0]
    assert first.startswith("lambda-kit: error: cannot install 3 locked package(s) for python3.11 x86_64: "), first
    clauses = first.split("x86_64: ", 1)[1].split("; ")
    assert (
        clauses[0]
        == "docopt==0.6.2: only a source distribution (docopt-0.6.2.tar.gz), which this builder cannot compile"
    )
    assert clauses[1].startswith(
        "psycopg2-binary==2.9.3: only a source distribution (psycopg2-binary-2.9.3.tar.gz), "
        "which this builder cannot compile (2.9."
    )
    assert clauses[1].endswith(" has one)")
    assert clauses[2].startswith("six==9.9.9: no such version on pypi.org (latest: 1.")
    assert "typing" not in first and "Traceback" not in result.stderr
    assert not (project / "build.zip").exists()
