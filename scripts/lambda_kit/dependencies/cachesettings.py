"""CACHE_URL and CACHE_PUSH, checked once when the settings are read: a mistake fails before any build."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from lambda_kit.common.errors import UsageError
from lambda_kit.dependencies import cachesign

BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def check_settings(url: str, push: str, keys: cachesign.Keys | None = None) -> tuple[str, bool]:
    """CACHE_URL and CACHE_PUSH (with the keys cachesign read), checked once at the edge. A folder
    becomes absolute. CACHE_PUSH empty: push, unless trusted keys are set without a signing key."""
    if push not in ("0", "1", ""):
        raise UsageError("CACHE_PUSH must be 0 or 1", push, hint="CACHE_PUSH=0 makes this agent read-only")
    if not url:
        return "", False
    if keys is not None and keys.reads_only and push == "1":
        raise UsageError(
            "CACHE_PUSH=1 needs CACHE_SIGNING_KEY: with CACHE_TRUSTED_KEYS set, an agent without a signing key only "
            "reads",
            hint="set CACHE_SIGNING_KEY on the agents that may write the store (main-branch builds), or CACHE_PUSH=0",
        )
    if keys is not None and importlib.util.find_spec("cryptography") is None:
        raise UsageError(
            "CACHE_SIGNING_KEY or CACHE_TRUSTED_KEYS is set but cryptography is not installed in the helper's "
            "environment",
            hint="run through make (it adds cryptography when either is set), or set LAMBDA_KIT_EXTRAS=sign",
        )
    pushes = push == "1" or (push == "" and not (keys is not None and keys.reads_only))
    if url.startswith("s3://"):
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not BUCKET.fullmatch(bucket) or ".." in prefix.split("/"):
            raise UsageError("CACHE_URL names no valid S3 bucket", url, hint="CACHE_URL=s3://bucket/prefix")
        if importlib.util.find_spec("botocore") is None:  # the store's client (boto3 brings it)
            raise UsageError(
                "CACHE_URL is an S3 URL but boto3 is not installed in the helper's environment",
                url,
                hint="run through make (it adds boto3 when CACHE_URL starts with s3://), or set LAMBDA_KIT_EXTRAS=aws",
            )
        return f"s3://{bucket}/{prefix.strip('/')}".rstrip("/"), pushes
    if "://" in url:
        raise UsageError(
            "CACHE_URL is neither s3:// nor a folder",
            url,
            hint="use s3://bucket/prefix or a folder path (a shared mount)",
        )
    return str(Path(url).expanduser().absolute()), pushes
