"""Network settings inside the build (and in the local builder): which indexes each package comes
from, how pip and the kit reach them, and pip's environment for them.

The host reads them once (`network.py`: the kit's settings, pip's own configuration files and
variables, the lock's `${VAR}` values) and hands them over as files. With BuildKit they are secret
mounts under /run/secrets (never stored in a layer, never in `docker history`); on the legacy
builder the helper refuses credentials and the rest comes in through the build context under
/opt/lambda-kit/net. The local builder reads the same file format. The extra CA bundle is added to
pip's own trust (system store and certifi), never put in its place.

Each package's indexes are pipenv's (its install from a lock): a package whose lock entry names an
`index` comes from that source only; every other package from the lock's first source (all of them
in order with the Pipfile's `[pipenv] install_search_all_sources = true`), then EXTRA_INDEX_URLS.
INDEX_URL replaces the first source; pip's own index-url replaces a source that is the default
PyPI (a mirror). A name pinned to one source is never asked of another.

Standard library only: it runs with the base image's python before the kit's tools exist (the
tools layer, the smoke image), which get the kit's common/ and net/ folders.
Usage: python3 -m lambda_kit.net.netconfig COMMAND [ARG...]
    probes the default index, then runs COMMAND with PIP_* set.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from lambda_kit.common import contract
from lambda_kit.net import httpget, netprobe

PYPI = "https://pypi.org/simple"
# What pip reads from the environment about the network or the files it takes: the build's pip gets
# these from the settings only, so both builders (and the kit's own fetch) see the same.
PIP_ENV_DROPPED = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "NETRC",
)


@dataclass(frozen=True)
class Index:
    url: str  # as pip is given it: `${VAR}`s filled, credentials included
    label: str  # where it was set, for messages: INDEX_URL, the lock's source "private", ...
    fix: str  # what to change when it cannot be reached (names the variable holding a token)
    trusted: bool = False  # the lock's source has verify_ssl = false (pipenv: --trusted-host)

    @property
    def host(self) -> str:
        return httpget.place(self.url)


def _is_pypi(url: str) -> bool:
    path = url.split("://", 1)[-1].partition("/")[2].rstrip("/")
    return httpget.host_of(url) in ("pypi.org", "pypi.python.org") and path in ("simple", "")


def token_like(part: str) -> bool:
    """A URL path segment that looks like a secret (Gemfury-style https://host/TOKEN/user/):
    16 characters or more of letters and digits (and -_.~), both present."""
    return (
        len(part) >= 16
        and bool(re.fullmatch(r"[A-Za-z0-9_.~%-]+", part))
        and bool(re.search(r"[0-9]", part) and re.search(r"[A-Za-z]", part))
    )


def secret_parts(url: str) -> list[str]:
    """What of a URL is a credential: the password (or a lone user name: a token), the query, and
    path segments that look like tokens."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError:
        return [url.split("://", 1)[-1]]  # not a URL: all of it counts
    found = []
    if parts.password:
        found += [parts.password, urllib.parse.unquote(parts.password)]
    elif parts.username:
        found += [parts.username, urllib.parse.unquote(parts.username)]
    if parts.query:
        found.append(parts.query)
    found += [p for p in parts.path.split("/") if token_like(p)]
    return list(dict.fromkeys(found))


def redactor(secrets: list[str]):
    """A function that masks every secret in a line of output (longest first)."""
    ordered = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(text: str) -> str:
        for secret in ordered:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    return redact


class BuildNetwork:
    """The settings file (contract.settings_text), the extra CA bundle and the client certificate."""

    def __init__(self, settings: dict[str, str], extra_ca: Path | None = None, client_cert: Path | None = None) -> None:
        self.settings, self.extra_ca, self.client_cert = settings, extra_ca, client_cert
        self.variables = contract.settings_variables(settings)

    @classmethod
    def current(cls) -> BuildNetwork:
        """What the host handed into the build (secret mounts first, then the context's net/)."""
        found = {
            name: _first_existing(name)
            for name in (contract.PIP_SETTINGS_ID, contract.CA_BUNDLE_ID, contract.CLIENT_CERT_ID)
        }
        text = found[contract.PIP_SETTINGS_ID].read_text(encoding="utf-8") if found[contract.PIP_SETTINGS_ID] else ""
        return cls(contract.parse_settings(text), found[contract.CA_BUNDLE_ID], found[contract.CLIENT_CERT_ID])

    def sources(self, lock_sources: list[dict] | None) -> dict[str, Index]:
        """The lock's sources by name, in order, as they are reached (no lock: PyPI, or INDEX_URL)."""
        sources = [s for s in (lock_sources or []) if isinstance(s, dict) and s.get("url")]
        if not sources:
            sources = [{"name": "pypi", "url": PYPI, "verify_ssl": True}]
        out: dict[str, Index] = {}
        for n, source in enumerate(sources):
            name, written = str(source.get("name") or f"source {n + 1}"), str(source["url"])
            names = contract.referenced_names(written)
            fix = f"the lock's source {name!r}" + (f" (${{{names[-1]}}})" if names else "")
            index = Index(
                contract.expand(written, self.variables),
                f'the lock\'s source "{name}"',
                fix,
                source.get("verify_ssl") is False,
            )
            if n == 0 and self.settings.get(contract.INDEX_URL):
                index = Index(self.settings[contract.INDEX_URL], "INDEX_URL", "INDEX_URL")
            elif _is_pypi(index.url) and self.settings.get(contract.PIP_INDEX_URL):
                origin = self.settings.get(contract.PIP_INDEX_FROM, "pip's index-url")
                index = Index(self.settings[contract.PIP_INDEX_URL], f"pip's index-url ({origin})", origin)
            out[name] = index
        return out

    def secrets(self) -> list[str]:
        """Every credential in these settings, as it may appear in pip's output or a message."""
        s = self.settings
        urls = [
            s.get(contract.INDEX_URL, ""),
            s.get(contract.PIP_INDEX_URL, ""),
            s.get(contract.PROXY, ""),
            *s.get(contract.EXTRA_INDEX_URLS, "").split(),
            *(s.get(k, "") for k in contract.PROXY_VARIABLES),
        ]
        found = [p for u in urls if u for p in secret_parts(u)] + [v for v in self.variables.values() if v]
        found += [e.split(" ", 2)[2] for e in s.get(contract.NETRC, "").split("\x1f") if e.count(" ") >= 2]
        return found

    def extras(self) -> list[Index]:
        return [
            Index(u, "EXTRA_INDEX_URLS", "EXTRA_INDEX_URLS")
            for u in self.settings.get(contract.EXTRA_INDEX_URLS, "").split()
        ]

    def route(self, sources: dict[str, Index], index_name: str = "") -> list[Index]:
        """The indexes a package is looked up on, in pip's order (KeyError: no such source)."""
        if index_name:
            return [sources[index_name]]
        first = list(sources.values())
        chosen = first if self.settings.get(contract.SEARCH_ALL_SOURCES) == "1" else first[:1]
        return list({i.url: i for i in chosen + self.extras()}.values())

    def timeout(self) -> float:
        try:
            return max(1.0, float(self.settings.get(contract.TIMEOUT) or 15))
        except ValueError:
            return 15.0

    def http_settings(self) -> httpget.HttpSettings:
        """How the kit's own requests reach the indexes: as pip would with the same settings."""
        s = self.settings
        proxies = {k: s[f"{k.upper()}_PROXY"] for k in ("http", "https", "all", "no") if s.get(f"{k.upper()}_PROXY")}
        netrc = {}
        for entry in s.get(contract.NETRC, "").split("\x1f"):
            host, _, rest = entry.partition(" ")
            if host:
                login, _, password = rest.partition(" ")
                netrc[host] = (login, password)
        return httpget.HttpSettings(
            timeout=self.timeout(),
            cafiles=[str(self.extra_ca)] if self.extra_ca else [],
            client_cert=str(self.client_cert) if self.client_cert else None,
            trusted=s.get(contract.TRUSTED_HOSTS, "").split(),
            proxy=s.get(contract.PROXY) if contract.PROXY in s else None,
            env_proxies=proxies,
            netrc=netrc,
        )

    def unsupported(self) -> str | None:
        """Why the kit cannot reach the indexes as pip would (pip then does it all), or None."""
        s = self.settings
        for key in (contract.PROXY, *contract.PROXY_VARIABLES[:3]):
            scheme = s.get(key, "").partition("://")[0].lower() if "://" in s.get(key, "") else "http"
            if scheme != "http":
                return f"the proxy ({key}) is {scheme}://, and the kit speaks to http:// proxies only"
        return None

    def trusted_hosts(self, indexes: list[Index]) -> list[str]:
        hosts = self.settings.get(contract.TRUSTED_HOSTS, "").split()
        return list(dict.fromkeys(hosts + [i.host for i in indexes if i.trusted]))

    def pip_environment(
        self, indexes: list[Index], base: dict[str, str] | None = None
    ) -> tuple[dict[str, str], list[Path]]:
        """The whole environment pip runs with for `indexes`: `base` (default os.environ) without
        its own PIP_*, CA and proxy variables, plus the settings. The second item lists temporary
        files to remove when pip is done."""
        env = {
            k: v
            for k, v in (os.environ if base is None else base).items()
            if not k.startswith("PIP_") and k not in PIP_ENV_DROPPED
        }
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
        if indexes:
            env["PIP_INDEX_URL"] = indexes[0].url
        if indexes[1:]:
            env["PIP_EXTRA_INDEX_URL"] = " ".join(i.url for i in indexes[1:])
        s = self.settings
        for key, variable in (
            (contract.TIMEOUT, "PIP_TIMEOUT"),
            (contract.RETRIES, "PIP_RETRIES"),
            (contract.FIND_LINKS, "PIP_FIND_LINKS"),
        ):
            if s.get(key):
                env[variable] = s[key]
        if trusted := self.trusted_hosts(indexes):
            env["PIP_TRUSTED_HOST"] = " ".join(trusted)
        if contract.PROXY in s:
            env["PIP_PROXY"] = s[contract.PROXY]
        for name in ("http", "https", "all", "no"):
            if s.get(f"{name.upper()}_PROXY"):
                env[f"{name}_proxy"] = s[f"{name.upper()}_PROXY"]
        if self.client_cert:
            env["PIP_CLIENT_CERT"] = str(self.client_cert)
        cleanup: list[Path] = []
        if self.settings.get(contract.NETRC):  # the host's ~/.netrc logins for the indexes, for pip alone
            fd, name = tempfile.mkstemp(prefix="lambda-kit-netrc-")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                for host, (login, password) in self.http_settings().netrc.items():
                    out.write(f"machine {host} login {login} password {password}\n")
            env["NETRC"] = name
            cleanup.append(Path(name))
        if self.extra_ca:
            fd, combined = tempfile.mkstemp(prefix="lambda-kit-ca-", suffix=".pem")
            with os.fdopen(fd, "wb") as out:
                default = _default_bundle()
                if default:
                    out.write(Path(default).read_bytes().rstrip(b"\n") + b"\n")
                out.write(Path(self.extra_ca).read_bytes())
            env["PIP_CERT"] = combined
            cleanup.append(Path(combined))
        return env, cleanup


def _first_existing(name: str) -> Path | None:
    for folder in (Path(contract.SECRETS), Path(contract.NET)):
        path = folder / name
        if path.is_file() and path.stat().st_size > 0:
            return path
    return None


def _default_bundle() -> str | None:
    try:
        from pip._vendor import certifi  # the bundle pip would otherwise use
    except ImportError:
        return None
    return certifi.where()


def run_with_network(argv: list[str]) -> int:
    """The tools layer and the smoke image: their pins come from the default index (INDEX_URL, pip's
    index-url, else PyPI) and EXTRA_INDEX_URLS; each host is probed first (one line when it fails)."""
    network = BuildNetwork.current()
    indexes = network.route(network.sources(None))
    failure = (
        None
        if network.unsupported()
        else netprobe.first_failure(network.http_settings(), [netprobe.Target(i, ()) for i in indexes])
    )
    if failure:
        print("\n".join(contract.error_lines(*failure)), file=sys.stderr, flush=True)
        return 1
    env, cleanup = network.pip_environment(indexes)
    try:
        return subprocess.call(argv, env=env)
    finally:
        for path in cleanup:
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(run_with_network(sys.argv[1:]))
