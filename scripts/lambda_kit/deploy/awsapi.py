"""boto3 for the kit's AWS features: clients on the standard credential chain (AWS_PROFILE,
AWS_REGION, AWS_ENDPOINT_URL, the environment, SSO, instance roles) with the standard retry mode,
and botocore's exceptions turned into one KitError line each.

boto3 comes from scripts/aws-requirements.txt (LAMBDA_KIT_EXTRAS=aws); it is imported only when a
client is made, so the rest of the helper runs without it. Credentials are never printed: the
messages below name the call and AWS's error code, never a key.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lambda_kit.common.errors import KitError

THROTTLING = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown"}
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden", "403"}
BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "AuthFailure",
}
CREDENTIALS_HINT = (
    "set AWS_PROFILE, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (never on the make command line), "
    "or run where an instance or task role applies"
)


def one_line(text: str, limit: int = 300) -> str:
    """AWS messages may span lines (or be a whole XML document): one line, bounded."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def client_error(exc: Exception, action: str) -> KitError:
    """A botocore ClientError as one KitError: throttling, access denied and bad credentials get
    their own line and hint; anything else names the call, AWS's code and message."""
    response = getattr(exc, "response", {})
    code = error_code(exc)
    message = one_line(response.get("Error", {}).get("Message", "") or str(exc))
    if code in THROTTLING:
        attempts = response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
        return KitError(
            f"AWS throttled {action} ({attempts} attempts)",
            code,
            hint="try again later, or allow more attempts with AWS_MAX_ATTEMPTS (standard retry mode)",
        )
    if code in ACCESS_DENIED:
        return KitError(
            f"access denied to {action}",
            message or code,
            hint="the identity in use needs that permission (AWS_PROFILE chooses another)",
        )
    if code in BAD_CREDENTIALS:
        return KitError("AWS refused the credentials", f"{action}: {code}", hint=CREDENTIALS_HINT)
    if code in ("ResourceConflictException", "PreconditionFailedException"):  # another update or deploy got there first
        return KitError(
            f"{action} refused: the function is being changed by someone else",
            message or code,
            hint="another deploy or update is running; run the deploy again when it has finished",
        )
    return KitError(f"{action} failed", f"{code}: {message}" if message else code)


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Every AWS call runs inside this: botocore's exceptions leave it as KitError."""
    from botocore import exceptions as bx

    try:
        yield
    except (bx.NoCredentialsError, bx.PartialCredentialsError, bx.CredentialRetrievalError) as exc:
        raise KitError("no AWS credentials found", one_line(exc), hint=CREDENTIALS_HINT) from None
    except bx.ProfileNotFound as exc:
        raise KitError(
            "no such AWS profile",
            exc.kwargs.get("profile", ""),
            hint="set AWS_PROFILE to a profile of your AWS config, or unset it",
        ) from None
    except bx.NoRegionError:
        raise KitError(
            "no AWS region set", hint="export AWS_REGION=eu-west-1 (or set a region in the profile)"
        ) from None
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError) as exc:
        raise KitError(
            f"cannot reach AWS for {action}", one_line(exc), hint="check the network, AWS_REGION and AWS_ENDPOINT_URL"
        ) from None
    except bx.ParamValidationError as exc:
        raise KitError(f"invalid value for {action}", one_line(exc)) from None
    except bx.ClientError as exc:
        raise client_error(exc, action) from None
    except bx.BotoCoreError as exc:
        raise KitError(f"{action} failed", one_line(exc)) from None


class AwsSession:
    """One boto3 session; clients made on first use (an S3 client costs a few tenths of a second)."""

    def __init__(self) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise KitError(
                "boto3 is not installed in the helper's environment",
                hint="run it through make deploy, or with LAMBDA_KIT_EXTRAS=aws scripts/lambda-kit ...",
            ) from None
        # LAMBDA_KIT_DEBUG logs at DEBUG; botocore's own debug lines carry request headers (the access key id).
        for name in ("boto3", "botocore", "s3transfer", "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._config = Config(retries={"mode": "standard"}, user_agent_extra="lambda-kit")
        self._clients: dict[str, Any] = {}
        with aws_errors("opening an AWS session"):
            # AWS_REGION as the AWS CLI v2 and the other SDKs read it (botocore alone reads AWS_DEFAULT_REGION).
            self._session = boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)
        self.region = self.client("lambda").meta.region_name

    def client(self, service: str) -> Any:
        if service not in self._clients:
            with aws_errors(f"opening an AWS {service} client"):
                self._clients[service] = self._session.client(service, config=self._config)
        return self._clients[service]


def waiter(client: Any, name: str, what: str, **params: Any) -> None:
    """Wait with one of boto3's waiters; a failed or stuck resource is one line with AWS's reason."""
    from botocore.exceptions import WaiterError

    with aws_errors(f"waiting for {what}"):
        try:
            client.get_waiter(name).wait(**params)
        except WaiterError as exc:
            last = exc.last_response or {}
            if "Error" in last and "Configuration" not in last:
                raise client_error(exc, f"waiting for {what}") from None
            config = last.get("Configuration", last)
            reason = config.get("LastUpdateStatusReason") or config.get("StateReason") or one_line(exc)
            raise KitError(
                f"{what} failed",
                one_line(reason),
                hint="see the function in the Lambda console, fix what it says and deploy again",
            ) from None


def is_not_found(exc: Exception) -> bool:
    return error_code(exc) in ("ResourceNotFoundException", "404", "NoSuchKey", "NotFound")
