"""`make deploy` and `make deploy-layer`: put a zip on Lambda only when its CodeSha256 differs from
what the function (or the layer's latest version) already runs; through S3 under a content-hash key
when large or when S3_BUCKET is set; waiting for each update before the next call.

Through S3, Lambda is only ever pointed at bytes S3 itself vouches for: the zip is uploaded with
its SHA-256 as S3's own checksum (S3 refuses a body that differs), an object already under the key
is reused only when S3's stored checksum (HeadObject with ChecksumMode, never user metadata) is
the zip's, and in a versioned bucket the exact version checked is what Lambda reads
(S3ObjectVersion). Lambda's CodeSha256 is still checked after the update.

One line per step, like `make package`. DRY_RUN makes only read calls (GetFunction, HeadObject,
ListLayerVersions, GetLayerVersion, GetAlias) and prints what it would upload and call.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from lambda_kit.common import reporter, runtimes
from lambda_kit.common.errors import KitError, UsageError
from lambda_kit.deploy.artifact import Artifact, DeploySettings, Say, code_location, where
from lambda_kit.deploy.awsapi import AwsSession, aws_errors, error_code, is_not_found, waiter


def get_function(lam: Any, name: str) -> dict[str, Any] | None:
    with aws_errors(f"GetFunction {name}"):
        try:
            return lam.get_function(FunctionName=name)["Configuration"]
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise


def check_function(config: dict[str, Any], s: DeploySettings, say: Say) -> None:
    """Before any upload: the function must run this zip's runtime and architecture."""
    name = config.get("FunctionName", s.function_name)
    if config.get("PackageType", "Zip") != "Zip":
        raise KitError("the function is a container image, not a zip", name, hint="deploy zips to a Zip function")
    theirs = (config.get("Runtime", ""), (config.get("Architectures") or ["x86_64"])[0])
    ours = (s.runtime.name, s.arch)
    if theirs != ours:
        raise KitError(
            "the function's runtime or architecture differs from the zip's",
            f"function {name}: {' '.join(theirs)}; zip: {' '.join(ours)} (PYTHON_VERSION, ARCH)",
            hint="build for the function's runtime and architecture, or change the function's",
        )
    if s.handler and config.get("Handler") != s.handler:
        theirs = config.get("Handler")
        say(reporter.warning(f"the function's handler is {theirs!r}, HANDLER is {s.handler!r} (not changed)"))


def settle(lam: Any, config: dict[str, Any], name: str) -> dict[str, Any]:
    """A function mid-update refuses the next call: wait for it; a failed one is an error."""
    if config.get("State") == "Failed" or config.get("LastUpdateStatus") == "Failed":
        reason = config.get("StateReason") or config.get("LastUpdateStatusReason") or "no reason given"
        raise KitError(
            f"the function {name} is in a failed state",
            reason,
            hint="see the function in the Lambda console, fix what it says and deploy again",
        )
    if config.get("State") == "Pending":
        waiter(lam, "function_active_v2", f"function {name} to become active", FunctionName=name)
    elif config.get("LastUpdateStatus") == "InProgress":
        waiter(lam, "function_updated_v2", f"the running update of {name}", FunctionName=name)
    else:
        return config
    return get_function(lam, name) or config


def create_function(aws: AwsSession, s: DeploySettings, artifact: Artifact, say: Say) -> dict[str, Any]:
    name = s.function_name
    lam = aws.client("lambda")
    location = code_location(aws, s, artifact, say)
    what = f"function {name} ({s.runtime.name} {s.arch}, handler {s.handler}, role {s.role})"
    if s.dry_run:
        say(reporter.line(f"dry run: would create {what}"))
        return {"FunctionName": name, "FunctionArn": f"(new function {name})", "CodeSha256": artifact.code_sha256}
    with aws_errors(f"CreateFunction {name}"):
        lam.create_function(
            FunctionName=name,
            Runtime=s.runtime.name,
            Role=s.role,
            Handler=s.handler or "app.handler",
            Code=location,
            Architectures=[s.arch],
            PackageType="Zip",
        )
    waiter(lam, "function_active_v2", f"the new function {name} to become active", FunctionName=name)
    say(reporter.line(f"created {what}"))
    return verified(lam, name, artifact)


def verified(lam: Any, name: str, artifact: Artifact) -> dict[str, Any]:
    """Lambda computes CodeSha256 from what it received: it must be this zip's."""
    config = get_function(lam, name) or {}
    if config.get("CodeSha256") != artifact.code_sha256:
        raise KitError(
            "the function now runs other code than this zip",
            f"CodeSha256 {config.get('CodeSha256')}",
            hint="another deploy ran at the same time, or the S3 object changed: deploy again",
        )
    return config


