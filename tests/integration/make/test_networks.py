"""Issue 24: indexes and networks as users have them, through `make package` with both builders.

A fault-injecting index and proxy on 127.0.0.1 (faultnet.py): an unknown host, a refused port, TLS
with an untrusted CA, 401, 500, a drip-feed, a redirect to an untrusted https host, JSON nested too
deeply, HTML the parser asserts on, a page listing a wheel the lock does not. Each build fails with
its exact error line, in bounded time, with no traceback and the previous zip intact. Docker builds
reach the servers through the host's network (the kit uses it for an index on 127.0.0.1). The
machine's own pip configuration is shut out (PIP_CONFIG_FILE=/dev/null, no PIP_* variables), so
only what each test sets counts."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from faultnet import Certs, FaultIndex, Proxy, closed_port, project
from helpers import (
    BASE_IMAGE,
    ROOT,
    buildkit_env,
    copy_kit,
    kit_containers,
    kit_env,
    make,
    make_wheel,
    record_as_kit_output,
)
from lambda_kit.net.netconfig import PIP_ENV_DROPPED

BUILDERS = ["local", pytest.param("docker", marks=pytest.mark.docker)]
# The fault tests plant a token in the lock's source (as userinfo, through ${FAULT_TOKEN}) where the
# builder can carry one: the local builder and BuildKit (the legacy builder refuses it, below).
FAULT_BUILDERS = [
    "local",
    pytest.param("docker", marks=pytest.mark.docker),
    pytest.param("buildkit", marks=pytest.mark.docker),
]
DEAD_INDEX_BOUND = 30.0  # seconds: a dead index, whatever the lock's size (issue 24)


def net_env(**extra: str) -> dict[str, str]:
    """The kit's environment without this machine's pip settings (its files and PIP_* variables);
    CA_BUNDLE keeps the machine's bundle, through which the build image's tools reach PyPI."""
    env = {k: v for k, v in kit_env().items() if not k.startswith("PIP_") and k not in PIP_ENV_DROPPED}
    env.update(PIP_CONFIG_FILE=os.devnull, CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt", PIP_TIMEOUT="5")
    env.update(extra)
    return env


def build(
    folder: Path, builder: str, env: dict[str, str], timeout: float = 600
) -> tuple[subprocess.CompletedProcess, float]:
    if builder == "buildkit":
        extra = buildkit_env()
        if extra is None:
            pytest.skip("this docker client has no BuildKit")
        env = {**env, **extra}
    started = time.monotonic()
    result = make(folder, "package", f"BUILDER={'local' if builder == 'local' else 'docker'}", env=env, timeout=timeout)
    return result, time.monotonic() - started


def with_token(url: str, builder: str, env: dict[str, str]) -> str:
    """`url` with the planted token as its userinfo, through the lock's ${FAULT_TOKEN}, where the
    builder carries credentials; `env` gets the token."""
    if builder == "docker":  # the legacy builder (this engine's default): no credentials at all
        return url
    env["FAULT_TOKEN"] = TOKEN
    scheme, rest = url.split("://", 1)
    return f"{scheme}://build:${{FAULT_TOKEN}}@{rest}"


def demo_project(folder: Path, index_url: str, hashes: list[str], verify_ssl: bool = True) -> Path:
    entry = {"hashes": sorted(hashes), "index": "faulty", "version": "==1.0"}
    sources = [{"name": "faulty", "url": index_url, "verify_ssl": verify_ssl}]
    made = project(folder, sources, {"demo": entry}, ["demo"])
    (made / "build.zip").write_bytes(b"the previous zip")
    record_as_kit_output(made, made / "build.zip")
    return made


def demo_wheel(folder: Path, tag: str = "py3-none-any") -> Path:
    (folder / "made").mkdir(parents=True, exist_ok=True)
    return make_wheel(folder / "made", "demo", "1.0", {"demo/__init__.py": b"VALUE = 1\n"}, tag=tag)


def logs(folder: Path, result: subprocess.CompletedProcess) -> str:
    log = folder / ".lambda-kit" / "build.log"
    return result.stdout + result.stderr + (log.read_text(errors="replace") if log.exists() else "")


def assert_failed_cleanly(folder: Path, result, seconds: float, expected: str, bound: float = DEAD_INDEX_BOUND) -> None:
    """The exact error line (a regex, matched whole), in time, no traceback, the old zip kept."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("lambda-kit: error: ")]
    assert result.returncode != 0, result.stdout
    assert errors and re.fullmatch(expected, errors[0].removeprefix("lambda-kit: error: ")), result.stderr
    assert seconds < bound, f"{seconds:.1f} s"
    assert "Traceback" not in logs(folder, result) and "internal error" not in result.stderr
    assert (folder / "build.zip").read_bytes() == b"the previous zip"
    assert kit_containers(folder) == []


