"""make deploy / deploy-layer / deploy-functions against moto in server mode (tests/awsfake.py),
with zips the kit builds (BUILDER=local: real PyPI downloads)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from awsfake import ACCOUNT
from helpers import (
    CODE_PATH,
    PROJECTS,
    ROLE,
    ROOT,
    RUNTIME,
    aws_writes,
    code_sha256,
    copy_kit,
    error_lines,
    function_config,
    kit_env,
    make,
    make_function,
    make_role,
)


@pytest.fixture(scope="module")
def kit_state(tmp_path_factory) -> Path:
    """One kit state for this module's builds: the local builder's tools and downloads are reused."""
    return tmp_path_factory.mktemp("kit-state")


def make_local(project: Path, kit_state: Path, *args: str, env=None):
    return make(project, *args, "BUILDER=local", f"KIT_STATE={kit_state}", env=env)


def test_deploy_uploads_only_what_changed(sample, kit_state, local_aws):
    make_function(local_aws)
    env = local_aws.env(kit_env())
    first = make_local(sample, kit_state, "deploy", "FUNCTION_NAME=orders", env=env)
    assert first.returncode == 0, first.stderr + first.stdout
    zip_bytes = (sample / "build.zip").read_bytes()
    printed = [line.split()[-1] for line in first.stdout.splitlines() if line.startswith("  CodeSha256")]
    assert printed == [code_sha256(zip_bytes)] * 2  # package's summary, then deploy's
    deployed = function_config(local_aws)
    assert deployed["CodeSha256"] == code_sha256(zip_bytes) and deployed["CodeSize"] == len(zip_bytes)
    assert ("PUT", CODE_PATH.format("orders")) in aws_writes(local_aws)
    assert f"function    arn:aws:lambda:us-east-1:{ACCOUNT}:function:orders" in first.stdout

    local_aws.log.seen.clear()
    second = make_local(sample, kit_state, "deploy", "FUNCTION_NAME=orders", env=env)
    assert second.returncode == 0, second.stderr
    assert "code unchanged" in second.stdout and "no upload" in second.stdout
    assert "wrote build.zip" not in second.stdout  # make's no-op rule: nothing rebuilt
    assert aws_writes(local_aws) == []  # no UpdateFunctionCode, no upload of any kind
    assert function_config(local_aws)["LastModified"] == deployed["LastModified"]

    app = sample / "lambdas" / "app.py"
    app.write_text(app.read_text() + "\n# a code change\n")
    third = make_local(sample, kit_state, "deploy", "FUNCTION_NAME=orders", env=env)
    assert third.returncode == 0, third.stderr
    new_bytes = (sample / "build.zip").read_bytes()
    assert new_bytes != zip_bytes and "code updated" in third.stdout
    assert function_config(local_aws)["CodeSha256"] == code_sha256(new_bytes)

    # No credentials anywhere: one line, no traceback, nothing called.
    bare = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    denied = make_local(sample, kit_state, "deploy", "FUNCTION_NAME=orders", env=bare)
    assert denied.returncode != 0
    assert error_lines(denied) == ["lambda-kit: error: no AWS credentials found (Unable to locate credentials)"]
    assert "Traceback" not in denied.stderr and "hint: set AWS_PROFILE" in denied.stderr


def test_layer_published_once_per_content_and_again_after_a_lock_change(tmp_path, kit_state, local_aws):
    project = copy_kit(tmp_path / "layered")
    shutil.copytree(ROOT / "lambdas", project / "lambdas")
    for name in ("Pipfile", "Pipfile.lock"):
        shutil.copy2(ROOT / "bench" / "projects" / "small" / "a" / name, project / name)
    env = local_aws.env(kit_env())
    lam = local_aws.client("lambda")

    first = make_local(project, kit_state, "deploy-layer", "LAYER_NAME=deps", env=env)
    assert first.returncode == 0, first.stderr + first.stdout
    versions = lam.list_layer_versions(LayerName="deps")["LayerVersions"]
    assert [v["Version"] for v in versions] == [1]
    assert versions[0]["CompatibleRuntimes"] == [f"python{RUNTIME}"] and versions[0]["CompatibleArchitectures"] == [
        "x86_64"
    ]
    layer_bytes = (project / "dist" / "layer.zip").read_bytes()
    assert lam.get_layer_version(LayerName="deps", VersionNumber=1)["Content"]["CodeSha256"] == code_sha256(layer_bytes)
    assert f"layer version arn:aws:lambda:us-east-1:{ACCOUNT}:layer:deps:1" in first.stdout

    again = make_local(project, kit_state, "deploy-layer", "LAYER_NAME=deps", env=env)
    assert again.returncode == 0 and "layer unchanged" in again.stdout, again.stderr
    assert [v["Version"] for v in lam.list_layer_versions(LayerName="deps")["LayerVersions"]] == [1]

    for name in ("Pipfile", "Pipfile.lock"):  # six 1.17.0 -> 1.16.0, the files dated now as a checkout would be
        shutil.copy(ROOT / "bench" / "projects" / "small" / "b" / name, project / name)
    changed = make_local(project, kit_state, "deploy-layer", "LAYER_NAME=deps", env=env)
    assert changed.returncode == 0, changed.stderr + changed.stdout
    assert "wrote " in changed.stdout and [
        v["Version"] for v in lam.list_layer_versions(LayerName="deps")["LayerVersions"]
    ] == [2, 1]
    assert lam.get_layer_version(LayerName="deps", VersionNumber=2)["Content"]["CodeSha256"] == code_sha256(
        (project / "dist" / "layer.zip").read_bytes()
    )


def test_deploy_functions_creates_each_with_its_name_and_handler(tmp_path, kit_state, local_aws):
    project = tmp_path / "functions-repo"
    shutil.copytree(PROJECTS / "functions", project)
    copy_kit(project)
    make_role(local_aws)
    result = make_local(
        project,
        kit_state,
        "deploy-functions",
        "SRC=functions",
        "FUNCTIONS=orders reports",
        "HANDLER_reports=report.main",
        "FUNCTION_NAME_reports=reports-prod",
        f"ROLE={ROLE}",
        env=local_aws.env(kit_env()),
    )
    assert result.returncode == 0, result.stderr + result.stdout
    for name, folder, handler in (("orders", "orders", "app.handler"), ("reports-prod", "reports", "report.main")):
        config = function_config(local_aws, name)
        assert config["Handler"] == handler and config["Runtime"] == f"python{RUNTIME}"
        assert config["CodeSha256"] == code_sha256((project / "dist" / f"{folder}.zip").read_bytes())
