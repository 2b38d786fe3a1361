"""Issue 11, locks from any pipenv: the older Pipfile hash, required sections, Pipfile names in the
lock, malformed shapes as one line (package and check --lock), missing Pipfile or lock."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest
from helpers import PROJECTS, copy_kit, kit_env, make
from lambda_kit.lock import lockfile

GOOD = json.loads((PROJECTS / "older-pipenv" / "Pipfile.lock").read_text())


def _with(change) -> dict:
    lock = json.loads(json.dumps(GOOD))
    change(lock)
    return lock


def _entry(lock) -> dict:
    return lock["default"]["typing-extensions"]


# (what is changed, the key the error must name)
MALFORMED = {
    "meta-list": (lambda ln: ln.__setitem__("_meta", []), "_meta is a list"),
    "meta-missing": (lambda ln: ln.pop("_meta"), "_meta is missing"),
    "hash-missing": (lambda ln: ln["_meta"].pop("hash"), "_meta.hash.sha256"),
    "sources-string": (lambda ln: ln["_meta"].__setitem__("sources", "pypi"), "_meta.sources"),
    "default-missing": (lambda ln: ln.pop("default"), "default is missing"),
    "default-list": (lambda ln: ln.__setitem__("default", []), "default is a list"),
    "entry-string": (
        lambda ln: ln["default"].__setitem__("typing-extensions", "==4.12.2"),
        "default.typing-extensions is a string",
    ),
    "version-null": (lambda ln: _entry(ln).__setitem__("version", None), "default.typing-extensions has version null"),
    "hashes-null": (lambda ln: _entry(ln).__setitem__("hashes", None), "default.typing-extensions has hashes"),
    "hash-no-algorithm": (
        lambda ln: _entry(ln).__setitem__("hashes", ["04e5ca03"]),
        "default.typing-extensions has hashes",
    ),
    "markers-number": (
        lambda ln: _entry(ln).__setitem__("markers", 3),
        "default.typing-extensions has markers a number",
    ),
    "develop-entry-list": (lambda ln: ln["develop"].__setitem__("pytest", []), "develop.pytest is a list"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_each_malformed_shape_names_the_file_and_key(tmp_path, case):
    change, expected = MALFORMED[case]
    path = tmp_path / "Pipfile.lock"
    path.write_text(json.dumps(_with(change)))
    with pytest.raises(lockfile.LockError) as caught:
        lockfile.load(path)
    assert str(caught.value) == f"malformed lock: {expected}" + str(caught.value).split(expected, 1)[1]
    assert str(caught.value).endswith(f"({path})") and "\n" not in str(caught.value)


def test_the_good_lock_has_no_shape_problem():
    assert lockfile.shape_problem(GOOD) is None


def test_entry_without_hashes_is_refused_before_docker(tmp_path):
    project = copy_kit(tmp_path / "p")
    shutil.copytree(PROJECTS / "older-pipenv", project, dirs_exist_ok=True)
    lock = _with(lambda ln: _entry(ln).pop("hashes"))
    (project / "Pipfile.lock").write_text(json.dumps(lock))
    result = make(project, "package", "HANDLER=app.handler", env=kit_env(DOCKER_HOST="tcp://127.0.0.1:9"))
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == "lambda-kit: error: typing-extensions==4.12.2 has no hashes in Pipfile.lock"
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("case", ["meta-list", "entry-string", "version-null", "hashes-null"])
def test_malformed_lock_in_make_package_and_check_is_one_line(tmp_path, case):
    project = copy_kit(tmp_path / "p")
    shutil.copytree(PROJECTS / "older-pipenv", project, dirs_exist_ok=True)
    (project / "Pipfile.lock").write_text(json.dumps(_with(MALFORMED[case][0])))
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


@pytest.mark.network
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


@pytest.mark.network
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
