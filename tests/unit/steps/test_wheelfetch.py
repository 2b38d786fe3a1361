"""The kit's file chooser against pip itself: for the same index, lock hashes and target, `wheelfetch`
takes the file the pinned pip's `download` takes, on a local index (a PEP 691 server on 127.0.0.1)
of odd wheels made here: tag priorities, build tags, yanked files, Requires-Python, ties and files
the lock does not name (real locks from PyPI: integration/network/test_wheelfetch_network.py). And
what it does with an index that misbehaves: lies about a file, sends too much, answers HTML or an
error, points outside, or would receive credentials meant for another host."""

from __future__ import annotations

import hashlib
import html
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import faultnet
import pytest
from helpers import make_wheel, runtime_target, target_args
from lambda_kit.net import httpget, indexclient, netconfig
from lambda_kit.steps import fetchphase, wheelfetch
from lambda_kit.steps.target import Target

JSON = "application/vnd.pypi.simple.v1+json"


class Index:
    """A PEP 691 index on 127.0.0.1: pages[name] = list of file dicts; files[filename] = bytes."""

    def __init__(self) -> None:
        self.pages: dict[str, list[dict]] = {}
        self.files: dict[str, bytes] = {}
        self.overrides: dict[str, tuple[int, str, bytes]] = {}  # path -> (status, content type, body)
        self.short: set[str] = set()  # paths whose answer stops halfway through its Content-Length
        self.seen: list[tuple[str, str | None]] = []  # (path, Authorization)
        self.html = False  # serve PEP 503 HTML pages instead of PEP 691 JSON
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:  # the kit's probe of the index's root
                index.seen.append((self.path, self.headers.get("Authorization")))
                self.send_response(200 if self.path.rstrip("/") == "/simple" else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                index.seen.append((self.path, self.headers.get("Authorization")))
                status, kind, body = index.answer(self.path)
                self.send_response(status)
                if status in (301, 302):
                    self.send_header("Location", body.decode())
                    body = b""
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if self.path in index.short else body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_port}"
        self.url = f"http://{self.host}/simple"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str) -> tuple[int, str, bytes]:
        if path in self.overrides:
            return self.overrides[path]
        page = (lambda files: (200, "text/html; charset=utf-8", html_page(files))) if self.html else None
        return faultnet.answer(self.pages, self.files, path, page)

    def add(self, name: str, path: Path, **extra) -> str:
        return faultnet.add_file(self.pages, self.files, name, path, extra)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def html_page(files: list[dict]) -> bytes:
    """The PEP 503 form of a JSON page's files: the hash in the link's fragment, the other facts as
    escaped data- attributes (a yanked file's reason as the value of data-yanked)."""
    links = []
    for item in files:
        attrs = f' href="{html.escape(item["url"])}#sha256={item["hashes"]["sha256"]}"'
        if item.get("requires-python"):
            attrs += f' data-requires-python="{html.escape(item["requires-python"])}"'
        if item.get("yanked"):
            attrs += f' data-yanked="{html.escape(str(item["yanked"]))}"'
        links.append(f"<a{attrs}>{html.escape(item['filename'])}</a><br/>")
    return ("<!DOCTYPE html><html><body>" + "\n".join(links) + "</body></html>").encode()


@pytest.fixture
def index():
    served = Index()
    yield served
    served.close()


def demo_wheel(folder: Path, filename: str) -> Path:
    """A valid wheel of demo 1.0 under `filename` (tags and build tag as the name says)."""
    (folder / "made").mkdir(exist_ok=True)
    made = make_wheel(folder / "made", "demo", "1.0", {"demo/__init__.py": filename.encode()})
    path = folder / filename
    made.rename(path)
    return path