def update_code(
    aws: AwsSession, s: DeploySettings, config: dict[str, Any], artifact: Artifact, say: Say
) -> dict[str, Any]:
    name = s.function_name
    lam = aws.client("lambda")
    if config.get("CodeSha256") == artifact.code_sha256:
        say(reporter.line(f"code unchanged (the function runs CodeSha256 {artifact.code_sha256}), no upload"))
        return config
    location = code_location(aws, s, artifact, say)
    if s.dry_run:
        say(reporter.line(f"dry run: would call UpdateFunctionCode on {name} with {where(location)}"))
        return config
    started = time.monotonic()
    params: dict[str, Any] = {"FunctionName": name, **location}
    if config.get("RevisionId"):  # refused if the function changed since we read it
        params["RevisionId"] = config["RevisionId"]
    if "ZipFile" in location:
        say(reporter.line(f"uploading {artifact.size:,} bytes directly"))
    with aws_errors(f"UpdateFunctionCode {name}"):
        lam.update_function_code(**params)
    waiter(lam, "function_updated_v2", f"the code update of {name}", FunctionName=name)
    say(reporter.line(f"code updated and the update finished in {time.monotonic() - started:.1f}s"))
    return verified(lam, name, artifact)


def publish_version(lam: Any, s: DeploySettings, artifact: Artifact, say: Say) -> str:
    name = s.function_name
    if s.dry_run:
        say(reporter.line(f"dry run: would publish a version of {name} (CodeSha256 {artifact.code_sha256})"))
        return "(new version)"
    with aws_errors(f"PublishVersion {name}"):
        try:
            version = lam.publish_version(FunctionName=name, CodeSha256=artifact.code_sha256)["Version"]
        except Exception as exc:
            if error_code(exc) in ("InvalidParameterValueException", "PreconditionFailedException"):
                raise KitError(
                    "the function's code changed during the deploy: no version published",
                    name,
                    hint="another deploy ran at the same time; run make deploy again",
                ) from None
            raise
    waiter(
        lam,
        "published_version_active",
        f"version {version} of {name} to become active",
        FunctionName=name,
        Qualifier=version,
    )
    say(reporter.line(f"published version {version} of {name}"))
    return version


def point_alias(lam: Any, s: DeploySettings, version: str, say: Say) -> None:
    name, alias = s.function_name, s.alias
    with aws_errors(f"GetAlias {name}:{alias}"):
        try:
            current = lam.get_alias(FunctionName=name, Name=alias)["FunctionVersion"]
        except Exception as exc:
            if not is_not_found(exc):
                raise
            current = None
    if current == version:
        say(reporter.line(f"alias {alias} already points at version {version}"))
        return
    verb = "create" if current is None else "update"
    if s.dry_run:
        say(reporter.line(f"dry run: would {verb} alias {alias} -> version {version}"))
        return
    with aws_errors(f"{verb.title()}Alias {name}:{alias}"):
        call = lam.create_alias if current is None else lam.update_alias
        call(FunctionName=name, Name=alias, FunctionVersion=version)
    say(reporter.line(f"alias {alias} -> version {version} ({verb}d{'' if current is None else f', was {current}'})"))


def deploy_function(s: DeploySettings, say: Say) -> list[str]:
    """Update (or with ROLE create) the function; returns the summary lines."""
    started = time.monotonic()
    artifact = Artifact.read(s.zip)
    aws = AwsSession()
    lam, region = aws.client("lambda"), aws.region
    note = " (dry run: nothing changes)" if s.dry_run else ""
    say(
        reporter.line(
            f"deploy {s.zip.name} ({artifact.size:,} bytes, CodeSha256 {artifact.code_sha256}) "
            f"to function {s.function_name} in {region}{note}"
        )
    )
    config = get_function(lam, s.function_name)
    if config is None:
        if not s.role:
            raise KitError(
                "no such function",
                f"{s.function_name} in {region}",
                hint="create it first, or set ROLE=<IAM role ARN> and make deploy creates it",
            )
        config = create_function(aws, s, artifact, say)
    else:
        config = settle(lam, config, s.function_name)
        check_function(config, s, say)
        config = update_code(aws, s, config, artifact, say)
    version = publish_version(lam, s, artifact, say) if s.publish else "$LATEST"
    if s.alias:
        point_alias(lam, s, version, say)
    elapsed = time.monotonic() - started
    done = "dry run done, nothing changed" if s.dry_run else f"deployed {s.zip.name} in {elapsed:.1f}s"
    return [
        reporter.line(done),
        f"  function    {config.get('FunctionArn', s.function_name)}",
        f"  version     {version}",
        f"  CodeSha256  {config.get('CodeSha256', artifact.code_sha256) if s.dry_run else artifact.code_sha256}",
    ]


