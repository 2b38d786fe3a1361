"""A local AWS API for tests: moto in server mode on 127.0.0.1, a free port, one per test session,
reset before each test. Tests point the kit at it with `local_aws.env()` (AWS_ENDPOINT_URL, a
region, test credentials, no config files), make their own boto3 clients with `local_aws.client()`,
and see which requests the server received with `local_aws.requests` (method, path, body head)."""

from __future__ import annotations

import io
import json
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import pytest

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
BODY_KEPT = 4096  # bytes of each request body kept for assertions


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes  # the first BODY_KEPT bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


@dataclass
class RequestLog:
    """WSGI middleware: records every request the server gets, then passes it on unchanged."""

    app: Any
    seen: list[Request] = field(default_factory=list)

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        self.seen.append(Request(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), body[:BODY_KEPT]))
        return self.app(environ, start_response)


@dataclass
class LocalAws:
    endpoint: str
    log: RequestLog

    @property
    def requests(self) -> list[Request]:
        return [r for r in self.log.seen if not r.path.startswith("/moto-api/")]

    def env(self, base: dict[str, str], **extra: str) -> dict[str, str]:
        """`base` (a test's environment) pointed at this server, with no AWS settings of the machine."""
        env = {k: v for k, v in base.items() if not k.startswith("AWS_")}
        env.update(
            TEST_CREDENTIALS,
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_REGION=REGION,
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            AWS_EC2_METADATA_DISABLED="true",
        )
        env.update(extra)
        return env

    def client(self, service: str):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def reset(self) -> None:
        post = urllib.request.Request(self.endpoint + "/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(post, timeout=10) as answer:
            answer.read()
        self.log.seen.clear()


@pytest.fixture(scope="session")
def _moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        # moto builds its WSGI app inside the server thread; wrap it before the first request.
        log = RequestLog(server._server.app)
        server._server.app = log
        yield LocalAws(f"http://{host}:{port}", log)
    finally:
        server.stop()


@pytest.fixture
def local_aws(_moto_server) -> LocalAws:
    """The session's moto server, emptied for this test."""
    _moto_server.reset()
    return _moto_server
