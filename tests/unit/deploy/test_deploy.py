"""The deploy helper against a real AWS API implementation on this machine: moto in server mode
(tests/awsfake.py), the kit pointed at it with AWS_ENDPOINT_URL, on small zips (no build needed);
and AWS's errors as one line. make deploy with zips the kit builds:
integration/network/test_deploy_network.py."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from helpers import (
    CODE_PATH,
    ROLE,
    ROOT,
    RUNTIME,
    aws_writes,
    code_sha256,
    error_lines,
    function_config,
    kit_env,
    make_function,
    make_role,
)
from lambda_kit.common import runtimes
from lambda_kit.common.errors import KitError
from lambda_kit.deploy import awsapi, deploy


def small_zip(path: Path, text: str = "def handler(event, context):\n    return 1\n") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("app.py", (1980, 1, 1, 0, 0, 0)), text)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def helper(local_aws, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The helper as make calls it (LAMBDA_KIT_EXTRAS=aws), pointed at the local AWS API."""
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lambda-kit"), *args, "--runtime", RUNTIME],
        env=env or local_aws.env(kit_env(LAMBDA_KIT_EXTRAS="aws")),
        capture_output=True,
        text=True,
        timeout=300,
    )


# ---- the helper on small zips (no build needed) ----


def test_publish_and_alias_follow_the_code(tmp_path, local_aws):
    make_function(local_aws)
    zip_path = tmp_path / "fn.zip"
    data = small_zip(zip_path)
    args = ("deploy", str(zip_path), "--function", "orders", "--publish", "--alias", "live")
    first = helper(local_aws, *args)
    assert first.returncode == 0, first.stderr
    publish = [r for r in local_aws.requests if r.method == "POST" and r.path.endswith("/functions/orders/versions")]
    assert [r.json().get("CodeSha256") for r in publish] == [code_sha256(data)]  # a concurrent change is refused by AWS
    lam = local_aws.client("lambda")
    assert lam.get_alias(FunctionName="orders", Name="live")["FunctionVersion"] == "1"
    assert "  version     1" in first.stdout

    local_aws.log.seen.clear()
    same = helper(local_aws, *args)
    assert same.returncode == 0 and "code unchanged" in same.stdout, same.stderr
    assert ("PUT", CODE_PATH.format("orders")) not in aws_writes(local_aws)
    # PublishVersion with unchanged code returns the existing version on AWS; moto 5.2.5 may add one
    # after a first publish, so only the code the alias runs is compared here.
    aliased = lam.get_alias(FunctionName="orders", Name="live")["FunctionVersion"]
    assert lam.get_function(FunctionName="orders", Qualifier=aliased)["Configuration"]["CodeSha256"] == code_sha256(
        data
    )

    small_zip(zip_path, "def handler(event, context):\n    return 2\n")
    changed = helper(local_aws, *args)
    assert changed.returncode == 0, changed.stderr
    version = [line.split()[-1] for line in changed.stdout.splitlines() if line.startswith("  version")][0]
    assert version != aliased and lam.get_alias(FunctionName="orders", Name="live")["FunctionVersion"] == version
    assert lam.get_function(FunctionName="orders", Qualifier=version)["Configuration"]["CodeSha256"] == code_sha256(
        zip_path.read_bytes()
    )
    assert f"alias live -> version {version} (updated, was {aliased})" in changed.stdout

    no_publish = helper(local_aws, "deploy", str(zip_path), "--function", "orders", "--alias", "live")
    assert no_publish.returncode == 2 and error_lines(no_publish) == [
        "lambda-kit: error: an alias needs a published version (ALIAS=live)"
    ]


@pytest.mark.parametrize(
    "runtime, arch, named",
    [
        ("python3.12", "x86_64", "function orders: python3.12 x86_64; zip: python3.11 x86_64"),
        ("python3.11", "arm64", "function orders: python3.11 arm64; zip: python3.11 x86_64"),
    ],
)
def test_runtime_or_architecture_mismatch_is_refused_before_upload(tmp_path, local_aws, runtime, arch, named):
    assert RUNTIME == "3.11"
    before = make_function(local_aws, runtime=runtime, arch=arch)
    small_zip(tmp_path / "fn.zip")
    local_aws.log.seen.clear()
    result = helper(local_aws, "deploy", str(tmp_path / "fn.zip"), "--function", "orders")
    assert result.returncode == 1
    assert error_lines(result) == [
        "lambda-kit: error: the function's runtime or architecture differs from the zip's "
        f"({named} (PYTHON_VERSION, ARCH))"
    ]
    assert aws_writes(local_aws) == [] and function_config(local_aws)["CodeSha256"] == before["CodeSha256"]


