"""How pip reaches an index, for the kit's own file chooser (`wheelfetch`): pip's network settings
read from the environment pip would run with, HTTP GETs made as pip makes them, and a project's
page, PEP 691 JSON or PEP 503 HTML, read as pip reads it (links, hashes, Requires-Python, yanked).
Whatever pip would do that this module does not (a configuration file, another `PIP_*` setting,
another kind of page, an error) is a `LeaveToPip`: the package is left to pip.
Standard library only: runs in the build image and on the host.
"""

from __future__ import annotations

import base64
import http.client
import json
import netrc
import os
import posixpath
import re
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from packaging.utils import canonicalize_name

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPES = ("application/vnd.pypi.simple.v1+html", "text/html")
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"  # pip's
HASH_FRAGMENT = re.compile(r"[#&](sha512|sha384|sha256|sha224|sha1|md5)=([^&]*)")  # pip's, in its order
PYPI = "https://pypi.org/simple"
MAX_PAGE = 64 << 20  # bytes of one index page
# PIP_* variables that do not change which file pip takes or how it reaches the index (or that the
# kit reads the way pip does). Any other set PIP_* variable: the kit leaves the download to pip.
UNDERSTOOD = {
    "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CERT", "PIP_TRUSTED_HOST", "PIP_TIMEOUT",
    "PIP_DEFAULT_TIMEOUT", "PIP_CONFIG_FILE", "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_INPUT", "PIP_PROGRESS_BAR",
    "PIP_CACHE_DIR", "PIP_NO_CACHE_DIR", "PIP_ROOT_USER_ACTION", "PIP_NO_COLOR", "PIP_REQUIRE_VIRTUALENV",
    "PIP_NO_WARN_SCRIPT_LOCATION", "PIP_QUIET", "PIP_VERBOSE", "PIP_BREAK_SYSTEM_PACKAGES", "PIP_RETRIES",
    "PIP_NO_PYTHON_VERSION_WARNING",
}  # fmt: skip


class LeaveToPip(Exception):
    """The kit cannot choose this package's file as pip would: pip is asked (the reason is logged)."""


@dataclass
class Settings:
    """How pip would reach the indexes, read from the environment pip runs with."""

    indexes: list[str]
    find_links: list[Path]
    context: ssl.SSLContext
    insecure_context: ssl.SSLContext | None  # for trusted hosts only
    trusted: set[str]
    timeout: float
    netrc_hosts: dict[str, tuple[str, str]] = field(default_factory=dict)


