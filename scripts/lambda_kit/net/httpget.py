"""HTTP GETs as pip 26.3 makes them, for the kit's reachability probe and file chooser.

What pip (requests, urllib3, truststore) does, and this module does the same way:
- TLS: the system's store (OpenSSL's default paths, or the first CA file of the usual places when
  those hold none, as truststore finds it), plus certifi's bundle, plus every extra bundle
  (`--cert`, `REQUESTS_CA_BUNDLE`, the kit's CA_BUNDLE): added, never in place of the others; a
  client certificate (`--client-cert`) when one is given. Verification is chosen again for every
  redirect hop: a trusted host (`--trusted-host`, host or host:port) is read without it, any
  other https host with it, so a trusted http index cannot redirect to an unverified https one.
- Proxies: pip's `--proxy` for every request (no environment proxy then); else the environment's
  (`http_proxy`, `https_proxy`, `all_proxy`, lower case first) unless `no_proxy` matches (host
  suffixes, host:port, `*`, and CIDR ranges for IP addresses), chosen again for every hop. https
  goes through a CONNECT tunnel, with the proxy URL's credentials as Proxy-Authorization.
- Credentials: an index URL's go to its host:port only, ~/.netrc's to their host; a redirect to
  another host drops them (and takes that host's netrc entry, as requests does).
Beyond pip, bounded in time: each host (or proxy) that fails to answer is marked dead once and every
later request to it fails at once; a body that delivers under MIN_BYTES in a whole timeout window
(a drip-feed) fails; `abort` shuts every open socket, so every reader stops within milliseconds.
Failures are `NetError`s with a class (KINDS). Standard library only: runs in the tools layer, in
the build image and on the host.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

# (host_of, place and NetError are also this module's for its users)
from lambda_kit.net.netrules import (  # noqa: F401
    KINDS,
    NetError,
    basic,
    bypasses,
    host_of,
    netloc,
    place,
    same_origin,
    split,
    verified_context,
)

DEAD_KINDS = {"dns", "refused", "timeout", "tls", "proxy", "stalled"}  # the host (or proxy) answers nothing useful
MAX_REDIRECTS = 30  # requests' limit
MIN_BYTES = 1024  # a body must deliver at least this much in every timeout window


@dataclass
class HttpSettings:
    timeout: float = 15.0
    cafiles: list[str] = field(default_factory=list)  # extra bundles (PEM files or folders)
    client_cert: str | None = None
    trusted: list[str] = field(default_factory=list)  # pip's trusted hosts: host or host:port
    proxy: str | None = None  # pip's --proxy: every request, environment proxies ignored
    env_proxies: dict[str, str] = field(default_factory=dict)  # http, https, all, no -> value
    netrc: dict[str, tuple[str, str]] = field(default_factory=dict)  # host -> (login, password)
    deadline: float | None = None  # time.monotonic() after which every request fails


class Client:
    """GETs with pip's trust, proxies and credentials (module docstring); thread-safe."""

    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self.verified = verified_context(settings.cafiles, settings.client_cert)
        self.insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.insecure.check_hostname, self.insecure.verify_mode = False, ssl.CERT_NONE
        if settings.client_cert:
            self.insecure.load_cert_chain(settings.client_cert)
        self.auth: dict[str, str] = {}  # host:port -> Authorization (from index URLs)
        self.dead: dict[str, NetError] = {}  # host:port (or proxy) -> why it counts as dead
        self._lock = threading.Lock()
        self._addresses: dict[tuple[str, int], list] = {}
        self._open: set = set()  # connections in use, for abort
        self.stopped = False

    def strip_credentials(self, url: str) -> str:
        """The URL without its user:password, which is kept for its host:port."""
        parts, _ = split(url)
        if parts.username is None:
            return url
        where = place(url)
        self.auth[where] = basic(urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))
        return urllib.parse.urlunsplit(parts._replace(netloc=where))

    def trusted(self, host: str, port: int | None) -> bool:
        for entry in self.settings.trusted:
            parts = urllib.parse.urlsplit("//" + entry)
            try:
                if (parts.hostname or "") == host.lower() and parts.port in (None, port):
                    return True
            except ValueError:
                continue
        return False

    def secure_origin(self, url: str) -> bool:
        """pip reads an index page only from https, a trusted host or this machine (localhost, 127/8, ::1)."""
        parts, _ = split(url)
        host = parts.hostname or ""
        if parts.scheme == "https" or host == "localhost" or self.trusted(host, parts.port):
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return address in ipaddress.ip_network("127.0.0.0/8") or address == ipaddress.ip_address("::1")

    def proxy_for(self, scheme: str, host: str, port: int | None) -> str | None:
        if self.settings.proxy is not None:
            return self.settings.proxy or None
        proxies = self.settings.env_proxies
        if bypasses(host, port, proxies.get("no", "")):
            return None
        return proxies.get(scheme) or proxies.get("all") or None

    def abort(self) -> None:
        """Stop every request at once: open sockets shut down, new ones refused."""
        self.stopped = True
        with self._lock:
            connections = list(self._open)
        for conn in connections:
            for sock in (getattr(conn, "sock", None), getattr(conn, "raw_socket", None)):
                try:
                    if sock is not None:
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass

    def get(self, url: str, accept: str | None = None, deadline: float | None = None, method: str = "GET") -> Response:
        """GET `url` (credentials stripped first), following redirects; a Response for any final
        status (the caller judges 404 and the others), NetError when no answer came."""
        url = self.strip_credentials(url)
        authorization = self.auth.get(place(url)) or self._netrc(url)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._hop(url, accept, authorization, deadline, method)
            location = response.headers.get("Location")
            if response.status not in (301, 302, 303, 307, 308) or not location:
                return response
            response.close()
            try:
                target = urllib.parse.urljoin(url, location)
            except ValueError as exc:
                raise NetError("address", place(url), f"a redirect to {exc}") from None
            split(target)  # only to an http(s) address (pip refuses file: and the like)
            if not same_origin(url, target):  # requests' rule: not the credentials meant for this one
                authorization = self._netrc(target)
            url = target
        raise NetError("http", place(url), f"more than {MAX_REDIRECTS} redirects")

    def _netrc(self, url: str) -> str | None:
        login = self.settings.netrc.get(urllib.parse.urlsplit(url).hostname or "")
        return basic(*login) if login else None

    def _hop(
        self, url: str, accept: str | None, authorization: str | None, deadline: float | None, method: str
    ) -> Response:
        parts, port = split(url)
        scheme, host = parts.scheme, parts.hostname or ""
        proxy = self.proxy_for(scheme, host, parts.port)
        headers = {"User-Agent": "lambda-kit", "Accept-Encoding": "identity", "Connection": "close"}
        if accept:
            headers["Accept"] = accept
        if authorization:
            headers["Authorization"] = authorization
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if proxy:
            pparts, pport = split(proxy if "://" in proxy else f"http://{proxy}")
            if pparts.scheme != "http":
                raise NetError("proxy", place(proxy), f"a {pparts.scheme} proxy (the kit speaks to http proxies only)")
            connect_to = (pparts.hostname or "", pport)
            proxy_auth = basic(urllib.parse.unquote(pparts.username or ""), urllib.parse.unquote(pparts.password or ""))
            proxy_headers = {"Proxy-Authorization": proxy_auth} if pparts.username else {}
        else:
            connect_to, proxy_headers = (host, port), {}
        where = netloc(*connect_to)
        key = f"{where}>{place(url)}" if proxy else where  # what a failure of this hop marks dead
        timeout = self._left(deadline, where)
        if scheme == "https":
            context = self.insecure if self.trusted(host, parts.port) else self.verified
            conn = http.client.HTTPSConnection(*connect_to, timeout=timeout, context=context)
            if proxy:
                conn.set_tunnel(host, port, headers=proxy_headers)
        else:
            conn = http.client.HTTPConnection(*connect_to, timeout=timeout)
            if proxy:
                path = urllib.parse.urlunsplit(parts._replace(netloc=netloc(host, parts.port)))
                headers.update(proxy_headers)
        conn._create_connection = lambda address, timeout=None, source=None: self._connect(conn, address, timeout)
        with self._lock:
            if self.stopped:
                raise NetError("stopped", place(url))
            for known in (where, key):
                if known in self.dead:
                    raise self.dead[known]
            self._open.add(conn)
        try:
            conn.request(method, path, headers=headers)
            answer = conn.getresponse()
        except BaseException as exc:
            self._forget(conn)
            raise self._failure(exc, where, place(url), key) from None
        response = Response(self, conn, answer, url, key, deadline)
        if answer.status == 407:
            response.close()
            raise self._dead(NetError("proxy", where, f"proxy {where}: 407 Proxy Authentication Required", 407), where)
        return response

    def _left(self, deadline: float | None, where: str) -> float:
        ends = [d for d in (deadline, self.settings.deadline) if d is not None]
        left = min(ends) - time.monotonic() if ends else self.settings.timeout
        if left <= 0:
            raise NetError("timeout", where, "the fetch's time is up")
        return min(self.settings.timeout, left)

    def _connect(self, conn, address: tuple[str, int], timeout: float | None) -> socket.socket:
        """socket.create_connection with each name looked up once per run, one lookup at a time
        (parallel lookups of one name stalled a resolver for 5 s), and the socket known to abort."""
        with self._lock:
            if address not in self._addresses:
                self._addresses[address] = socket.getaddrinfo(*address, 0, socket.SOCK_STREAM)
            found = self._addresses[address]
        error: OSError | None = None
        for family, kind, proto, _, sockaddr in found:
            sock = socket.socket(family, kind, proto)
            conn.raw_socket = sock
            try:
                if self.stopped:
                    raise OSError("stopped")
                sock.settimeout(timeout)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        raise error or OSError(f"no address for {address[0]}")

    def _forget(self, conn) -> None:
        with self._lock:
            self._open.discard(conn)
        conn.close()

    def _dead(self, error: NetError, key: str) -> NetError:
        if error.kind in DEAD_KINDS:
            with self._lock:
                self.dead.setdefault(key, error)
        return error

    def _failure(self, exc: BaseException, where: str, server: str, key: str) -> NetError:
        """A NetError of the right class for what went wrong before an answer came (`where` is
        what was connected to: the server or the proxy; `key` what counts as dead after it)."""
        if self.stopped:
            return NetError("stopped", server)
        if isinstance(exc, NetError):
            return self._dead(exc, key)
        if not isinstance(exc, Exception):
            raise exc  # KeyboardInterrupt and the like
        if isinstance(exc, OSError) and str(exc).startswith("Tunnel connection failed"):
            return self._dead(NetError("proxy", where, f"proxy {where}: {str(exc).split(': ', 1)[-1]}"), key)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return self._dead(NetError("tls", server, exc.verify_message or str(exc)), key)
        if isinstance(exc, ssl.SSLError):
            detail = f"handshake failed: {exc.reason or exc}"
            if "CERTIFICATE_REQUIRED" in str(exc.reason or exc).upper():
                detail = "the server asks for a client certificate"
            elif isinstance(exc, ssl.SSLEOFError):  # TLS 1.3: the server's alert may be lost as it closes
                detail = "the server ended the handshake: does it ask for a client certificate?"
            return self._dead(NetError("tls", server, detail), key)
        kind, detail = "broken", f"{type(exc).__name__}: {exc}"
        if isinstance(exc, socket.gaierror):
            kind, detail = "dns", str(exc.strerror or exc)
        elif isinstance(exc, ConnectionRefusedError):
            kind, detail = "refused", ""
        elif isinstance(exc, (socket.timeout, TimeoutError)):
            kind, detail = "timeout", f"{self.settings.timeout:g} s"
        if key != where and kind in ("dns", "refused", "timeout"):  # the proxy itself did not answer
            return self._dead(
                NetError("proxy", where, f"proxy {where}: {KINDS[kind]}" + (f", {detail}" if detail else "")), where
            )
        return self._dead(NetError(kind, where if kind != "broken" else server, detail), key)