def test_handler_mismatch_is_a_warning(tmp_path, local_aws):
    make_function(local_aws, handler="main.run")
    data = small_zip(tmp_path / "fn.zip")
    result = helper(local_aws, "deploy", str(tmp_path / "fn.zip"), "--function", "orders", "--handler", "app.handler")
    assert result.returncode == 0, result.stderr
    assert (
        "lambda-kit: warning: the function's handler is 'main.run', HANDLER is 'app.handler' (not changed)"
        in result.stdout
    )
    assert function_config(local_aws)["CodeSha256"] == code_sha256(data)


def test_missing_function_is_an_error_unless_a_role_creates_it(tmp_path, local_aws):
    data = small_zip(tmp_path / "fn.zip")
    missing = helper(local_aws, "deploy", str(tmp_path / "fn.zip"), "--function", "billing")
    assert missing.returncode == 1
    assert error_lines(missing) == ["lambda-kit: error: no such function (billing in us-east-1)"]
    assert "hint: create it first, or set ROLE=" in missing.stderr and aws_writes(local_aws) == []

    make_role(local_aws)
    created = helper(
        local_aws,
        "deploy",
        str(tmp_path / "fn.zip"),
        "--function",
        "billing",
        "--role",
        ROLE,
        "--arch",
        "arm64",
        "--handler",
        "app.handler",
    )
    assert created.returncode == 0, created.stderr
    config = function_config(local_aws, "billing")
    assert (config["Runtime"], config["Architectures"], config["Handler"], config["Role"]) == (
        f"python{RUNTIME}",
        ["arm64"],
        "app.handler",
        ROLE,
    )
    assert config["CodeSha256"] == code_sha256(data)


def test_zip_over_the_direct_limit_goes_through_s3_once(tmp_path, local_aws):
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as zf:  # incompressible: as a zip with big data would be
        zf.writestr("app.py", "def handler(event, context):\n    return 1\n")
        zf.writestr("model.bin", os.urandom(runtimes.MAX_ZIPPED_DIRECT_UPLOAD + 1024))
    assert big.stat().st_size > runtimes.MAX_ZIPPED_DIRECT_UPLOAD
    make_function(local_aws)
    make_function(local_aws, name="orders-eu")
    local_aws.log.seen.clear()

    direct = helper(local_aws, "deploy", str(big), "--function", "orders")
    assert direct.returncode == 1 and "hint: set S3_BUCKET=" in direct.stderr
    assert error_lines(direct) == [
        "lambda-kit: error: the zip is over Lambda's direct-upload limit of "
        f"{runtimes.MAX_ZIPPED_DIRECT_UPLOAD:,} bytes "
        f"({big.stat().st_size:,} bytes)"
    ]
    assert aws_writes(local_aws) == []

    local_aws.client("s3").create_bucket(Bucket="deploy-artifacts")
    sha = hashlib.sha256(big.read_bytes()).hexdigest()
    key = f"lambda/{sha}.zip"
    through_s3 = helper(
        local_aws,
        "deploy",
        str(big),
        "--function",
        "orders",
        "--s3-bucket",
        "deploy-artifacts",
        "--s3-prefix",
        "lambda/",
    )
    assert through_s3.returncode == 0, through_s3.stderr
    assert ("PUT", f"/deploy-artifacts/{key}") in aws_writes(local_aws)
    update = [r for r in local_aws.requests if (r.method, r.path) == ("PUT", CODE_PATH.format("orders"))]
    assert [(r.json()["S3Bucket"], r.json()["S3Key"]) for r in update] == [("deploy-artifacts", key)]
    assert function_config(local_aws)["CodeSha256"] == code_sha256(big.read_bytes())

    local_aws.log.seen.clear()  # the same zip for another function: the object is reused, not uploaded again
    reuse = helper(
        local_aws,
        "deploy",
        str(big),
        "--function",
        "orders-eu",
        "--s3-bucket",
        "deploy-artifacts",
        "--s3-prefix",
        "lambda",
    )
    assert reuse.returncode == 0, reuse.stderr
    assert (
        f"s3://deploy-artifacts/{key} already holds this zip (S3's SHA-256 checksum) (the bucket keeps no versions"
        in (reuse.stdout)
    )
    assert aws_writes(local_aws) == [("PUT", CODE_PATH.format("orders-eu"))]
    assert function_config(local_aws, "orders-eu")["CodeSha256"] == code_sha256(big.read_bytes())


def test_s3_object_with_other_content_is_uploaded_again(tmp_path, local_aws):
    make_function(local_aws)
    data = small_zip(tmp_path / "fn.zip")
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket="deploy-artifacts")
    key = f"{hashlib.sha256(data).hexdigest()}.zip"
    s3.put_object(Bucket="deploy-artifacts", Key=key, Body=b"someone else's bytes")
    result = helper(
        local_aws, "deploy", str(tmp_path / "fn.zip"), "--function", "orders", "--s3-bucket", "deploy-artifacts"
    )
    assert result.returncode == 0, result.stderr
    assert s3.get_object(Bucket="deploy-artifacts", Key=key)["Body"].read() == data
    assert function_config(local_aws)["CodeSha256"] == code_sha256(data)


