"""Misbehaving networks on 127.0.0.1 for the network tests (issue 24): a package index (http, or
https with a certificate of its own test CA) whose pages and files can fail on purpose (an error
status, a drip-feed, a redirect, a body of any kind, credentials required), an HTTP proxy (CONNECT
and plain), and projects whose Pipfile.lock points at them with pipenv's own hash of the Pipfile.
Every server logs what it was asked: (path, Authorization) for the index, (target, Proxy-Authorization)
for the proxy."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import ipaddress
import json
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from helpers import ROOT, copy_kit

JSON = "application/vnd.pypi.simple.v1+json"


class Certs:
    """A test CA (trusted by no one but whoever is given `ca`) and a server certificate of it for
    127.0.0.1 and localhost."""

    def __init__(self, folder: Path, name: str = "lambda-kit test CA") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        folder.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        client_key = ec.generate_private_key(ec.SECP256R1())
        client = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "build agent")]))
            .issuer_name(ca_name)
            .public_key(client_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        self.client = folder / "client.pem"  # key and certificate in one file, as pip's --client-cert takes it
        self.client.write_bytes(
            client_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            + client.public_bytes(pem)
        )
        self.ca = folder / "ca.pem"
        self.ca.write_bytes(ca.public_bytes(pem))
        self.cert = folder / "server.pem"
        self.cert.write_bytes(cert.public_bytes(pem))
        self.key = folder / "server.key"
        self.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    def server_context(self, client_certs: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        if client_certs:  # only a client with a certificate of this CA gets an answer
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.ca)
        return context


class FaultIndex:
    """A PEP 691 index: pages[name] = list of file dicts, files[filename] = bytes. faults[path] is
    ("status", code), ("drip", seconds per byte), ("stall", seconds), ("redirect", url) or ("body",
    content type, bytes);
    path "*" fails every request. `auth` ("user:token") makes every request need it (401 else)."""

    def __init__(self, certs: Certs | None = None, auth: str | None = None, client_certs: bool = False) -> None:
        self.pages: dict[str, list[dict]] = {}
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, tuple] = {}
        self.seen: list[tuple[str, str | None]] = []
        self.auth = "Basic " + base64.b64encode(auth.encode()).decode() if auth else None
        self.prefix = ""  # a path every request must start with (a token in the index's path)
        index = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                index.seen.append((self.path, self.headers.get("Authorization")))
                index.answer(self)

            def do_HEAD(self) -> None:  # the probe's: the status and headers a GET would have
                index.seen.append((self.path, self.headers.get("Authorization")))
                index.answer(self, head=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if certs is not None:
            context = certs.server_context(client_certs)
            self.server.socket = context.wrap_socket(
                self.server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = self.server.server_port
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"{'https' if certs else 'http'}://{self.host}/simple"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, handler: BaseHTTPRequestHandler, head: bool = False) -> None:
        path = handler.path.split("?")[0]
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return send(handler, 404, "text/plain", b"not found")
            path = path[len(self.prefix) :]
        fault = self.faults.get(path) or self.faults.get("*")
        if self.auth and handler.headers.get("Authorization") != self.auth:
            fault = ("status", 401)
        if fault and fault[0] == "stall":  # reads the request, never answers
            time.sleep(fault[1])
            return None
        if fault and fault[0] == "status":
            return send(handler, fault[1], "text/plain", f"fault {fault[1]}".encode())
        if fault and fault[0] == "redirect":
            return send(handler, 302, "text/plain", b"", {"Location": fault[1]})
        if fault and fault[0] == "body":
            return send(handler, 200, fault[1], fault[2])
        status, kind, body = self.normal(path)
        if head:
            return send(handler, status, kind, b"", {"X-Length": str(len(body))})
        if fault and fault[0] == "drip":
            handler.send_response(status)
            handler.send_header("Content-Type", kind)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            try:
                for byte in body:
                    handler.wfile.write(bytes([byte]))
                    handler.wfile.flush()
                    time.sleep(fault[1])
            except OSError:
                self.seen.append((path, "closed by the client"))
            return None
        return send(handler, status, kind, body)

    def normal(self, path: str) -> tuple[int, str, bytes]:
        if path.strip("/") == "simple":
            return 200, "text/html", b"<html><body>the index</body></html>"
        return answer(self.pages, self.files, path)

    def add(self, name: str, path: Path, **extra) -> str:
        """A file on `name`'s page; returns its lock hash."""
        return add_file(self.pages, self.files, name, path, extra)

    def asked(self) -> list[str]:
        """The projects whose page was asked for."""
        paths = [p[len(self.prefix) :] if self.prefix and p.startswith(self.prefix) else p for p, _ in self.seen]
        return [p.strip("/").split("/")[1] for p in paths if p.startswith("/simple/") and p.count("/") >= 3]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def answer(pages: dict, files: dict, path: str, page=None) -> tuple[int, str, bytes]:
    """(status, content type, body) of an index of `pages` and `files` for `path`: a project's PEP
    691 page (or what `page(files)` makes of it), or a file."""
    parts = path.strip("/").split("/")
    if parts[0] == "simple" and len(parts) == 2 and parts[1] in pages:
        if page is not None:
            return page(pages[parts[1]])
        return (
            200,
            JSON,
            json.dumps({"meta": {"api-version": "1.1"}, "name": parts[1], "files": pages[parts[1]]}).encode(),
        )
    if parts[0] == "files" and len(parts) == 2 and parts[1] in files:
        return 200, "application/octet-stream", files[parts[1]]
    return 404, "text/plain", b"not found"


