"""The function's sources through make: SRC=. with the kit copied in, odd file names and a
repository path with spaces, and make's change check using the same answer as the zip."""

from __future__ import annotations

import zipfile
from pathlib import Path

from helpers import ODD_NAMES, kit_env, make, root_package


def _zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


def test_src_dot_with_the_kit_copied_in_odd_names_and_a_spaced_repo_path(tmp_path):
    repo = root_package(tmp_path / "my repo")
    for name in ODD_NAMES:
        (repo / "aws_lambda" / name).write_text("x = 1\n")
    build = ("-f", "lambda-kit/Makefile", "package", "SRC=.", "HANDLER=aws_lambda.sqs_handler.handler", "BUILDER=local")
    env = kit_env(DOCKER_HOST="tcp://127.0.0.1:9")  # nothing here may need docker
    result = make(repo, *build, env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    names = _zip_names(repo / "build.zip")
    code = [n for n in names if not n.startswith(("six", "six-"))]
    assert not any(
        n.startswith(("lambda-kit/", ".lambda-kit")) or n.split("/")[-1] in ("Pipfile", "Pipfile.lock") for n in names
    ), code
    assert ".gitignore" not in names and "build.zip" not in names
    assert {
        "aws_lambda/build/__init__.py",
        "aws_lambda/dist/data.txt",
        "aws_lambda/node_modules/left-pad/index.js",
    } <= set(names)
    assert {f"aws_lambda/{n}" for n in ODD_NAMES} <= set(names)
    assert "six.py" in names

    # A no-op runs nothing; an excluded file (bytecode) changes nothing; a code change rebuilds.
    zip_path = repo / "build.zip"
    before = zip_path.stat().st_mtime_ns
    again = make(repo, *build, env=env)
    assert again.returncode == 0 and "lambda-kit:" not in again.stdout + again.stderr, again.stdout + again.stderr
    (repo / "aws_lambda" / "__pycache__").mkdir()
    (repo / "aws_lambda" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    again = make(repo, *build, env=env)
    assert again.returncode == 0 and "lambda-kit:" not in again.stdout + again.stderr
    assert zip_path.stat().st_mtime_ns == before
    (repo / "aws_lambda" / "new\nline.txt").write_text("x = 2\n")
    again = make(repo, *build, env=env)
    assert again.returncode == 0 and "lambda-kit: wrote" in again.stdout, again.stderr
    with zipfile.ZipFile(zip_path) as zf:
        assert zf.read("aws_lambda/new\nline.txt") == b"x = 2\n"

    # A dangling link: one line naming it, the zip untouched.
    (repo / "aws_lambda" / "gone.py").symlink_to("nowhere.py")
    kept = zip_path.read_bytes()
    bad = make(repo, *build, env=env)
    assert bad.returncode != 0
    assert (
        bad.stderr.splitlines()[0]
        == "lambda-kit: error: a symlink under SRC points to nothing (aws_lambda/gone.py -> nowhere.py)"
    )
    assert "Traceback" not in bad.stderr and zip_path.read_bytes() == kept