@pytest.mark.parametrize("versioned", [False, True], ids=["unversioned", "versioned"])
def test_an_object_with_forged_codesha256_metadata_is_never_what_lambda_runs(tmp_path, local_aws, versioned):
    """Someone who can write the deploy bucket plants other bytes of the same size under the zip's key,
    with the `codesha256` metadata the kit once trusted: the kit uploads again before any update, and
    in a versioned bucket points Lambda at the exact version it uploaded or checked."""
    make_function(local_aws)
    data = small_zip(tmp_path / "fn.zip")
    planted = small_zip(tmp_path / "other.zip", "def handler(event, context):\n    return 2\n")
    assert len(planted) == len(data) and planted != data
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket="deploy-artifacts")
    if versioned:
        s3.put_bucket_versioning(Bucket="deploy-artifacts", VersioningConfiguration={"Status": "Enabled"})
    key = f"{hashlib.sha256(data).hexdigest()}.zip"
    s3.put_object(Bucket="deploy-artifacts", Key=key, Body=planted, Metadata={"codesha256": code_sha256(data)})
    local_aws.log.seen.clear()

    result = helper(
        local_aws, "deploy", str(tmp_path / "fn.zip"), "--function", "orders", "--s3-bucket", "deploy-artifacts"
    )
    assert result.returncode == 0, result.stderr
    assert f"s3://deploy-artifacts/{key} holds other bytes than this zip (no SHA-256 checksum): uploading it again" in (
        result.stdout
    )
    calls = aws_writes(local_aws)
    update = ("PUT", CODE_PATH.format("orders"))
    assert calls.count(update) == 1 and calls.index(("PUT", f"/deploy-artifacts/{key}")) < calls.index(update)
    assert s3.get_object(Bucket="deploy-artifacts", Key=key)["Body"].read() == data
    head = s3.head_object(Bucket="deploy-artifacts", Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == code_sha256(data)  # S3's own checksum, which the next deploy trusts
    (sent,) = [r.json() for r in local_aws.requests if (r.method, r.path) == update]
    assert sent.get("S3ObjectVersion") == head.get("VersionId")  # None: an unversioned bucket
    assert function_config(local_aws)["CodeSha256"] == code_sha256(data)
    if not versioned:
        return
    versions = s3.list_object_versions(Bucket="deploy-artifacts", Prefix=key)["Versions"]
    assert len(versions) == 2  # the planted bytes stay an older version; Lambda is pointed at ours
    pinned = s3.get_object(Bucket="deploy-artifacts", Key=key, VersionId=sent["S3ObjectVersion"])["Body"].read()
    assert pinned == data and f"(version {sent['S3ObjectVersion']})" in result.stdout

    # The checked object is reused, pinned to its version, by a new function and by a layer.
    make_role(local_aws)
    local_aws.log.seen.clear()
    created = helper(
        local_aws,
        "deploy",
        str(tmp_path / "fn.zip"),
        "--function",
        "billing",
        "--role",
        ROLE,
        "--s3-bucket",
        "deploy-artifacts",
    )
    layer = helper(
        local_aws, "deploy-layer", str(tmp_path / "fn.zip"), "--layer-name", "deps", "--s3-bucket", "deploy-artifacts"
    )
    assert created.returncode == 0 and layer.returncode == 0, created.stderr + layer.stderr
    assert ("PUT", f"/deploy-artifacts/{key}") not in aws_writes(local_aws)
    codes = [
        r.json() for r in local_aws.requests if r.method == "POST" and r.path.endswith(("/functions", "/versions"))
    ]
    assert [c.get("Code", c.get("Content"))["S3ObjectVersion"] for c in codes] == [sent["S3ObjectVersion"]] * 2
    assert function_config(local_aws, "billing")["CodeSha256"] == code_sha256(data)


def test_dry_run_changes_nothing(tmp_path, local_aws):
    before = make_function(local_aws)
    small_zip(tmp_path / "fn.zip")
    local_aws.client("s3").create_bucket(Bucket="deploy-artifacts")
    local_aws.log.seen.clear()
    result = helper(
        local_aws,
        "deploy",
        str(tmp_path / "fn.zip"),
        "--function",
        "orders",
        "--publish",
        "--alias",
        "live",
        "--s3-bucket",
        "deploy-artifacts",
        "--dry-run",
    )
    assert result.returncode == 0, result.stderr
    for said in (
        "dry run: would upload",
        "dry run: would call UpdateFunctionCode on orders",
        "would publish a version",
        "would create alias live",
    ):
        assert said in result.stdout
    layer = helper(local_aws, "deploy-layer", str(tmp_path / "fn.zip"), "--layer-name", "deps", "--dry-run")
    assert layer.returncode == 0 and "dry run: would publish a version of layer deps" in layer.stdout, layer.stderr
    missing = helper(local_aws, "deploy", str(tmp_path / "fn.zip"), "--function", "new", "--role", ROLE, "--dry-run")
    assert missing.returncode == 0 and "dry run: would create function new" in missing.stdout, missing.stderr
    assert aws_writes(local_aws) == []  # reads only
    assert function_config(local_aws)["CodeSha256"] == before["CodeSha256"]
    assert local_aws.client("s3").list_objects_v2(Bucket="deploy-artifacts").get("KeyCount") == 0


# ---- error mapping: what the local API cannot produce (throttling, access denied, a failed function) ----


def client_error(code: str, message: str, attempts: int = 0) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"RetryAttempts": attempts}}, "GetFunction"
    )