@pytest.fixture
def served(tmp_path):
    made = []

    def serve(**kwargs) -> FaultIndex:
        made.append(FaultIndex(**kwargs))
        return made[-1]

    yield serve
    for index in made:
        index.close()


def where(index_host: str) -> str:
    return re.escape(f'{index_host} (the lock\'s source "faulty", needed by demo)')


@pytest.mark.parametrize("builder", FAULT_BUILDERS)
@pytest.mark.parametrize("fault", ["unknown-host", "refused", "untrusted-tls", "401", "500"])
def test_an_index_that_cannot_be_used_is_one_line_before_any_package(tmp_path, served, builder, fault):
    wheel = demo_wheel(tmp_path)
    index = served(certs=Certs(tmp_path / "certs") if fault == "untrusted-tls" else None)
    pin = index.add("demo", wheel)
    url, host = index.url, index.host
    if fault == "unknown-host":
        url, host = "https://nohost.invalid/simple", "nohost.invalid"
    elif fault == "refused":
        port = closed_port()
        url, host = f"http://127.0.0.1:{port}/simple", f"127.0.0.1:{port}"
    elif fault == "401":
        index.auth = "Basic dXNlcjpyaWdodA=="  # user:right, which the build does not have
    elif fault == "500":
        index.faults["*"] = ("status", 500)
    env = net_env()
    folder = demo_project(tmp_path / "project", with_token(url, builder, env), [pin])
    result, seconds = build(folder, builder, env)
    assert TOKEN not in logs(folder, result)
    expected = {
        "unknown-host": where(host)
        + (
            r": the name does not resolve \((Name or service not known|Temporary failure in name resolution"
            r"|No address associated with hostname)\)"
        ),
        "refused": where(host) + ": connection refused",
        "untrusted-tls": where(host) + r": TLS verification failed \(unable to get local issuer certificate\)",
        "401": where(host) + r": credentials refused \(HTTP 401\)",
        "500": where(host) + r": server error \(HTTP 500\)",
    }[fault]
    assert_failed_cleanly(folder, result, seconds, "package index " + expected)
    assert index.asked() == []  # not one package asked: the probe came first
    hint = next(line for line in result.stderr.splitlines() if line.startswith("hint: "))
    assert {
        "unknown-host": "check the host name in the lock's source 'faulty'",
        "refused": "check the address and port",
        "untrusted-tls": "set CA_BUNDLE to the CA bundle (PEM)",
        "401": "check the credentials in the lock's source",
        "500": "the index is failing",
    }[fault] in hint