def env_for(index: Index, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {**keep, "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": index.url, "PIP_TRUSTED_HOST": index.host, **extra}


def pip_choice(tmp: Path, env: dict, pins: dict[str, tuple[str, tuple]], args: list[str]) -> set[str]:
    """What the pinned pip downloads for `pins` ({name: (version, hashes)})."""
    dest = tmp / "pip-dest"
    dest.mkdir(parents=True, exist_ok=True)
    requirements = tmp / "requirements.txt"
    requirements.write_text(
        "".join(f"{n}=={v} " + " ".join(f"--hash={h}" for h in hs) + "\n" for n, (v, hs) in pins.items())
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--require-hashes",
            "--dest",
            str(dest),
            "--no-cache-dir",
            *args,
            "-r",
            str(requirements),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    chosen = {p.name for p in dest.iterdir()}
    for p in dest.iterdir():
        p.unlink()
    return chosen


def net_for(index: Index, **settings: str) -> netconfig.BuildNetwork:
    """The kit's network settings for `index` (as the settings file hands them over)."""
    return netconfig.BuildNetwork({"INDEX_URL": index.url, "TIMEOUT": "5", **settings})


def kit_choice(
    tmp: Path,
    network: netconfig.BuildNetwork,
    pins: dict[str, tuple[str, tuple]],
    target: Target,
    sources: list[dict] | None = None,
) -> fetchphase.Result:
    packages = [SimpleNamespace(name=n, version=f"=={v}", hashes=hs, index="") for n, (v, hs) in pins.items()]
    return fetchphase.fetch(
        packages, target, network, sources or [], tmp / "wheelhouse", lambda line: None, target_name="python3.11 x86_64"
    )


ODD_FILES = {
    # name: (extra JSON fields)
    "demo-1.0-py3-none-any.whl": {},
    "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": {},
    "demo-1.0-1-cp311-cp311-manylinux_2_17_x86_64.whl": {},  # build tag 1: above the same tags without
    "demo-1.0-cp311-abi3-manylinux_2_24_x86_64.whl": {},
    "demo-1.0-cp311-cp311-manylinux_2_24_x86_64.whl": {"yanked": "broken build"},
    "demo-1.0-cp311-cp311-manylinux_2_26_x86_64.whl": {"requires-python": ">=3.12"},
    "demo-1.0-cp311-cp311-manylinux_2_28_x86_64.whl": {},  # above glibc 2.26: never for python3.11
    "demo-1.0-cp312-cp312-manylinux_2_28_x86_64.whl": {},
    "demo-1.0-cp311-cp311-manylinux_2_26_aarch64.whl": {"requires-python": "not a specifier"},
    "demo-1.0-py2.py3-none-any.whl": {},  # ties with py3-none-any
}


@pytest.fixture
def odd_index(index, tmp_path):
    pins = {}
    for filename, extra in ODD_FILES.items():
        pins[filename] = index.add("demo", demo_wheel(tmp_path, filename), **extra)
    return index, pins


# Which of the lock's files are named, and what pip takes then (the kit must agree with pip, and pip
# with this expectation: each row exercises one rule).
CASES = [
    (list(ODD_FILES), "3.11", "x86_64", "demo-1.0-1-cp311-cp311-manylinux_2_17_x86_64.whl"),  # cp311 ABI before abi3
    (
        [
            "demo-1.0-cp311-abi3-manylinux_2_24_x86_64.whl",
            "demo-1.0-cp311-cp311-manylinux_2_24_x86_64.whl",
            "demo-1.0-cp311-cp311-manylinux_2_26_x86_64.whl",
            "demo-1.0-py3-none-any.whl",
        ],
        "3.11",
        "x86_64",
        "demo-1.0-cp311-abi3-manylinux_2_24_x86_64.whl",
    ),  # yanked and Requires-Python >=3.12 out
    (
        ["demo-1.0-cp311-cp311-manylinux_2_24_x86_64.whl", "demo-1.0-py3-none-any.whl"],
        "3.11",
        "x86_64",
        "demo-1.0-py3-none-any.whl",
    ),  # a yanked file ranks below any other
    (
        ["demo-1.0-cp311-cp311-manylinux_2_24_x86_64.whl"],
        "3.11",
        "x86_64",
        "demo-1.0-cp311-cp311-manylinux_2_24_x86_64.whl",
    ),  # but is taken when it is the only one
    (
        [
            "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "demo-1.0-1-cp311-cp311-manylinux_2_17_x86_64.whl",
        ],
        "3.11",
        "x86_64",
        "demo-1.0-1-cp311-cp311-manylinux_2_17_x86_64.whl",
    ),  # the build tag decides
    (
        ["demo-1.0-py3-none-any.whl", "demo-1.0-py2.py3-none-any.whl"],
        "3.11",
        "x86_64",
        "demo-1.0-py2.py3-none-any.whl",
    ),  # equal: the last listed, as pip's resolver takes it
    (
        ["demo-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", "demo-1.0-py3-none-any.whl"],
        "3.11",
        "x86_64",
        "demo-1.0-py3-none-any.whl",
    ),  # the glibc rule: 2_28 is not for a 2.26 runtime
    (list(ODD_FILES), "3.12", "x86_64", "demo-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"),
    # invalid Requires-Python: ignored
    (list(ODD_FILES), "3.11", "arm64", "demo-1.0-cp311-cp311-manylinux_2_26_aarch64.whl"),
]


@pytest.mark.parametrize("page", ["json", "html"])
@pytest.mark.parametrize("named, version, arch, expected", CASES)
def test_the_kit_takes_the_file_pip_takes(odd_index, tmp_path, named, version, arch, expected, page):
    index, pins = odd_index
    index.html = page == "html"
    hashes = tuple(pins[f] for f in named)
    args = target_args(version, arch)
    env = env_for(index)
    assert pip_choice(tmp_path, env, {"demo": ("1.0", hashes)}, args) == {expected}
    result = kit_choice(tmp_path, net_for(index), {"demo": ("1.0", hashes)}, runtime_target(version, arch))
    assert result.left == {} and result.failed == {}
    assert result.chosen["demo"].name == expected
    assert result.chosen["demo"].read_bytes() == index.files[expected]
    assert result.downloaded == 1
    again = kit_choice(tmp_path, net_for(index), {"demo": ("1.0", hashes)}, runtime_target(version, arch))
    assert (again.downloaded, again.reused) == (0, 1)  # a file already there with its hash is kept


DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "status, kind, body, reason",
    [
        (200, "text/plain", b"demo-1.0-py3-none-any.whl", "answered text/plain for its page, not an index page"),
        (200, "text/html; charset=no-such-codec", b"<html></html>", "page cannot be read as no-such-codec"),
        (200, JSON, b"{not json", "page is not a valid PEP 691 page (JSONDecodeError"),
        (200, JSON, DEEP_JSON, "page is JSON nested too deeply to read"),
        (
            200,
            "text/html",
            b"<html><![foo[ odd ]]><a href='x.whl'>x</a></html>",
            "page is HTML the parser cannot read (AssertionError",
        ),
        (410, "text/plain", b"gone", "answered HTTP 410 for its page"),
    ],
    ids=["not-a-page", "charset", "bad-json", "deep-json", "odd-html", "http-410"],
)
def test_a_page_pip_cannot_use_is_the_exact_reason_never_an_internal_error(index, tmp_path, status, kind, body, reason):
    wheel = index.add("demo", demo_wheel(tmp_path, "demo-1.0-py3-none-any.whl"))
    index.overrides["/simple/demo/"] = (status, kind, body)
    result = kit_choice(tmp_path, net_for(index), {"demo": ("1.0", (wheel,))}, runtime_target())
    assert result.left == {} and result.chosen == {}
    clause = result.failed["demo"].clause
    assert clause.startswith(f"demo: {index.host}") and reason in clause, clause


def test_an_sdist_is_left_to_pip_where_pip_can_build_it(index, tmp_path):
    wheel = index.add("demo", demo_wheel(tmp_path, "demo-1.0-py3-none-any.whl"))
    native = runtime_target(sources_allowed=True)
    sdist = tmp_path / "demo-1.0.tar.gz"
    sdist.write_bytes(b"not really an sdist")
    only = index.add("demo", sdist)
    assert (
        "source distribution" in kit_choice(tmp_path, net_for(index), {"demo": ("1.0", (only,))}, native).left["demo"]
    )
    both = kit_choice(tmp_path, net_for(index), {"demo": ("1.0", (only, wheel))}, native)
    assert both.chosen["demo"].name.endswith(".whl")


def test_a_listed_file_whose_bytes_differ_is_a_hash_mismatch(index, tmp_path):
    pin = index.add("demo", demo_wheel(tmp_path, "demo-1.0-py3-none-any.whl"))
    index.files["demo-1.0-py3-none-any.whl"] = b"PK\x03\x04 something else"  # the page says one thing, the file another
    result = kit_choice(tmp_path, net_for(index), {"demo": ("1.0", (pin,))}, runtime_target())
    error = fetchphase.error(result, "python3.11 x86_64", "")
    assert str(error).startswith("hash mismatch: the download of demo (demo-1.0-py3-none-any.whl) does not match")
    assert sorted(p.name for p in (tmp_path / "wheelhouse").iterdir()) == []  # nothing kept, no partial file


def test_a_connection_that_ends_short_is_left_to_pip(index, tmp_path):
    pin = index.add("demo", demo_wheel(tmp_path, "demo-1.0-py3-none-any.whl"))
    pins = {"demo": ("1.0", (pin,))}
    index.short.add("/files/demo-1.0-py3-none-any.whl")
    left = kit_choice(tmp_path, net_for(index), pins, runtime_target()).left
    assert "bytes short" in left["demo"]  # not a hash mismatch: pip tries again
    index.short = {"/simple/demo/"}
    assert "bytes short" in kit_choice(tmp_path, net_for(index), pins, runtime_target()).left["demo"]
    assert [p.name for p in (tmp_path / "wheelhouse").iterdir()] == []  # no partial file kept


def test_sizes_are_bounded(index, tmp_path, monkeypatch):
    pin = index.add("demo", demo_wheel(tmp_path, "demo-1.0-py3-none-any.whl"))
    monkeypatch.setattr(wheelfetch, "MAX_FILE", 100)
    result = kit_choice(tmp_path, net_for(index), {"demo": ("1.0", (pin,))}, runtime_target())
    assert "is larger than 0 MiB" in result.failed["demo"].clause
    monkeypatch.setattr(indexclient, "MAX_PAGE", 50)
    assert (
        "larger than" in kit_choice(tmp_path, net_for(index), {"demo": ("1.0", (pin,))}, runtime_target()).left["demo"]
    )


def test_names_that_leave_the_wheelhouse_are_never_candidates(index, tmp_path):
    wheel = demo_wheel(tmp_path, "demo-1.0-py3-none-any.whl")
    data = wheel.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    for name in ("..%2Fdemo-1.0-py3-none-any.whl", ".demo-1.0-py3-none-any.whl"):
        index.pages["demo"] = [{"filename": "x", "url": f"../../files/{name}", "hashes": {"sha256": digest}}]
        index.files[name] = data
        result = kit_choice(tmp_path, net_for(index), {"demo": ("1.0", ("sha256:" + digest,))}, runtime_target())
        assert result.chosen == {} and "demo==1.0: no such version" in result.failed["demo"].clause
    assert not (tmp_path / "demo-1.0-py3-none-any.whl.part").exists()
    assert [p.name for p in (tmp_path / "wheelhouse").iterdir()] == []


def test_credentials_go_to_the_index_host_only(index, tmp_path):
    other = Index()
    try:
        wheel = demo_wheel(tmp_path, "demo-1.0-py3-none-any.whl")
        pin = other.add("demo", wheel)
        # The index's page lists the file on another host (as PyPI's CDN): no credentials go there.
        index.pages["demo"] = [{**other.pages["demo"][0], "url": f"http://{other.host}/files/{wheel.name}"}]
        network = net_for(index, INDEX_URL=f"http://user:s%40cret@{index.host}/simple")
        result = kit_choice(tmp_path, network, {"demo": ("1.0", (pin,))}, runtime_target())
        assert result.chosen["demo"].read_bytes() == wheel.read_bytes()
        basic = "Basic dXNlcjpzQGNyZXQ="  # user:s@cret
        assert index.seen == [("/simple", basic), ("/simple/demo/", basic)]  # the probe, then the page
        assert other.seen == [(f"/files/{wheel.name}", None)]
    finally:
        other.close()


def test_html_and_fragment_details_as_pip_reads_them(index, tmp_path):
    """A PEP 503 page with a <base href>, a bare data-yanked (no value: pip reads it as absent) and an
    empty one (yanked); and a JSON page whose link fragment names another hash than its `hashes`
    (pip takes the fragment's). The kit and pip must agree on each."""
    args = target_args()
    best_bare = demo_wheel(tmp_path, "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl")
    better_empty = demo_wheel(tmp_path, "demo-1.0-cp311-cp311-manylinux_2_24_x86_64.whl")
    plain = demo_wheel(tmp_path, "demo-1.0-py3-none-any.whl")
    pins = tuple("sha256:" + hashlib.sha256(w.read_bytes()).hexdigest() for w in (best_bare, better_empty, plain))
    for wheel in (best_bare, better_empty, plain):
        index.files[wheel.name] = wheel.read_bytes()
    digest = {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in (best_bare, better_empty, plain)}
    page = (
        f'<html><head><base href="http://{index.host}/files/"></head><body>'
        f'<a href="{plain.name}#sha256={digest[plain.name]}">x</a>'
        f'<a href="{best_bare.name}#sha256={digest[best_bare.name]}" data-yanked>x</a>'
        f'<a href="{better_empty.name}#sha256={digest[better_empty.name]}" data-yanked="">x</a>'
        "</body></html>"
    )
    index.overrides["/simple/demo/"] = (200, "text/html", page.encode())
    expected = {best_bare.name}
    assert pip_choice(tmp_path, env_for(index), {"demo": ("1.0", pins)}, args) == expected
    assert (
        kit_choice(tmp_path, net_for(index), {"demo": ("1.0", pins)}, runtime_target()).chosen["demo"].name in expected
    )

    shutil.rmtree(tmp_path / "wheelhouse")
    del index.overrides["/simple/demo/"]
    index.pages["demo"] = [
        {"filename": plain.name, "url": f"../../files/{plain.name}", "hashes": {"sha256": digest[plain.name]}},
        {
            "filename": best_bare.name,
            "url": f"../../files/{best_bare.name}#sha256={'0' * 64}",
            "hashes": {"sha256": digest[best_bare.name]},
        },  # the fragment wins: not a lock hash
    ]
    expected = {plain.name}
    assert pip_choice(tmp_path, env_for(index), {"demo": ("1.0", pins)}, args) == expected
    assert (
        kit_choice(tmp_path, net_for(index), {"demo": ("1.0", pins)}, runtime_target()).chosen["demo"].name in expected
    )


def test_each_host_is_looked_up_once_per_run(index, tmp_path, monkeypatch):
    """Pages and files of many packages, from 8 threads: one name lookup (parallel lookups of the
    same name can stall for a resolver's whole timeout)."""
    pins = {}
    for n in range(6):
        name = f"pkg{n}"
        (tmp_path / name).mkdir()
        wheel = make_wheel(tmp_path / name, name, "1.0", {f"{name}/__init__.py": b""})
        pins[name] = ("1.0", (index.add(name, wheel),))
    lookups = []
    real = httpget.socket.getaddrinfo

    def counted(host, *args, **kwargs):
        lookups.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(httpget.socket, "getaddrinfo", counted)
    result = kit_choice(tmp_path, net_for(index), pins, runtime_target())
    assert sorted(result.chosen) == sorted(pins) and result.downloaded == 6
    assert lookups == ["127.0.0.1"]  # 13 connections (the probe, 6 pages, 6 files), one lookup