@pytest.mark.parametrize(
    "error, line",
    [
        (
            client_error("ThrottlingException", "Rate exceeded", attempts=2),
            "AWS throttled GetFunction orders (3 attempts) (ThrottlingException)",
        ),
        (
            client_error("AccessDeniedException", "User: arn:aws:iam::1:user/ci is not\nauthorized"),
            "access denied to GetFunction orders (User: arn:aws:iam::1:user/ci is not authorized)",
        ),
        (
            client_error("UnrecognizedClientException", "The security token is invalid"),
            "AWS refused the credentials (GetFunction orders: UnrecognizedClientException)",
        ),
        (
            client_error("ResourceConflictException", "An update is in progress for resource"),
            "GetFunction orders refused: the function is being changed by someone else "
            "(An update is in progress for resource)",
        ),
    ],
)
def test_aws_errors_become_one_line(error, line):
    with pytest.raises(KitError) as caught, awsapi.aws_errors("GetFunction orders"):
        raise error
    assert str(caught.value) == line and "\n" not in str(caught.value) and caught.value.hint


def test_a_failed_function_is_one_line_and_clients_retry_in_standard_mode(local_aws, monkeypatch):
    failed = {"FunctionName": "orders", "State": "Failed", "StateReason": "The role cannot be assumed"}
    with pytest.raises(KitError) as caught:
        deploy.settle(None, failed, "orders")
    assert str(caught.value) == "the function orders is in a failed state (The role cannot be assumed)"
    for name, value in local_aws.env({}).items():
        monkeypatch.setenv(name, value)
    aws = awsapi.AwsSession()
    assert aws.client("lambda").meta.config.retries["mode"] == "standard" and aws.region == "us-east-1"


def test_credentials_are_never_printed_even_in_debug_mode(tmp_path, local_aws):
    make_function(local_aws)
    small_zip(tmp_path / "fn.zip")
    key_id, secret = "AKIALAMBDAKITTEST123", "kit-test-secret-never-printed"
    env = local_aws.env(
        kit_env(LAMBDA_KIT_EXTRAS="aws"), AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret, LAMBDA_KIT_DEBUG="1"
    )
    result = helper(local_aws, "deploy", str(tmp_path / "fn.zip"), "--function", "orders", "--publish", env=env)
    assert result.returncode == 0, result.stderr
    failed = helper(local_aws, "deploy", str(tmp_path / "fn.zip"), "--function", "missing", env=env)
    assert failed.returncode == 1
    for output in (result.stdout + result.stderr, failed.stdout + failed.stderr):
        assert key_id not in output and secret not in output


def test_two_deploys_at_once_end_with_one_of_the_zips_and_no_traceback(tmp_path, local_aws):
    make_function(local_aws)
    zips = []
    for n in range(2):
        path = tmp_path / f"fn{n}.zip"
        zips.append((path, code_sha256(small_zip(path, f"def handler(event, context):\n    return {n}\n"))))
    env = local_aws.env(kit_env(LAMBDA_KIT_EXTRAS="aws"))
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "scripts" / "lambda-kit"),
                "deploy",
                str(path),
                "--function",
                "orders",
                "--runtime",
                RUNTIME,
                "--publish",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path, _ in zips
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    outcomes = [(run.returncode, *output) for run, output in zip(runs, outputs, strict=True)]
    for code, _, stderr in outcomes:
        assert "Traceback" not in stderr
        if code != 0:  # the loser learns it in one line: its code is not what the function runs
            assert (
                code == 1 and len([line for line in stderr.splitlines() if line.startswith("lambda-kit: error:")]) == 1
            )
    assert any(code == 0 for code, _, _ in outcomes)
    assert function_config(local_aws)["CodeSha256"] in {sha for _, sha in zips}