@pytest.mark.parametrize("builder", FAULT_BUILDERS)
@pytest.mark.parametrize("fault", ["drip", "redirect-untrusted", "deep-json", "odd-html", "newer-wheel"])
def test_a_misbehaving_page_or_file_is_its_exact_reason(tmp_path, served, builder, fault):
    index = served()
    pin = index.add("demo", demo_wheel(tmp_path))
    verify_ssl, env = True, net_env()
    if fault == "drip":
        index.faults["/simple/demo/"] = ("drip", 0.5)
        env = net_env(PIP_TIMEOUT="2")
        expected = (
            "package index " + where(index.host) + r": the answer is too slow \(a drip-feed\) \(\d+ bytes in \d s\)"
        )
    elif fault == "redirect-untrusted":
        other = served(certs=Certs(tmp_path / "certs"))
        index.faults["/files/demo-1.0-py3-none-any.whl"] = ("redirect", f"https://localhost:{other.port}/files/x.whl")
        verify_ssl = False  # a trusted http index: its redirect to an https host must still be verified
        expected = re.escape(f"file host localhost:{other.port} (files of {index.host}, needed by demo)") + (
            r": TLS verification failed \(unable to get local issuer certificate\)"
        )
    elif fault in ("deep-json", "odd-html"):
        body = (b"[" * 100_000 + b"]" * 100_000) if fault == "deep-json" else b"<html><![foo[ x ]]></html>"
        index.faults["/simple/demo/"] = (
            "body",
            "application/vnd.pypi.simple.v1+json" if fault == "deep-json" else "text/html",
            body,
        )
        reason = (
            "page is JSON nested too deeply to read"
            if fault == "deep-json"
            else "page is HTML the parser cannot read (AssertionError: unknown status keyword 'foo' in marked section)"
        )
        expected = re.escape(f"cannot install 1 locked package(s) for python3.11 x86_64: demo: {index.host}'s {reason}")
    else:  # the lock lists a cp310 wheel; the page has a wheel for python3.11 too, published after the lock
        index.pages.clear()
        pin = index.add("demo", demo_wheel(tmp_path / "old", "cp310-cp310-manylinux_2_17_x86_64"))
        index.add("demo", demo_wheel(tmp_path))
        expected = re.escape(
            "cannot install 1 locked package(s) for python3.11 x86_64: demo==1.0: a wheel for "
            "python3.11 x86_64 that the lock does not list exists (demo-1.0-py3-none-any.whl, published after the lock)"
        )
    folder = demo_project(tmp_path / "project", with_token(index.url, builder, env), [pin], verify_ssl=verify_ssl)
    result, seconds = build(folder, builder, env)
    assert_failed_cleanly(folder, result, seconds, expected)
    assert TOKEN not in logs(folder, result)
    if fault == "newer-wheel":
        assert "run `pipenv lock`" in result.stderr


def two_source_project(folder: Path, tmp: Path, public: FaultIndex, private_url: str, private: FaultIndex) -> Path:
    """68 packages from the public source and 2 pinned to the private one (as a 2026 lock with a
    CodeArtifact source): pipenv installs each from its own source only."""
    default = {}
    for n in range(68):
        name = f"pkg{n:02d}"
        (tmp / name).mkdir()
        wheel = make_wheel(tmp / name, name, "1.0", {f"{name}/__init__.py": b""})
        default[name] = {"hashes": [public.add(name, wheel)], "index": "public", "version": "==1.0"}
    for name in ("corp-lib", "corp-utils"):
        (tmp / name).mkdir()
        wheel = make_wheel(tmp / name, name.replace("-", "_"), "1.0", {f"{name.replace('-', '_')}/__init__.py": b""})
        default[name] = {"hashes": [private.add(name, wheel)], "index": "private", "version": "==1.0"}
    sources = [
        {"name": "public", "url": public.url, "verify_ssl": True},
        {"name": "private", "url": private_url, "verify_ssl": True},
    ]
    made = project(folder, sources, default, ["pkg00", "corp-lib"])
    (made / "build.zip").write_bytes(b"the previous zip")
    record_as_kit_output(made, made / "build.zip")
    return made


@pytest.mark.parametrize("builder", BUILDERS)
def test_a_two_source_lock_with_its_private_source_down_fails_at_once_asking_nothing(tmp_path, served, builder):
    """The private index accepts connections and never answers (the worst case: a timeout, here
    pip's default 15 s); before, pip retried it 5 times per package and was still at 0 of 70 after
    900 s. Now: one timeout, one line naming it and what is pinned to it, nothing fetched anywhere."""
    public, private = served(), served()
    stall = Proxy(fault="stall")  # listens, reads the request, never answers
    try:
        folder = two_source_project(
            tmp_path / "project", tmp_path, public, f"http://127.0.0.1:{stall.port}/simple", private
        )
        env = {k: v for k, v in net_env().items() if k != "PIP_TIMEOUT"}  # pip's default: 15 s
        result, seconds = build(folder, builder, env)
    finally:
        stall.close()
    expected = re.escape(
        f'package index 127.0.0.1:{stall.port} (the lock\'s source "private", needed by corp-lib, corp-utils)'
        ": no answer within the timeout (15 s)"
    )
    assert_failed_cleanly(folder, result, seconds, expected)
    assert public.asked() == [] and private.asked() == []
    print(f"dead private index, 70-package lock, BUILDER={builder}: error after {seconds:.1f} s")


