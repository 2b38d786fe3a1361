"""Secrets found by content in the function's sources stop the build through make, naming the file
and the kind, before Docker is asked anything."""

from __future__ import annotations

import shutil

from helpers import PROJECTS, copy_kit, kit_env, make

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
