"""A project's page on an index, PEP 691 JSON or PEP 503 HTML, read as pip reads it (links, hashes,
Requires-Python, yanked), for the kit's file chooser (`wheelfetch`). The requests are `httpget`'s
(pip's trust, proxies and credentials, bounded in time).

What an index answers never becomes an internal error: a page pip would skip (another content
type, an error status) or cannot read (JSON nested beyond the parser's depth, markup the HTML
parser asserts on, a charset it does not know) is a `PageError` with the reason, and the package is
looked up on its other indexes; a host that does not answer is an `httpget.NetError`; what the kit
would not do as pip does is a `LeaveToPip`.
Standard library plus `packaging`: runs in the build image and on the host.
"""

from __future__ import annotations

import json
import posixpath
import re
import urllib.parse
from html.parser import HTMLParser

from packaging.utils import canonicalize_name

from lambda_kit.net.httpget import Client, NetError, place

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPES = ("application/vnd.pypi.simple.v1+html", "text/html")
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"  # pip's
HASH_FRAGMENT = re.compile(r"[#&](sha512|sha384|sha256|sha224|sha1|md5)=([^&]*)")  # pip's, in its order
MAX_PAGE = 64 << 20  # bytes of one index page


class LeaveToPip(Exception):
    """The kit cannot choose this package's file as pip would: pip is asked (the reason is logged)."""


class PageError(Exception):
    """An index's page for a project that cannot be used (pip would skip it or fail on it)."""


def read(response, size: int) -> bytes:
    """Up to `size` bytes of a response (httpget.Response), fewer only at its end."""
    return response.read(size)


def read_capped(response, cap: int, what: str) -> bytes:
    data = read(response, cap + 1)
    if len(data) > cap:
        raise LeaveToPip(f"{what} is larger than {cap >> 20} MiB")
    return data


def project_page(client: Client, index: str, name: str) -> tuple[str, list] | None:
    """The address (after redirects) and the files of a project's page on `index`, PEP 691 JSON or
    PEP 503 HTML, as pip asks for it and reads it (None: the index has no such page). Each file is a
    dict in the JSON page's shape: url, hashes, requires-python, yanked."""
    url = posixpath.join(index, urllib.parse.quote(canonicalize_name(name))) + "/"
    where = place(index)
    if not client.secure_origin(url):
        raise PageError(f"{where} is not HTTPS and not a trusted host: pip ignores it")
    with client.get(url, accept=ACCEPT) as response:
        if response.status == 404:
            return None
        if response.status in (401, 403):
            raise NetError("auth", where, f"HTTP {response.status}", response.status)
        if response.status >= 500:
            raise NetError("server", where, f"HTTP {response.status}", response.status)
        if response.status != 200:
            raise PageError(f"{where} answered HTTP {response.status} for its page")
        content_type = response.headers.get("Content-Type", "")
        kind = content_type.split(";")[0].strip().lower()
        if kind != JSON_TYPE and kind not in HTML_TYPES:
            raise PageError(f"{where} answered {kind or 'no content type'} for its page, not an index page")
        body = read_capped(response, MAX_PAGE, f"{where}'s page")
        page_url = response.url
        charset = response.headers.get_content_charset() or "utf-8"
    if kind in HTML_TYPES:
        return page_url, html_files(body, charset, page_url)
    try:
        files = json.loads(body)["files"]
        if not isinstance(files, list):
            raise TypeError("files is not a list")
    except RecursionError:
        raise PageError(f"{where}'s page is JSON nested too deeply to read") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise PageError(f"{where}'s page is not a valid PEP 691 page ({type(exc).__name__}: {str(exc)[:80]})") from None
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
    where = place(page_url)
    try:
        parser.feed(body.decode(charset))
        parser.close()
    except (LookupError, UnicodeDecodeError) as exc:
        raise PageError(f"{where}'s page cannot be read as {charset} ({exc})") from None
    except Exception as exc:  # noqa: BLE001  html.parser asserts on some markup (pip's parser fails alike)
        raise PageError(
            f"{where}'s page is HTML the parser cannot read ({type(exc).__name__}: {str(exc)[:80]})"
        ) from None
    try:
        base = urllib.parse.urljoin(page_url, parser.base or "")  # (pip 26.3 fails on a relative <base>)
    except ValueError as exc:
        raise PageError(f"{where}'s page has a <base> that is not an address ({exc})") from None
    files = []
    for anchor in parser.anchors:
        href = anchor.get("href")
        if not href:
            continue
        try:
            url = urllib.parse.urljoin(base, href)
        except ValueError:
            continue  # a link pip could not follow either
        files.append(
            {
                "url": url,
                "hashes": {},
                "requires-python": anchor.get("data-requires-python"),
                "yanked": anchor.get("data-yanked") is not None,
            }
        )
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
