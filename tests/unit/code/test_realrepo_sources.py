"""Issue 11, one definition of the function's sources: defaults, EXCLUDE, SRC=. with the kit copied
in, odd file names and repository paths, symlinks, and make's change check using the same answer."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest
from helpers import PROJECTS, copy_kit, kit_env, make
from lambda_kit.code import sources
from lambda_kit.common.errors import KitError

ODD_NAMES = ("with space.py", "colon:name.txt", "new\nline.txt", "café_ünï.py")


def root_package(parent: Path) -> Path:
    """tests/projects/root-package with the kit copied in as lambda-kit/, as a new user would."""
    shutil.copytree(PROJECTS / "root-package", parent)
    copy_kit(parent / "lambda-kit")
    return parent


def rules(repo: Path, src: Path | None = None, **extra) -> sources.SourceRules:
    kit = repo / "lambda-kit"
    return sources.SourceRules(
        src=src or repo,
        repo=repo,
        kit_dir=kit,
        state_dir=kit / ".lambda-kit",
        out=repo / "build.zip",
        dist=repo / "dist",
        **extra,
    )


def names(selection: sources.Selection) -> set[str]:
    return set(selection.dirs) | {name for name, _, _ in selection.files}


def test_defaults_leave_out_vcs_bytecode_pipfiles_and_the_kit_only(tmp_path):
    repo = root_package(tmp_path / "repo")
    (repo / ".git").mkdir()
    (repo / ".git" / "config").write_text("[core]\n")
    (repo / "aws_lambda" / "__pycache__").mkdir()
    (repo / "aws_lambda" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")
    (repo / "aws_lambda" / "stale.pyc").write_bytes(b"")
    (repo / "lambda-kit" / ".lambda-kit").mkdir()
    (repo / "lambda-kit" / ".lambda-kit" / "build.log").write_text("log")
    (repo / "build.zip").write_bytes(b"old")
    (repo / ".build.zip.abc123").mkdir()
    (repo / ".build.zip.abc123" / "build.zip").write_bytes(b"half")
    (repo / "dist").mkdir()
    (repo / "dist" / "orders.zip").write_bytes(b"zip")
    (repo / "aws_lambda" / "dist" / "build.zip").write_bytes(b"not the kit's: another folder")
    got = names(sources.select(rules(repo)))
    assert got == {
        "aws_lambda/",
        "aws_lambda/__init__.py",
        "aws_lambda/sqs_handler.py",
        "aws_lambda/build/",
        "aws_lambda/build/__init__.py",
        "aws_lambda/dist/",
        "aws_lambda/dist/data.txt",
        "aws_lambda/dist/build.zip",
        "aws_lambda/node_modules/",
        "aws_lambda/node_modules/left-pad/",
        "aws_lambda/node_modules/left-pad/index.js",
        "aws_lambda/sub/",
    }


def test_exclude_takes_gitignore_patterns(tmp_path):
    repo = root_package(tmp_path / "repo")
    (repo / "aws_lambda" / "tests").mkdir()
    (repo / "aws_lambda" / "tests" / "test_x.py").write_text("")
    (repo / "README.md").write_text("")
    (repo / "aws_lambda" / "KEEP.md").write_text("")
    got = names(
        sources.select(rules(repo, exclude=("tests/", "*.md", "!aws_lambda/KEEP.md", "/aws_lambda/node_modules")))
    )
    assert "aws_lambda/tests/" not in got and "aws_lambda/tests/test_x.py" not in got
    assert "README.md" not in got and "aws_lambda/KEEP.md" in got
    assert not any(n.startswith("aws_lambda/node_modules") for n in got)
    assert "aws_lambda/build/__init__.py" in got


def test_odd_names_are_selected_and_a_non_utf8_name_is_one_error(tmp_path):
    repo = root_package(tmp_path / "my repo")
    for name in ODD_NAMES:
        (repo / "aws_lambda" / name).write_text("x = 1\n")
    got = names(sources.select(rules(repo)))
    assert {f"aws_lambda/{n}" for n in ODD_NAMES} <= got
    os.close(os.open(os.fsencode(repo / "aws_lambda") + b"/bad\xff.py", os.O_CREAT | os.O_WRONLY, 0o644))
    with pytest.raises(sources.SourceError) as caught:
        sources.select(rules(repo))
    assert str(caught.value) == "a file name under SRC is not valid UTF-8 (aws_lambda/bad\\xff.py)"


def test_symlinks_inside_are_files_outside_loops_and_dangling_are_errors(tmp_path):
    repo = root_package(tmp_path / "repo")
    (repo / "shared").mkdir()
    (repo / "shared" / "config.json").write_text("{}")
    (repo / "aws_lambda" / "config.json").symlink_to("../shared/config.json")
    (repo / "aws_lambda" / "shared").symlink_to("../shared")
    selection = sources.select(rules(repo, src=repo / "aws_lambda"))
    files = {name: path for name, path, _ in selection.files}
    assert files["config.json"] == (repo / "shared" / "config.json").resolve()
    assert "shared/config.json" in files

    outside = tmp_path / "secrets.txt"
    outside.write_text("aws_secret_access_key = x")
    cases = {
        "points outside the repository": ("leak.txt", str(outside)),
        "is a loop": ("loop", ".."),
        "points to nothing": ("dangling.py", "missing.py"),
    }
    for what, (link, target) in cases.items():
        (repo / "aws_lambda" / link).symlink_to(target)
        with pytest.raises(sources.SourceError) as caught:
            sources.select(rules(repo, src=repo / "aws_lambda"))
        assert str(caught.value) == f"a symlink under SRC {what} ({link} -> {target})"
        if link == "leak.txt":
            allowed = sources.select(rules(repo, src=repo / "aws_lambda", outside_links=True))
            assert ("leak.txt", outside.resolve()) in [(n, p) for n, p, _ in allowed.files]
        (repo / "aws_lambda" / link).unlink()
    # A self-referencing link is a loop too.
    (repo / "aws_lambda" / "self").symlink_to("self")
    with pytest.raises(sources.SourceError, match=r"is a loop \(self -> self\)"):
        sources.select(rules(repo, src=repo / "aws_lambda"))


def test_source_error_is_a_kit_error():
    assert issubclass(sources.SourceError, KitError)


def _zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


@pytest.mark.network
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


def test_audit_flags_a_pipfile_at_any_depth(tmp_path):
    from lambda_kit.audit import audit

    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("app.py"), "def handler(e, c):\n    return 1\n")
        zf.writestr(zipfile.ZipInfo("aws_lambda/sub/Pipfile.lock"), "{}")
    report = audit.audit_zip(path, runtime="3.11", arch="x86_64", handler="app.handler")
    assert [f.entries for f in report.findings if f.id == "leftover-pipfile"] == [["aws_lambda/sub/Pipfile.lock"]]


# Made up, in the formats the scan knows; written at test time so no key-looking file is committed.
FAKE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
SECRET_FILES = {
    "keys/id_rsa.bak": (FAKE_KEY, "private key"),
    ".git-credentials": ("https://bot:ghp_notARealToken0000@github.com\n", "URL with a password (.git-credentials)"),
    ".npmrc": ("//registry.npmjs.org/:_authToken=npm_notARealToken0000\n", "npm registry token (.npmrc)"),
    ".pgpass": ("db.internal:5432:orders:app:s3cr3t-pass\n", "PostgreSQL password file (.pgpass)"),
    ".docker/config.json": (
        '{"auths": {"registry.example": {"auth": "Ym90Om5vdEFSZWFsUGFzcw=="}}}\n',
        "docker registry auth (config.json)",
    ),
    "settings.ini": (
        "[default]\nkey = AKIA" + "Z" * 16 + "\nsecret = " + "q" * 20 + "/" + "Q" * 19 + "\n",
        "AWS access key pair",
    ),
}


def test_secrets_found_by_content_stop_the_build_naming_file_and_kind(tmp_path):
    project = copy_kit(tmp_path / "p")
    shutil.copytree(PROJECTS / "older-pipenv", project, dirs_exist_ok=True)
    for name, (text, _) in SECRET_FILES.items():
        (project / "lambdas" / name).parent.mkdir(parents=True, exist_ok=True)
        (project / "lambdas" / name).write_text(text)
    (project / "lambdas" / "notes.md").write_text("Set AWS_SECRET_ACCESS_KEY in the environment; see id_rsa docs.\n")
    result = make(project, "package", "HANDLER=app.handler", env=kit_env(DOCKER_HOST="tcp://127.0.0.1:9"))
    assert result.returncode != 0
    first = result.stderr.splitlines()[0]
    assert first.startswith("lambda-kit: error: 6 secret(s) in the function's own files (")
    for name, (text, kind) in SECRET_FILES.items():
        assert f"{name}: {kind}" in first
        assert text.strip().splitlines()[-1] not in result.stderr + result.stdout  # never the secret itself
    assert "notes.md" not in first and "Traceback" not in result.stderr
    assert not (project / "build.zip").exists() and not list(project.glob(".build.zip.*"))