def deploy_layer(s: DeploySettings, say: Say) -> list[str]:
    """Publish the layer zip unless its latest version has the same CodeSha256, runtime and architecture."""
    artifact = Artifact.read(s.zip)
    aws = AwsSession()
    lam, region = aws.client("lambda"), aws.region
    name = s.layer_name
    note = " (dry run: nothing changes)" if s.dry_run else ""
    say(
        reporter.line(
            f"deploy layer {s.zip.name} ({artifact.size:,} bytes, CodeSha256 {artifact.code_sha256}) "
            f"as {name} in {region}{note}"
        )
    )
    with aws_errors(f"ListLayerVersions {name}"):
        listed = lam.list_layer_versions(LayerName=name, MaxItems=1).get("LayerVersions", [])
    if listed:
        with aws_errors(f"GetLayerVersion {name}:{listed[0]['Version']}"):
            latest = lam.get_layer_version(LayerName=name, VersionNumber=listed[0]["Version"])
        same_code = latest.get("Content", {}).get("CodeSha256") == artifact.code_sha256
        fits = s.runtime.name in latest.get("CompatibleRuntimes", []) and s.arch in latest.get(
            "CompatibleArchitectures", []
        )
        if same_code and fits:
            version = f"version {latest['Version']} has CodeSha256 {artifact.code_sha256}"
            say(reporter.line(f"layer unchanged ({version}), nothing published"))
            return layer_summary(latest["LayerVersionArn"], artifact)
    location = code_location(aws, s, artifact, say)
    if s.dry_run:
        say(reporter.line(f"dry run: would publish a version of layer {name} for {s.runtime.name} {s.arch}"))
        return layer_summary("(new version)", artifact)
    with aws_errors(f"PublishLayerVersion {name}"):
        made = lam.publish_layer_version(
            LayerName=name,
            Content=location,
            CompatibleRuntimes=[s.runtime.name],
            CompatibleArchitectures=[s.arch],
            Description=f"lambda-kit {artifact.code_sha256}",
        )
    if made.get("Content", {}).get("CodeSha256") != artifact.code_sha256:
        raise KitError(
            "the published layer holds other code than this zip",
            made["LayerVersionArn"],
            hint="the S3 object changed during the deploy: deploy again",
        )
    say(reporter.line(f"published layer version {made['Version']} of {name}"))
    return layer_summary(made["LayerVersionArn"], artifact)


def layer_summary(arn: str, artifact: Artifact) -> list[str]:
    return [reporter.line(f"layer version {arn}"), f"  CodeSha256  {artifact.code_sha256}"]


def add_parsers(sub: Any) -> None:
    """`lambda-kit deploy ZIP --function NAME ...` and `lambda-kit deploy-layer ZIP --layer-name NAME ...`."""
    fn = sub.add_parser("deploy", help="update a Lambda function's code when its CodeSha256 differs from the zip's")
    layer = sub.add_parser("deploy-layer", help="publish a layer zip unless its latest version has the same CodeSha256")
    for q in (fn, layer):
        q.add_argument("zip", type=Path)
        q.add_argument("--runtime", default=runtimes.DEFAULT_RUNTIME, help="Lambda Python version of the zip")
        q.add_argument("--arch", default=runtimes.DEFAULT_ARCH, choices=sorted(runtimes.ARCHITECTURES))
        q.add_argument(
            "--s3-bucket", default="", help="upload through this bucket (needed above the direct-upload limit)"
        )
        q.add_argument("--s3-prefix", default="", help="key prefix in the bucket: PREFIX/<sha256>.zip")
        q.add_argument("--dry-run", action="store_true", help="print what would be uploaded and called; change nothing")
        q.epilog = "AWS access: the standard chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...), never arguments."
    fn.add_argument("--function", default="", help="the function's name or ARN")
    fn.add_argument("--handler", default="", help="module.function: compared with the function's (a warning)")
    fn.add_argument("--publish", action="store_true", help="publish a version (refused if the code changed meanwhile)")
    fn.add_argument("--alias", default="", help="point this alias at the published version (needs --publish)")
    fn.add_argument("--role", default="", help="IAM role ARN: create the function if it does not exist")
    layer.add_argument("--layer-name", default="", help="the layer's name")


def run(args: argparse.Namespace, say: Say) -> int:
    runtime = runtimes.lookup(args.runtime)
    common = dict(
        zip=args.zip.resolve(),
        runtime=runtime,
        arch=args.arch,
        s3_bucket=args.s3_bucket.strip(),
        s3_prefix=args.s3_prefix.strip(),
        dry_run=args.dry_run,
    )
    if args.command == "deploy-layer":
        if not args.layer_name:
            raise UsageError("no layer name", hint="make deploy-layer LAYER_NAME=my-layer")
        lines = deploy_layer(DeploySettings(**common, layer_name=args.layer_name), say)
    else:
        if not args.function:
            raise UsageError("no function name", hint="make deploy FUNCTION_NAME=my-function")
        if args.alias and not args.publish:
            raise UsageError("an alias needs a published version", f"ALIAS={args.alias}", hint="add PUBLISH=1")
        settings = DeploySettings(
            **common,
            function_name=args.function,
            handler=args.handler,
            publish=args.publish,
            alias=args.alias,
            role=args.role,
        )
        lines = deploy_function(settings, say)
    for line in lines:
        say(line)
    return 0
