"""The network settings as pip 26.3 (the pinned pip) reads and applies them, compared with pip's own
code: its configuration files and PIP_* variables (pipview against pip's option parser), the proxy
pip's requests would take for a URL (NO_PROXY with CIDR, ALL_PROXY, lower case first), the hosts
pip trusts, and when a redirect keeps credentials."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from lambda_kit.net import httpget
from lambda_kit.plan import pipview

PIP_OPTIONS = """
import json
from pip._internal.commands import create_command
options, _ = create_command("download").parse_args([])
print(json.dumps({"cert": options.cert, "client-cert": options.client_cert, "proxy": options.proxy,
                  "trusted-host": options.trusted_hosts, "timeout": options.timeout, "retries": options.retries,
                  "index-url": options.index_url, "find-links": options.find_links,
                  "extra-index-url": options.extra_index_urls, "no-proxy-env": options.no_proxy_env}))
"""


def pips_view(env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", PIP_OPTIONS], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def kits_view(env: dict[str, str], monkeypatch) -> dict:
    values = {k: v for k, (v, _) in pipview.settings(env).items()}
    return {
        "cert": values.get("cert"),
        "client-cert": values.get("client-cert"),
        "proxy": values.get("proxy"),
        "trusted-host": values.get("trusted-host", "").split(),
        "timeout": float(values.get("timeout", 15)),
        "retries": int(values.get("retries", 5)),
        "index-url": values.get("index-url", "https://pypi.org/simple"),
        "find-links": values.get("find-links", "").split(),
        "extra-index-url": values.get("extra-index-url", "").split(),
        "no-proxy-env": values.get("no-proxy-env", "").lower() not in pipview.FALSE,
    }


CONFIGS = {
    "global": (
        {"etc/xdg/pip/pip.conf": "[global]\ncert = /x/ca.pem\ntimeout = 7\ntrusted-host = a.example b.example:8443\n"},
        {},
    ),
    "command over global": (
        {"home/.config/pip/pip.conf": "[global]\nproxy = http://p:1\nretries = 2\n[download]\nproxy = http://q:2\n"},
        {},
    ),
    "variables over files": (
        {"home/.config/pip/pip.conf": "[global]\ntimeout = 7\nindex-url = https://m.example/simple\n"},
        {"PIP_DEFAULT_TIMEOUT": "9", "PIP_INDEX_URL": "https://n.example/simple"},
    ),
    "user over global, legacy first": (
        {
            "etc/xdg/pip/pip.conf": "[global]\ncert = /g.pem\nclient-cert = /c.pem\n",
            "home/.pip/pip.conf": "[global]\ncert = /legacy.pem\n",
            "home/.config/pip/pip.conf": "[global]\ncert = /user.pem\n",
        },
        {},
    ),
    "PIP_CONFIG_FILE skips the user's": (
        {
            "home/.config/pip/pip.conf": "[global]\ncert = /user.pem\n",
            "env.conf": "[global]\nfind-links = /w1 /w2\nextra-index-url = https://e.example/simple\n",
        },
        {"PIP_CONFIG_FILE": "{root}/env.conf"},
    ),
    "PIP_CONFIG_FILE=/dev/null reads none": (
        {"etc/xdg/pip/pip.conf": "[global]\ncert = /g.pem\n"},
        {"PIP_CONFIG_FILE": os.devnull, "PIP_TRUSTED_HOST": "t.example"},
    ),
    "two XDG dirs, aliases": (
        {"etc/xdg/pip/pip.conf": "[global]\ndefault-timeout = 3\n", "xdg2/pip/pip.conf": "[global]\ntimeout = 4\n"},
        {"XDG_CONFIG_DIRS": "{root}/etc/xdg:{root}/xdg2", "PIP_NO_PROXY_ENV": "yes"},
    ),
    "install section and variable names": (
        {"home/.config/pip/pip.conf": "[install]\ncert = /i.pem\n[global]\nproxy=\n"},
        {"PIP_CLIENT_CERT": "/env-client.pem", "PIP_RETRIES": "0"},
    ),
}


@pytest.mark.parametrize("case", list(CONFIGS))
def test_pips_configuration_is_read_as_pip_reads_it(tmp_path, case, monkeypatch):
    files, variables = CONFIGS[case]
    root = tmp_path
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "XDG_"))}
    env.update(HOME=str(root / "home"), XDG_CONFIG_DIRS=str(root / "etc" / "xdg"))
    env.update({k: v.format(root=root) for k, v in variables.items()})
    monkeypatch.setattr(os.path, "expanduser", lambda p: p.replace("~", env["HOME"], 1))
    expected = pips_view(env)
    if case == "install section and variable names":
        expected["cert"] = "/i.pem"  # the kit runs pip install too: [install] counts (pip download alone skips it)
    assert kits_view(env, monkeypatch) == expected


PROXY_ENVS = [
    {"HTTPS_PROXY": "http://up:1", "https_proxy": "http://low:2"},
    {"ALL_PROXY": "http://all:3"},
    {"HTTP_PROXY": "http://h:4", "NO_PROXY": "127.0.0.0/8, .example.com,bare.org:8443"},
    {"https_proxy": "http://p:5", "no_proxy": "*"},
    {"HTTPS_PROXY": "http://p:6", "https_proxy": "", "all_proxy": "http://a:7", "no_proxy": "10.0.0.0/8,localhost"},
]
URLS = [
    "https://127.0.0.1:8443/simple/",
    "http://127.0.0.9/x",
    "https://pypi.example.com/simple/",
    "https://example.com/",
    "https://bare.org:8443/a",
    "https://bare.org/a",
    "http://10.1.2.3/x",
    "http://localhost:3141/simple/",
    "https://files.pythonhosted.org/x.whl",
]


@pytest.mark.parametrize("variables", PROXY_ENVS, ids=range(len(PROXY_ENVS)))
def test_the_proxy_for_each_url_is_the_one_pips_requests_takes(variables, monkeypatch):
    from pip._vendor.requests.utils import get_environ_proxies, select_proxy

    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    client = httpget.Client(httpget.HttpSettings(env_proxies=pipview.environment_proxies(os.environ)))
    for url in URLS:
        parts = httpget.urllib.parse.urlsplit(url)
        expected = select_proxy(url, get_environ_proxies(url))
        assert client.proxy_for(parts.scheme, parts.hostname, parts.port) == expected, (variables, url)


def test_trusted_hosts_are_the_ones_pips_session_reads_without_verification():
    from pip._internal.network.session import PipSession

    trusted = ["a.example", "b.example:8443", "127.0.0.1:3141"]
    session = PipSession(trusted_hosts=trusted)
    client = httpget.Client(httpget.HttpSettings(trusted=trusted))
    for url in [
        "https://a.example/simple/",
        "https://a.example:9999/x",
        "https://b.example:8443/x",
        "https://b.example/x",
        "https://127.0.0.1:3141/simple/",
        "https://127.0.0.1:3142/",
        "https://c.example/",
        "http://c.example/simple/",
        "http://127.0.0.1:3142/simple/",
        "http://b.example:8443/",
    ]:
        parts = httpget.urllib.parse.urlsplit(url)
        if url.startswith("https:"):  # verified or not: the adapter pip's session picks
            assert client.trusted(parts.hostname, parts.port) == (
                session.get_adapter(url) is session._trusted_host_adapter
            ), url
        assert client.secure_origin(url) == session.is_secure_origin(url), url  # may an index page come from it


def test_a_redirect_keeps_credentials_where_requests_keeps_them():
    from pip._vendor.requests import Session

    session = Session()
    pairs = [
        ("https://h/a", "https://h/b"),
        ("https://h/a", "https://g/b"),
        ("http://h/a", "https://h/b"),
        ("https://h/a", "http://h/b"),
        ("https://h:8443/a", "https://h:9443/b"),
        ("https://h:443/a", "https://h/b"),
        ("http://h:8080/a", "https://h/b"),
    ]
    for old, new in pairs:
        assert httpget.same_origin(old, new) == (not session.should_strip_auth(old, new)), (old, new)


def test_a_machines_local_sources_and_other_settings_are_used_or_named(tmp_path):
    """This machine's own configuration has a find-links folder, file:// extra indexes and a
    constraint file: the local folder is read (as pip reads it first), the rest is named as not
    used (the lock decides what is installed and from where), and nothing fails."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    config = tmp_path / "pip.conf"
    config.write_text(
        f"[global]\nfind-links = {wheels} https://remote.example/links/\n"
        "extra-index-url = file:///opt/pypi/simple\nconstraint = /etc/constraints.txt\n"
        "disable-pip-version-check = 1\n"
    )
    view = pipview.read({"PIP_CONFIG_FILE": str(config), "HOME": str(tmp_path)})
    assert view.find_links == (str(wheels),)
    assert sorted(view.unused) == [
        f"constraint ({config})",
        f"extra-index-url ({config})",
        f"find-links https://remote.example/links/ ({config})",
    ]


def test_a_configuration_file_pip_cannot_read_is_one_line(tmp_path):
    config = tmp_path / "pip.conf"
    config.write_text("[global\ncert = x\n")
    with pytest.raises(pipview.UsageError, match="pip's configuration file cannot be read"):
        pipview.read({"PIP_CONFIG_FILE": str(config), "HOME": str(tmp_path)})


def test_proxy_settings_switch_the_environment_off_as_in_requests(tmp_path):
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nproxy = http://corp:3128\ncert = /pip.pem\n")
    environ = {
        "PIP_CONFIG_FILE": str(config),
        "HOME": str(tmp_path),
        "HTTPS_PROXY": "http://env:1",
        "REQUESTS_CA_BUNDLE": "/requests.pem",
    }
    view = pipview.read(environ)
    assert (view.proxy, view.env_proxies, view.cafiles) == ("http://corp:3128", {}, ("/pip.pem",))
    view = pipview.read({**environ, "PIP_CONFIG_FILE": os.devnull})
    assert (view.proxy, view.env_proxies, view.cafiles) == (None, {"https": "http://env:1"}, ("/requests.pem",))