@pytest.mark.parametrize("builder", BUILDERS)
def test_a_two_source_lock_builds_each_package_from_its_own_source(tmp_path, served, builder):
    public, private = served(), served()
    folder = two_source_project(tmp_path / "project", tmp_path, public, private.url, private)
    result, _ = build(folder, builder, net_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(private.asked()) == ["corp-lib", "corp-utils"]  # its own packages, nothing else
    assert "corp-lib" not in public.asked() and "corp-utils" not in public.asked()  # no private name asked in public
    assert len(public.asked()) == 68


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_an_interrupt_stops_a_drip_fed_download_within_a_second(tmp_path, served, builder, sig):
    """The index drip-feeds the package's page (a byte every 0.2 s, never slow enough for the
    timeout); Ctrl-C (SIGINT to the process group) or SIGTERM to make stops the build within 1 s,
    and the index sees its connection closed."""
    index = served()
    pin = index.add("demo", demo_wheel(tmp_path))
    index.faults["/simple/demo/"] = ("drip", 0.2)
    folder = demo_project(tmp_path / "project", index.url, [pin])
    proc = subprocess.Popen(
        [
            "make",
            "--no-print-directory",
            "PYTHON_VERSION=3.11",
            f"BASE_IMAGE={BASE_IMAGE}",
            "package",
            f"BUILDER={builder}",
        ],
        cwd=folder,
        env=net_env(PIP_TIMEOUT="120"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while ("/simple/demo/", None) not in index.seen and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[0]
    time.sleep(1.0)  # well into the drip-feed
    sent = time.monotonic()
    if sig == "SIGINT":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0]
    stopped = time.monotonic() - sent
    assert proc.returncode != 0 and f"interrupted ({sig}); the previous zip is untouched" in output, output
    assert stopped < 1.0, f"{stopped:.2f} s"
    assert "Traceback" not in output and (folder / "build.zip").read_bytes() == b"the previous zip"
    for _ in range(100):  # the download itself has stopped: the index saw its connection closed
        if ("/simple/demo/", "closed by the client") in index.seen:
            break
        time.sleep(0.05)
    assert ("/simple/demo/", "closed by the client") in index.seen
    assert kit_containers(folder) == []
    print(f"interrupt ({sig}) during a drip-feed, BUILDER={builder}: exit after {stopped:.2f} s")


TOKEN = "pl4nted7Tok3nLambdaKit9x"  # a credential of every shape below; it must show nowhere


def token_everywhere(folder: Path, result, env: dict[str, str]) -> list[str]:
    """Where the planted token shows: the logs, the build context as the kit stages it for these
    settings, and (for a Docker build) every layer of the checkout's images (`docker save`)."""
    from lambda_kit.builders import context
    from lambda_kit.lock import lockfile
    from lambda_kit.plan import network
    from lambda_kit.plan.buildplan import checkout_id

    found = ["the logs"] if TOKEN in logs(folder, result) else []
    lock = lockfile.load_pipfile_lock(folder / "Pipfile.lock")
    settings = network.for_lock(network.from_environment(env), lock, folder / "Pipfile", env)
    for buildkit in (True, False):
        staged = folder.parent / f"context-{buildkit}"
        context.stage_build(
            staged, kit_dir=folder, pipfile=folder / "Pipfile", lock=lock, buildkit=buildkit, network=settings
        )
        if buildkit and any(TOKEN.encode() in p.read_bytes() for p in staged.rglob("*") if p.is_file()):
            found.append("the BuildKit context")
    label = f"org.lambda-kit.checkout={checkout_id(folder)}"
    images = subprocess.run(
        ["docker", "images", "-aq", "--filter", f"label={label}"], capture_output=True, text=True
    ).stdout.split()
    for image in sorted(set(images)):
        saved = subprocess.run(["docker", "save", image], capture_output=True, check=True).stdout
        if TOKEN.encode() in saved:
            found.append(f"image {image}")
    return found


def credential_shapes(tmp_path: Path, served, shape: str) -> tuple[Path, dict[str, str]]:
    """A project whose index needs the token, given in one shape: userinfo through the lock's
    ${VAR}, a path segment of INDEX_URL, or a ~/.netrc login."""
    index = served(auth=None)
    pin = index.add("demo", demo_wheel(tmp_path))
    env = net_env()
    url = index.url
    if shape == "userinfo":
        index.auth = "Basic " + base64.b64encode(f"build:{TOKEN}".encode()).decode()
        url = f"http://build:${{FAULT_TOKEN}}@{index.host}/simple"
        env["FAULT_TOKEN"] = TOKEN
    elif shape == "path":
        index.prefix = f"/{TOKEN}"
        env["INDEX_URL"] = f"http://{index.host}/{TOKEN}/simple"
    else:
        index.auth = "Basic " + base64.b64encode(f"build:{TOKEN}".encode()).decode()
        (tmp_path / "netrc").write_text(f"machine 127.0.0.1 login build password {TOKEN}\n")
        env["NETRC"] = str(tmp_path / "netrc")
    return demo_project(tmp_path / "project", url, [pin]), env


@pytest.mark.parametrize("shape", ["userinfo", "path", "netrc", "path, pip"])
@pytest.mark.parametrize("builder", ["local", pytest.param("buildkit", marks=pytest.mark.docker)])
def test_a_credential_of_any_shape_reaches_the_index_and_nothing_else(tmp_path, served, builder, shape):
    """ "path, pip": pip downloads (LAMBDA_KIT_FETCH=pip) and prints the index's address, which the
    build log must show masked."""
    folder, env = credential_shapes(tmp_path, served, shape.split(",")[0])
    if shape.endswith("pip"):
        env["LAMBDA_KIT_FETCH"] = "pip"
    if builder == "buildkit":
        extra = buildkit_env()
        if extra is None:
            pytest.skip("this docker client has no BuildKit")
        env.update(extra)
    result, _ = build(folder, "local" if builder == "local" else "docker", env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert token_everywhere(folder, result, env) == []
    if shape.endswith("pip"):
        assert (
            f"Looking in indexes: http://127.0.0.1:{env['INDEX_URL'].split(':')[2].split('/')[0]}/***/simple"
            in logs(folder, result)
        )


@pytest.mark.docker
@pytest.mark.parametrize("shape", ["userinfo", "path", "netrc", "query"])
def test_the_legacy_builder_refuses_a_credential_of_any_shape(tmp_path, served, shape):
    folder, env = credential_shapes(tmp_path, served, "path" if shape == "query" else shape)
    if shape == "query":
        env["INDEX_URL"] = env["INDEX_URL"].replace(f"/{TOKEN}/simple", f"/simple?token={TOKEN}")
    result, seconds = build(folder, "docker", {**env, "DOCKER_BUILDKIT": "0"})
    what = {
        "userinfo": "the lock's sources' ${FAULT_TOKEN}",
        "path": "a credential in INDEX_URL",
        "netrc": "~/.netrc logins for the indexes",
        "query": "a credential in INDEX_URL",
    }[shape]
    expected = re.escape(f"index credentials would be stored in the image's layers by the legacy builder ({what})")
    assert_failed_cleanly(folder, result, seconds, expected)
    assert token_everywhere(folder, result, env) == []


SIX = {
    "hashes": [
        "sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274",
        "sha256:ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81",
    ],
    "index": "pypi",
    "version": "==1.17.0",
}
TRUST_CASES = [
    "ca-bundle",
    "requests-ca-bundle",
    "pip-conf-cert",
    "client-cert",
    "https-proxy",
    "all-proxy",
    "pip-conf-proxy",
    "no-proxy-cidr",
]


def trust_project(tmp_path: Path, served, case: str):
    """six from PyPI and demo pinned to an https index whose certificate only the test CA signs
    (asking for a client certificate in "client-cert"), with the settings of `case`. Returns the
    project, its environment, the index and the proxy (or None)."""
    certs = Certs(tmp_path / "certs")
    index = served(certs=certs, client_certs=case == "client-cert")
    pin = index.add("demo", demo_wheel(tmp_path))
    sources = [
        {"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": True},
        {"name": "faulty", "url": index.url, "verify_ssl": True},
    ]
    default = {"demo": {"hashes": [pin], "index": "faulty", "version": "==1.0"}, "six": SIX}
    folder = project(tmp_path / "project", sources, default, ["demo", "six"])
    (folder / "build.zip").write_bytes(b"the previous zip")
    record_as_kit_output(folder, folder / "build.zip")
    # Only the test CA is given: PyPI must still verify against the system store and certifi.
    env = {k: v for k, v in net_env().items() if k != "CA_BUNDLE"}
    proxy = Proxy() if "proxy" in case else None
    config = tmp_path / "pip.conf"
    if case == "ca-bundle":
        env["CA_BUNDLE"] = str(certs.ca)
    elif case == "requests-ca-bundle":
        env["REQUESTS_CA_BUNDLE"] = str(certs.ca)
    elif case == "pip-conf-cert":
        config.write_text(f"[global]\ncert = {certs.ca}\ntimeout = 7\n")
    elif case == "client-cert":
        config.write_text(f"[global]\ncert = {certs.ca}\nclient-cert = {certs.client}\n")
    elif case in ("https-proxy", "all-proxy"):
        env["CA_BUNDLE"] = str(certs.ca)
        env["HTTPS_PROXY" if case == "https-proxy" else "all_proxy"] = proxy.url
        env["NO_PROXY"] = "pypi.org,.pythonhosted.org"  # PyPI directly (suffix rules)
    elif case == "pip-conf-proxy":
        config.write_text(f"[global]\ncert = {certs.ca}\nproxy = {proxy.url}\n")  # every request through it
    elif case == "no-proxy-cidr":
        env.update(CA_BUNDLE=str(certs.ca), HTTPS_PROXY=proxy.url, NO_PROXY="pypi.org,.pythonhosted.org,127.0.0.0/8")
    if config.exists():
        env["PIP_CONFIG_FILE"] = str(config)
    return folder, env, index, proxy


@pytest.mark.network
@pytest.mark.parametrize("case", TRUST_CASES)
def test_tls_and_proxies_as_pip_has_them(tmp_path, served, case):
    """Extra CA bundles are added to the system store and certifi (never in their place), from
    CA_BUNDLE, REQUESTS_CA_BUNDLE or pip's configuration file; a client certificate from pip's
    configuration; HTTPS_PROXY, ALL_PROXY, pip's proxy setting and NO_PROXY with a CIDR range."""
    folder, env, index, proxy = trust_project(tmp_path, served, case)
    try:
        result, _ = build(folder, "local", env)
    finally:
        if proxy:
            proxy.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert index.asked() == ["demo"]
    tunnels = [t for method, t, *_ in (proxy.seen if proxy else []) if method == "CONNECT"]
    if case in ("https-proxy", "all-proxy"):
        assert tunnels and set(tunnels) == {index.host}  # PyPI went directly (NO_PROXY's suffixes)
    elif case == "pip-conf-proxy":
        assert index.host in tunnels and "pypi.org:443" in tunnels  # pip's proxy: everything through it
    elif case == "no-proxy-cidr":
        assert proxy.seen == []  # 127.0.0.0/8 is in NO_PROXY: the index's traffic never met the proxy


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("case", ["proxy-407", "proxy-stalled", "no-client-cert"])
def test_a_proxy_or_certificate_that_fails_is_one_line(tmp_path, served, builder, case):
    folder, env, index, proxy = trust_project(
        tmp_path, served, "client-cert" if case == "no-client-cert" else "https-proxy"
    )
    if proxy:
        proxy.fault = case.split("-")[1].replace("stalled", "stall")
    else:
        env.update(PIP_CONFIG_FILE=os.devnull)  # no client-cert
    # The test CA beside this machine's bundle (the image's own store lacks the CA PyPI's proxy needs here).
    env.update(CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt", REQUESTS_CA_BUNDLE=str(tmp_path / "certs" / "ca.pem"))
    try:
        result, seconds = build(folder, builder, env)
    finally:
        if proxy:
            proxy.close()
    expected = (
        where(index.host).replace("demo", "demo")
        + {
            "proxy-407": re.escape(
                f": the proxy refused or did not answer (proxy 127.0.0.1:{proxy.port if proxy else 0}: "
                "407 Proxy Authentication Required)"
            ),
            "proxy-stalled": re.escape(
                f": the proxy refused or did not answer (proxy 127.0.0.1:{proxy.port if proxy else 0}: "
                "no answer within the timeout, 5 s)"
            ),
            "no-client-cert": (
                r": TLS verification failed \((the server asks for a client certificate"
                r"|the server ended the handshake: does it ask for a client certificate\?)\)"
            ),
        }[case]
    )
    assert_failed_cleanly(folder, result, seconds, "package index " + expected)
    assert index.asked() == []


@pytest.fixture
def small_file_system(tmp_path):
    """A 150 MB file system (tmpfs) for KIT_STATE; needs root to mount (CI runs as root)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=150m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and a 150 MB file system cannot be mounted: {done.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.network
def test_a_full_disk_is_one_line_naming_the_folder_and_what_the_build_needs(tmp_path, small_file_system):
    """KIT_STATE on a 150 MB file system and the pandas + boto3 lock (the bench's large set): the
    wheelhouse, the dependency cache and the zip do not fit. Before: `internal error: OSError ...
    No space left on device`, exit 70."""
    folder = tmp_path / "project"
    folder.mkdir()
    for name in ("Pipfile", "Pipfile.lock"):
        (folder / name).write_bytes((ROOT / "bench" / "projects" / "large" / "a" / name).read_bytes())
    copy_kit(folder)
    (folder / "lambdas").mkdir()
    (folder / "lambdas" / "app.py").write_text("def handler(event, context):\n    return 1\n")
    (folder / "build.zip").write_bytes(b"the previous zip")
    state = small_file_system / "state"
    from lambda_kit.common.digests import sha256_file
    from lambda_kit.outputs import OutputRecords

    OutputRecords(state).record((folder / "build.zip").resolve(), sha256_file(folder / "build.zip").hex())
    started = time.monotonic()
    result = make(folder, "package", "BUILDER=local", f"KIT_STATE={state}", env=net_env())
    seconds = time.monotonic() - started
    expected = (
        re.escape(f"no space left on the file system of {state} while building the zip (") + r"[\d,]+ MB free once "
        r"the step's temporary files were removed\); it needs about [\d,]+ MB"
    )
    assert_failed_cleanly(folder, result, seconds, expected, bound=300)
    assert list((state / "tmp").iterdir()) == []  # what the run half wrote is gone
    assert not list((state / "wheelhouse").glob(".fetch-*"))


@pytest.mark.parametrize("builder", BUILDERS)
def test_a_git_dependency_that_cannot_be_cloned_is_named_with_gits_first_error_line(tmp_path, builder):
    port = closed_port()
    entry = {"git": f"http://127.0.0.1:{port}/demo.git", "ref": "v1"}
    folder = project(
        tmp_path / "project", [{"name": "pypi", "url": "https://pypi.org/simple"}], {"demo": entry}, ["demo"]
    )
    (folder / "build.zip").write_bytes(b"the previous zip")
    record_as_kit_output(folder, folder / "build.zip")
    result, seconds = build(folder, builder, net_env())
    git = (
        rf"fatal: unable to access 'http://127\.0\.0\.1:{port}/demo\.git/': "
        rf"Failed to connect to 127\.0\.0\.1 port {port}"
        r"( after \d+ ms)?: (Couldn't connect to server|Connection refused)"
    )
    # The test image has no git.
    no_git = r"Error \[Errno 2\] No such file or directory: 'git' while executing command git version"
    expected = rf"cannot install the local/VCS dependency demo: ({git}|{no_git})"
    assert_failed_cleanly(folder, result, seconds, expected)


@pytest.mark.parametrize(
    "index_url, expected",
    [
        (
            "http://127.0.0.1:80x/simple",
            r"127\.0\.0\.1:\? \(INDEX_URL, needed by demo\): not a valid address "
            r"\(Port could not be cast to integer value as '80x'\)",
        ),
        ("http://[::1/simple", r"\? \(INDEX_URL, needed by demo\): not a valid address \(Invalid IPv6 URL\)"),
        (
            "127.0.0.1:8080/simple",
            r"127\.0\.0\.1:8080 \(INDEX_URL, needed by demo\): not a valid address "
            r"\(not an http:// or https:// address with a host\)",
        ),
    ],
    ids=["port", "ipv6", "no-scheme"],
)
def test_an_index_address_that_is_not_one_is_one_line(tmp_path, served, index_url, expected):
    index = served()
    folder = demo_project(tmp_path / "project", index.url, [index.add("demo", demo_wheel(tmp_path))])
    result, seconds = build(folder, "local", net_env(INDEX_URL=index_url))
    assert_failed_cleanly(folder, result, seconds, "package index " + expected)


def test_a_file_link_with_credentials_and_no_port_is_a_host_that_does_not_answer(tmp_path, served):
    """As pip: the link's credentials go with it to its host (port 80 here, where nothing listens)."""
    index = served()
    pin = index.add("demo", demo_wheel(tmp_path))
    index.pages["demo"][0]["url"] = "http://user:pw@127.0.0.1/files/demo-1.0-py3-none-any.whl"
    folder = demo_project(tmp_path / "project", index.url, [pin])
    result, seconds = build(folder, "local", net_env())
    expected = re.escape(f"file host 127.0.0.1:80 (files of {index.host}, needed by demo): connection refused")
    assert_failed_cleanly(folder, result, seconds, expected)


def test_an_index_that_stalls_after_the_probe_costs_one_timeout_not_one_per_package(tmp_path, served):
    """Its root answers, then every page stalls: the first timeouts mark the host dead, the other
    packages fail at once (before: (packages / 8) x the timeout, then pip's retries)."""
    index = served()
    default = {}
    for n in range(40):
        name = f"pkg{n:02d}"
        (tmp_path / name).mkdir()
        pin = index.add(name, make_wheel(tmp_path / name, name, "1.0", {f"{name}/__init__.py": b""}))
        default[name] = {"hashes": [pin], "index": "faulty", "version": "==1.0"}
        index.faults[f"/simple/{name}/"] = ("stall", 60)
    folder = project(tmp_path / "project", [{"name": "faulty", "url": index.url}], default, ["pkg00"])
    (folder / "build.zip").write_bytes(b"the previous zip")
    record_as_kit_output(folder, folder / "build.zip")
    result, seconds = build(folder, "local", net_env(PIP_TIMEOUT="3"))
    expected = (
        re.escape(f'package index {index.host} (the lock\'s source "faulty", needed by ')
        + r"(pkg\d\d, ){6}\d+ more\)"
        + re.escape(": no answer within the timeout (3 s)")
    )
    assert_failed_cleanly(folder, result, seconds, expected, bound=2 * 3 + 4)
    assert len(index.asked()) <= 8 + 1  # the first round of requests; none after the host was found dead


def test_a_proxy_the_kit_cannot_speak_to_leaves_every_download_to_pip_and_says_so(tmp_path, served):
    index = served()
    folder = demo_project(tmp_path / "project", index.url, [index.add("demo", demo_wheel(tmp_path))])
    result, _ = build(folder, "local", net_env(ALL_PROXY="socks5://127.0.0.1:1080", NO_PROXY="127.0.0.1"))
    assert result.returncode == 0, result.stdout + result.stderr  # pip bypasses it for 127.0.0.1, as NO_PROXY says
    log = logs(folder, result)
    assert (
        "the proxy (ALL_PROXY) is socks5://, and the kit speaks to http:// proxies only: pip downloads every file"
        in log
    )
    assert "Saved " in log and "lambda-kit: fetched " not in log
