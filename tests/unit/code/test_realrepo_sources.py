"""One definition of the function's sources: defaults, EXCLUDE's gitignore patterns, odd file
names, symlinks; and the audit flags a Pipfile at any depth. Through make:
integration/network/test_realrepo_sources_network.py."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from helpers import ODD_NAMES, root_package, selected_names
from lambda_kit.code import sources
from lambda_kit.common.errors import KitError


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
    got = selected_names(sources.select(rules(repo)))
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
    got = selected_names(
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
    got = selected_names(sources.select(rules(repo)))
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


def test_audit_flags_a_pipfile_at_any_depth(tmp_path):
    from lambda_kit.audit import audit

    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("app.py"), "def handler(e, c):\n    return 1\n")
        zf.writestr(zipfile.ZipInfo("aws_lambda/sub/Pipfile.lock"), "{}")
    report = audit.audit_zip(path, runtime="3.11", arch="x86_64", handler="app.handler")
    assert [f.entries for f in report.findings if f.id == "leftover-pipfile"] == [["aws_lambda/sub/Pipfile.lock"]]