def settings_of(env: dict[str, str], pip_prefix: Path) -> Settings:
    """pip's network settings from `env`; LeaveToPip when pip would read something the kit does not."""
    others = sorted(k for k, v in env.items() if k.startswith("PIP_") and v and k not in UNDERSTOOD)
    if others:
        raise LeaveToPip(f"{', '.join(others)} set")
    config = env.get("PIP_CONFIG_FILE")
    if config != os.devnull:
        files = [config] if config else []
        xdg = env.get("XDG_CONFIG_DIRS") or "/etc/xdg"
        files += [os.path.join(d, "pip", "pip.conf") for d in xdg.split(":") if d] + ["/etc/pip.conf"]
        home = os.path.expanduser("~")
        files += [os.path.join(home, ".pip", "pip.conf"),
                  os.path.join(env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"), "pip", "pip.conf"),
                  str(pip_prefix / "pip.conf")]  # fmt: skip
        found = [f for f in files if os.path.exists(f)]
        if found:
            raise LeaveToPip(f"pip would read {found[0]}")
    find_links = []
    for item in (env.get("PIP_FIND_LINKS") or "").split():
        path = Path(urllib.parse.urlsplit(item).path if item.startswith("file:") else item)
        if "://" in item and not item.startswith("file:") or not path.is_dir():
            raise LeaveToPip(f"find-links {item} is not a local folder")
        find_links.append(path)
    indexes = [env.get("PIP_INDEX_URL") or PYPI, *(env.get("PIP_EXTRA_INDEX_URL") or "").split()]
    cert = env.get("PIP_CERT")
    try:
        context = ssl.create_default_context(cafile=cert or None)
        timeout = float(env.get("PIP_TIMEOUT") or env.get("PIP_DEFAULT_TIMEOUT") or 15)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise LeaveToPip(f"the CA bundle or timeout setting ({exc})") from None
    trusted = set((env.get("PIP_TRUSTED_HOST") or "").split())
    insecure = None
    if trusted:  # pip's trusted hosts: TLS without verification (and plain HTTP)
        insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    return Settings(indexes, find_links, context, insecure, trusted, timeout, _netrc_hosts(env))


def _netrc_hosts(env: dict[str, str]) -> dict[str, tuple[str, str]]:
    path = env.get("NETRC") or os.path.expanduser("~/.netrc")
    if not os.path.isfile(path):
        return {}
    try:
        hosts = netrc.netrc(path).hosts
    except (OSError, netrc.NetrcParseError) as exc:
        raise LeaveToPip(f"{path} cannot be read ({exc})") from None
    return {host: (login or "", password or "") for host, (login, _, password) in hosts.items()}


class Resolver:
    """Each host name looked up once per run, one lookup at a time. A run needs two or three names
    (the index, its files' host, a proxy), but opens a connection per page and per file from several
    threads; parallel lookups of the same names can stall for a resolver's whole timeout (5 s on the
    machine this was measured on, for a build that otherwise takes 1 s)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple[str, int], list] = {}

    def addresses(self, host: str, port: int) -> list:
        with self._lock:
            if (host, port) not in self._known:
                self._known[(host, port)] = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
            return self._known[(host, port)]

    def connect(self, address: tuple[str, int], timeout: float | None = None, source_address=None) -> socket.socket:
        """What socket.create_connection does, with the looked-up addresses."""
        error: OSError | None = None
        for family, kind, proto, _, sockaddr in self.addresses(*address):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        raise error or OSError(f"no address for {address[0]}")


def _opener_through(resolver: Resolver, context: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    """urllib's opener (proxies from the environment, redirects) whose connections use `resolver`."""

    def resolved(connection_class):
        class Connection(connection_class):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
                self._create_connection = resolver.connect  # http.client's own hook for the socket

        return Connection

    tls, plain = resolved(http.client.HTTPSConnection), resolved(http.client.HTTPConnection)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(tls, req, context=context)

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(plain, req)

    return urllib.request.build_opener(HTTPSHandler(), HTTPHandler())


class Client:
    """HTTP GETs as pip makes them: credentials of an index URL (or ~/.netrc) sent to its host only,
    plain HTTP and unverified TLS only for trusted hosts, the environment's proxies, a timeout."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.auth: dict[str, str] = {}  # host:port -> Authorization header
        self.indexes = [self._strip_credentials(url) for url in settings.indexes]
        self._openers = threading.local()
        self._resolver = Resolver()

    def _strip_credentials(self, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        if parts.username is None:
            return url
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.auth[host] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return urllib.parse.urlunsplit(parts._replace(netloc=host))

    def _opener(self, trusted: bool) -> urllib.request.OpenerDirector:
        """One opener per thread and kind (urllib's handlers are not shared between threads)."""
        openers = self._openers.__dict__.setdefault("value", {})
        if trusted not in openers:
            context = self.settings.insecure_context if trusted else self.settings.context
            openers[trusted] = _opener_through(self._resolver, context)
        return openers[trusted]

    def open(self, url: str, accept: str | None = None):
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc
        trusted = parts.hostname in self.settings.trusted or host in self.settings.trusted
        if parts.scheme != "https" and not (parts.scheme == "http" and trusted):
            raise LeaveToPip(f"{parts.scheme}:// address {host} (pip needs it trusted)")
        request = urllib.request.Request(url, headers={"User-Agent": "lambda-kit", "Accept-Encoding": "identity"})
        if accept:
            request.add_header("Accept", accept)
        authorization = self.auth.get(host)
        if authorization is None and (login := self.settings.netrc_hosts.get(parts.hostname or "")):
            authorization = "Basic " + base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode("ascii")
        if authorization:
            request.add_unredirected_header("Authorization", authorization)  # never to a redirect's host
        try:
            return self._opener(trusted).open(request, timeout=self.settings.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 404:
                return None
            raise LeaveToPip(f"{url} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise LeaveToPip(f"{url} could not be read ({getattr(exc, 'reason', exc)})") from None


def read(response, size: int, what: str) -> bytes:
    """Up to `size` bytes of a response; a connection that breaks, or closes before its
    Content-Length, leaves the package to pip (never a short file taken for a hash mismatch)."""
    try:
        data = response.read(size)
    except (OSError, http.client.HTTPException) as exc:
        raise LeaveToPip(f"{what} could not be read ({type(exc).__name__}: {exc})") from None
    if len(data) < size and getattr(response, "length", None):  # http.client: bytes still expected
        raise LeaveToPip(f"{what} ended {response.length} bytes short of its Content-Length")
    return data


def read_capped(response, cap: int, what: str) -> bytes:
    data = read(response, cap + 1, what)
    if len(data) > cap:
        raise LeaveToPip(f"{what} is larger than {cap >> 20} MiB")
    return data


def project_page(client: Client, index: str, name: str) -> tuple[str, list] | None:
    """The address (after redirects) and the files of a project's page on `index`, PEP 691 JSON or
    PEP 503 HTML, as pip asks for it and reads it (None: the index has no such page). Each file is a
    dict in the JSON page's shape: url, hashes, requires-python, yanked."""
    url = posixpath.join(index, urllib.parse.quote(canonicalize_name(name))) + "/"
    response = client.open(url, accept=ACCEPT)
    if response is None:
        return None
    with response:
        content_type = response.headers.get("Content-Type", "")
        kind = content_type.split(";")[0].strip().lower()
        if kind != JSON_TYPE and kind not in HTML_TYPES:
            raise LeaveToPip(f"{url} answered {kind or 'no content type'}, not an index page")
        body = read_capped(response, MAX_PAGE, f"the page {url}")
        page_url = response.geturl()
    if kind in HTML_TYPES:
        return page_url, html_files(body, response.headers.get_content_charset() or "utf-8", page_url)
    try:
        files = json.loads(body)["files"]
        if not isinstance(files, list):
            raise TypeError("files is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise LeaveToPip(f"{url} is not a valid PEP 691 page ({exc})") from None
    return page_url, files


class _Anchors(HTMLParser):
    """What pip reads of a PEP 503 page: every <a>'s attributes, and the first <base href>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self.anchors.append(dict(attrs))


def html_files(body: bytes, charset: str, page_url: str) -> list[dict]:
    """A PEP 503 page's links in the JSON page's shape. As in pip: hrefs resolved against the
    page's <base> (or its address), `data-yanked` present (even empty) means yanked, an attribute
    without a value counts as absent, and the hash is the one in the link's fragment."""
    parser = _Anchors()
    try:
        parser.feed(body.decode(charset))
        parser.close()
    except (LookupError, UnicodeDecodeError) as exc:
        raise LeaveToPip(f"{page_url} cannot be read as {charset} ({exc})") from None
    base = urllib.parse.urljoin(page_url, parser.base or "")  # (pip 26.3 fails on a relative <base>)
    files = []
    for anchor in parser.anchors:
        href = anchor.get("href")
        if not href:
            continue
        files.append({"url": urllib.parse.urljoin(base, href), "hashes": {},
                      "requires-python": anchor.get("data-requires-python"),
                      "yanked": anchor.get("data-yanked") is not None})  # fmt: skip
    return files


def link_sha256(url: str, hashes: dict) -> str | None:
    """The sha256 pip gives a link: the page's, unless the link's fragment names one (pip's rule: the
    first `#name=` or `&name=` of a hash it knows; a fragment hash replaces the page's)."""
    listed = dict(hashes)
    match = HASH_FRAGMENT.search(url)
    if match:
        listed[match.group(1)] = match.group(2)
    value = listed.get("sha256")
    return value if isinstance(value, str) else None
