"""The zip on its way to Lambda: read once with its CodeSha256, and where Lambda takes it from (its
bytes, or an S3 object S3 itself vouches for by checksum)."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambda_kit.common import reporter, runtimes
from lambda_kit.common.digests import sha256_file
from lambda_kit.common.errors import KitError, UsageError
from lambda_kit.deploy.awsapi import AwsSession, aws_errors, is_not_found

Say = Callable[[str], None]


@dataclass(frozen=True)
class Artifact:
    """The zip as Lambda will see it: size and CodeSha256 (base64 of the raw SHA-256)."""

    path: Path
    size: int
    sha256: str  # hex, names the S3 object
    code_sha256: str

    @classmethod
    def read(cls, path: Path) -> Artifact:
        if not path.is_file() or path.stat().st_size == 0:
            raise UsageError("no zip to deploy", str(path), hint="make deploy builds it first; check ZIP")
        digest = sha256_file(path)
        return cls(path, path.stat().st_size, digest.hex(), base64.b64encode(digest).decode())

    def data(self) -> bytes:
        """The bytes to send, checked against the hash printed (the file may have been rebuilt meanwhile)."""
        data = self.path.read_bytes()
        if base64.b64encode(hashlib.sha256(data).digest()).decode() != self.code_sha256:
            raise KitError("the zip changed while deploying", str(self.path), hint="run the deploy again")
        return data


@dataclass(frozen=True)
class DeploySettings:
    zip: Path
    runtime: runtimes.Runtime
    arch: str
    handler: str = ""
    function_name: str = ""
    layer_name: str = ""
    s3_bucket: str = ""
    s3_prefix: str = ""
    publish: bool = False
    alias: str = ""
    role: str = ""
    dry_run: bool = False


def s3_key(prefix: str, artifact: Artifact) -> str:
    """Named by content, so the same zip is one object however often it is deployed."""
    stem = prefix.strip("/")
    return f"{stem}/{artifact.sha256}.zip" if stem else f"{artifact.sha256}.zip"


def code_location(aws: AwsSession, s: DeploySettings, artifact: Artifact, say: Say) -> dict[str, Any]:
    """Where Lambda takes the code from: the bytes themselves (small zips, no S3_BUCKET) or an S3
    object named by the zip's SHA-256, uploaded unless S3's own checksum of the object there is
    already the zip's; pinned to the object's version when the bucket keeps versions."""
    limit = runtimes.MAX_ZIPPED_DIRECT_UPLOAD
    if not s.s3_bucket:
        if artifact.size > limit:
            raise KitError(
                f"the zip is over Lambda's direct-upload limit of {limit:,} bytes",
                f"{artifact.size:,} bytes",
                hint="set S3_BUCKET=<a bucket in the function's region>: the zip then goes through S3",
            )
        return {"ZipFile": b"" if s.dry_run else artifact.data()}
    key = s3_key(s.s3_prefix, artifact)
    s3 = aws.client("s3")
    url = f"s3://{s.s3_bucket}/{key}"
    head = None
    with aws_errors(f"HeadObject {url}"):
        try:
            head = s3.head_object(Bucket=s.s3_bucket, Key=key, ChecksumMode="ENABLED")
        except Exception as exc:
            if not is_not_found(exc):
                raise
    # Only S3's own checksum vouches for the bytes: anyone who can upload sets an object's metadata.
    if head and head.get("ChecksumSHA256") == artifact.code_sha256 and head.get("ContentLength") == artifact.size:
        version = head.get("VersionId")
        say(reporter.line(f"{url} already holds this zip (S3's SHA-256 checksum){pinned(version)}, no upload"))
    elif s.dry_run:
        say(reporter.line(f"dry run: would upload {artifact.size:,} bytes to {url}"))
        version = None
    else:
        if head:
            theirs = head.get("ChecksumSHA256") or "no SHA-256 checksum"
            say(reporter.line(f"{url} holds other bytes than this zip ({theirs}): uploading it again"))
        started = time.monotonic()
        with aws_errors(f"PutObject {url}"), open(artifact.path, "rb") as body:
            # S3 checks the body against ChecksumSHA256 and keeps it as the object's checksum: a zip
            # rebuilt meanwhile is refused, not stored.
            put = s3.put_object(
                Bucket=s.s3_bucket,
                Key=key,
                Body=body,
                ContentLength=artifact.size,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=artifact.code_sha256,
            )
        if put.get("ChecksumSHA256", artifact.code_sha256) != artifact.code_sha256:
            raise KitError(
                "S3 stored other bytes than this zip", f"{url}: {put['ChecksumSHA256']}", hint="deploy again"
            )
        version = put.get("VersionId")
        say(
            reporter.line(
                f"uploaded {artifact.size:,} bytes to {url}{pinned(version)} in {time.monotonic() - started:.1f}s"
            )
        )
    location = {"S3Bucket": s.s3_bucket, "S3Key": key}
    if version and version != "null":  # "null": a bucket whose versioning was suspended
        location["S3ObjectVersion"] = version
    return location


def pinned(version: str | None) -> str:
    """What a deploy through S3 points Lambda at, for its line."""
    if version and version != "null":
        return f" (version {version})"
    return " (the bucket keeps no versions: Lambda reads the key; its CodeSha256 is checked after)"


def where(location: dict[str, Any]) -> str:
    if "ZipFile" in location:
        return "the zip's bytes"
    version = f" version {location['S3ObjectVersion']}" if "S3ObjectVersion" in location else ""
    return f"s3://{location['S3Bucket']}/{location['S3Key']}{version}"