def add_file(pages: dict, files: dict, name: str, path: Path, extra: dict) -> str:
    """`path` served as a file on `name`'s page (with `extra` JSON fields); returns its lock hash."""
    data = path.read_bytes()
    files[path.name] = data
    digest = hashlib.sha256(data).hexdigest()
    entry = {"filename": path.name, "url": f"../../files/{path.name}", "hashes": {"sha256": digest}}
    pages.setdefault(name, []).append({**entry, **extra})
    return "sha256:" + digest


def send(handler: BaseHTTPRequestHandler, status: int, kind: str, body: bytes, headers: dict | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(body)


class Proxy:
    """An HTTP proxy: CONNECT tunnels and absolute-form GETs, each logged as (method, target,
    Proxy-Authorization, Authorization). fault: None, "407" (asks for credentials it never accepts)
    or "stall" (reads the request and never answers)."""

    def __init__(self, fault: str | None = None) -> None:
        self.fault, self.seen = fault, []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy.one(self.request)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def one(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        self.seen.append((method, target, headers.get("Proxy-Authorization"), headers.get("Authorization")))
        if self.fault == "stall":
            time.sleep(3600)
        if self.fault == "407":
            client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            return
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            parts = target.split("/", 3)
            host, _, port = parts[2].partition(":")
            upstream = socket.create_connection((host, int(port or 80)))
            rest = head.split(b"\r\n", 1)[1]
            upstream.sendall(f"{method} /{parts[3] if len(parts) > 3 else ''} HTTP/1.1\r\n".encode() + rest)
        with upstream:
            other = threading.Thread(target=pump, args=(upstream, client), daemon=True)
            other.start()
            pump(client, upstream)
            other.join()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def pump(src: socket.socket, dst: socket.socket) -> None:
    """Bytes from one socket to the other until either side ends; then both are shut."""
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    for side in (src, dst):
        with contextlib.suppress(OSError):
            side.shutdown(socket.SHUT_RDWR)


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pipfile_hash(pipfile: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lambda_kit" / "lock" / "lockhash.py"), str(pipfile)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)["current"]


def pipfile_line(name: str, entry: dict) -> str:
    if "git" in entry:
        return f'{name} = {{git = "{entry["git"]}", ref = "{entry["ref"]}"}}'
    return f'{name} = {{version = "*", index = "{entry["index"]}"}}' if "index" in entry else f'{name} = "*"'


def project(folder: Path, sources: list[dict], default: dict[str, dict], wanted: list[str]) -> Path:
    """The kit and a function whose Pipfile has `sources` and [packages] `wanted`, and whose lock
    (pipenv's hash of that Pipfile) has `default` ({name: lock entry})."""
    copy_kit(folder)
    (folder / "lambdas").mkdir()
    (folder / "lambdas" / "app.py").write_text("def handler(event, context):\n    return {'ok': True}\n")
    lines = []
    for source in sources:
        lines += [
            "[[source]]",
            f'url = "{source["url"]}"',
            f"verify_ssl = {str(source.get('verify_ssl', True)).lower()}",
            f'name = "{source["name"]}"',
            "",
        ]
    lines += ["[packages]"] + [pipfile_line(n, default[n]) for n in wanted]
    lines += ["", "[requires]", 'python_version = "3.11"', ""]
    (folder / "Pipfile").write_text("\n".join(lines))
    lock = {
        "_meta": {
            "hash": {"sha256": pipfile_hash(folder / "Pipfile")},
            "pipfile-spec": 6,
            "requires": {"python_version": "3.11"},
            "sources": sources,
        },
        "default": default,
        "develop": {},
    }
    (folder / "Pipfile.lock").write_text(json.dumps(lock, indent=4) + "\n")
    return folder