class Response:
    """An answer whose body is read a network read at a time, bounded (module docstring)."""

    def __init__(self, client: Client, conn, answer, url: str, key: str, deadline: float | None) -> None:
        self.client, self.conn, self.answer, self.url, self.key = client, conn, answer, url, key
        self.where = place(url)
        self.status, self.headers, self.deadline = answer.status, answer.headers, deadline
        self.window = (time.monotonic(), 0)  # (start, bytes since)

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.client._forget(self.conn)

    def read1(self, size: int) -> bytes:
        """At most `size` bytes from one network read; b"" at the end of the body. Each read waits
        at most the timeout; a window of `timeout` seconds with under MIN_BYTES is a drip-feed."""
        client, (started, count) = self.client, self.window
        now = time.monotonic()
        if now - started >= client.settings.timeout:
            if count < MIN_BYTES:
                self.close()
                raise client._dead(NetError("stalled", self.where, f"{count} bytes in {now - started:.0f} s"), self.key)
            self.window = (started, count) = (now, 0)
        try:
            if self.conn.sock is not None:
                self.conn.sock.settimeout(client._left(self.deadline, self.where))
            data = self.answer.read1(size)
        except Exception as exc:  # noqa: BLE001  a timeout, a reset, a short body: classified
            self.close()
            if isinstance(exc, NetError):
                raise
            if client.stopped:
                raise NetError("stopped", self.where) from None
            if isinstance(exc, http.client.IncompleteRead):
                raise NetError("broken", self.where, f"the answer ended {exc.expected} bytes short") from None
            if isinstance(exc, (socket.timeout, TimeoutError)):
                raise client._dead(NetError("timeout", self.where, "no data for the timeout"), self.key) from None
            raise client._failure(exc, self.where, self.where, self.key) from None
        if not data and self.answer.length:
            self.close()
            raise NetError("broken", self.where, f"the answer ended {self.answer.length} bytes short")
        self.window = (started, count + len(data))
        return data

    def read(self, size: int) -> bytes:
        """Up to `size` bytes: fewer only at the end of the body."""
        chunks, got = [], 0
        while got < size:
            data = self.read1(min(size - got, 1 << 18))
            if not data:
                break
            chunks.append(data)
            got += len(data)
        return b"".join(chunks)
