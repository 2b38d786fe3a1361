"""The network settings the host hands to the build, in the image or in the local builder: the kit's
own (INDEX_URL, EXTRA_INDEX_URLS, CA_BUNDLE), what pip itself would read on this machine
(`pipview`: its configuration files, PIP_* variables, proxies, CA variables, ~/.netrc), the values
of the `${VAR}`s the lock's sources use and the Pipfile's install_search_all_sources. They travel
as BuildKit secrets (`secret_files`), or as files under the build context's net/ for the legacy
builder, which must then carry no credential of any shape (`credential_shapes`); netconfig.py reads
them on the other side.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from lambda_kit.common import contract
from lambda_kit.common.errors import UsageError
from lambda_kit.lock.lockfile import Lock
from lambda_kit.net.netconfig import secret_parts
from lambda_kit.net.netrules import host_of
from lambda_kit.plan import pipview

HASHED_NAME = re.compile(r"^[0-9a-fA-F]{8}\.[0-9]+$")  # a CA folder's certificates (c_rehash links)


@dataclass(frozen=True)
class NetworkSettings:
    index_url: str = ""
    extra_index_urls: list[str] = field(default_factory=list)
    ca_bundle: Path | None = None  # the kit's CA_BUNDLE (default PIP_CERT)
    lock_source_env: dict[str, str] = field(default_factory=dict)  # ${VAR}s the lock's sources use
    pip: pipview.PipView = field(default_factory=pipview.PipView)
    lock_sources: tuple[str, ...] = ()  # the lock's source URLs as written
    search_all_sources: bool = False

    def ca_files(self) -> list[str]:
        return list(dict.fromkeys(([str(self.ca_bundle)] if self.ca_bundle else []) + list(self.pip.cafiles)))

    def index_hosts(self) -> set[str]:
        urls = [self.index_url, *self.extra_index_urls, self.pip.index_url]
        urls += [contract.expand(u, self.lock_source_env) for u in self.lock_sources]
        return {host_of(u) for u in urls if u} - {""}

    def netrc_lines(self) -> str:
        hosts = self.index_hosts()
        return "\x1f".join(f"{h} {login} {pw}" for h, (login, pw) in sorted(self.pip.netrc.items()) if h in hosts)

    def values(self) -> dict[str, str]:
        p = self.pip
        values = {
            contract.INDEX_URL: self.index_url,
            contract.EXTRA_INDEX_URLS: " ".join(self.extra_index_urls),
            contract.PIP_INDEX_URL: p.index_url,
            contract.PIP_INDEX_FROM: p.index_from,
            contract.SEARCH_ALL_SOURCES: "1" if self.search_all_sources else "",
            contract.TRUSTED_HOSTS: " ".join(p.trusted_hosts),
            contract.TIMEOUT: p.timeout,
            contract.RETRIES: p.retries,
            contract.FIND_LINKS: " ".join(p.find_links),
            contract.NETRC: self.netrc_lines(),
        }
        if p.proxy is not None:
            values[contract.PROXY] = p.proxy
        values.update({f"{k.upper()}_PROXY": v for k, v in p.env_proxies.items()})
        return values

    def settings_text(self) -> str:
        """The network settings file handed into the build (contract.settings_text)."""
        return contract.settings_text(self.values(), self.lock_source_env)

    def credential_shapes(self) -> list[str]:
        """Why these settings must not travel in a build context (the legacy builder): each shape found."""
        shapes = []
        named = [
            ("INDEX_URL", self.index_url),
            *(("EXTRA_INDEX_URLS", u) for u in self.extra_index_urls),
            (f"pip's index-url ({self.pip.index_from})", self.pip.index_url),
            ("the proxy settings", self.pip.proxy or ""),
            *(("the proxy variables", u) for u in self.pip.env_proxies.values()),
        ]
        for what, url in named:
            if url and secret_parts(url):
                shapes.append(f"a credential in {what}")
        if self.lock_source_env:
            shapes.append("the lock's sources' ${" + "}, ${".join(sorted(self.lock_source_env)) + "}")
        if self.netrc_lines():
            shapes.append("~/.netrc logins for the indexes")
        if self.pip.client_cert:
            shapes.append("a client certificate (pip's client-cert)")
        return list(dict.fromkeys(shapes))

    def has_credentials(self) -> bool:
        return bool(self.credential_shapes())

    def loopback(self) -> bool:
        """An index or proxy on this machine's loopback: a Docker build needs the host's network."""
        urls = [
            self.index_url,
            *self.extra_index_urls,
            self.pip.index_url,
            self.pip.proxy or "",
            *self.pip.env_proxies.values(),
            *(contract.expand(u, self.lock_source_env) for u in self.lock_sources),
        ]
        for url in urls:
            host = host_of(url)
            if host == "localhost" or host.startswith("127.") or host == "::1":
                return True
        return False


def from_environment(environ) -> NetworkSettings:
    """The kit's settings and pip's, from this process's environment and pip's files."""
    ca = (environ.get("CA_BUNDLE") or environ.get("PIP_CERT") or "").strip()
    return NetworkSettings(
        index_url=(environ.get("INDEX_URL") or "").strip(),
        extra_index_urls=(environ.get("EXTRA_INDEX_URLS") or "").split(),
        ca_bundle=Path(ca) if ca else None,
        pip=pipview.read(environ),
    )


def for_lock(network: NetworkSettings, lock: Lock, pipfile: Path, environ) -> NetworkSettings:
    """`network` with what the lock and Pipfile add: the `${VAR}` values of its sources, the sources
    themselves, and [pipenv] install_search_all_sources (a requirements file's extra indexes: pip
    searches every index for every package)."""
    sources = tuple(s.get("url", "") for s in lock.sources)
    return replace(
        network,
        lock_source_env=lock_source_variables(lock, environ),
        lock_sources=sources,
        search_all_sources=search_all_sources(pipfile) or lock.search_all_sources,
    )


def search_all_sources(pipfile: Path) -> bool:
    """pipenv's `[pipenv] install_search_all_sources` (false when the Pipfile cannot be read: the
    lock check says why)."""
    try:
        import tomllib

        loads = tomllib.loads
    except ImportError:  # Python 3.10: the TOML reader pipenv vendors
        from pipenv.vendor import tomlkit

        loads = tomlkit.parse
    try:
        section = loads(pipfile.read_text(encoding="utf-8")).get("pipenv", {})
    except Exception:  # noqa: BLE001  a Pipfile pipenv cannot read either
        return False
    return section.get("install_search_all_sources") is True


def lock_source_variables(lock: Lock, environ) -> dict[str, str]:
    """Values of the environment variables the lock's [[source]] URLs refer to (pipenv expands
    `${VAR}` there, typically for index credentials)."""
    names = set()
    for source in lock.sources:
        names.update(contract.referenced_names(source.get("url", "")))
    missing = sorted(n for n in names if n not in environ)
    if missing:
        raise UsageError(
            "Pipfile.lock's sources use environment variables that are not set",
            ", ".join(missing),
            hint="export them before `make package` (they reach the build as BuildKit secrets only)",
        )
    return {n: environ[n] for n in sorted(names)}


def write_ca(network: NetworkSettings, dest: Path, skip: tuple[str, ...] = ()) -> Path | None:
    """The extra CA bundles (CA_BUNDLE and pip's) as one PEM file, or None without any. A folder
    (as REQUESTS_CA_BUNDLE may name) contributes its hashed certificate files. `skip`: bundles the
    reader trusts anyway (the local builder's system store: loading it twice costs 0.07 s)."""
    files = [f for f in network.ca_files() if os.path.realpath(f) not in {os.path.realpath(k) for k in skip if k}]
    if not files:
        return None
    with open(dest, "wb") as out:
        for name in files:
            path = Path(name)
            try:
                parts = sorted(p for p in path.iterdir() if HASHED_NAME.match(p.name)) if path.is_dir() else [path]
                for part in parts:
                    out.write(part.read_bytes().rstrip(b"\n") + b"\n")
            except OSError as exc:
                raise UsageError(
                    f"a CA bundle pip would use cannot be read ({exc.strerror})",
                    name,
                    hint="fix CA_BUNDLE, PIP_CERT, REQUESTS_CA_BUNDLE or pip's cert setting",
                ) from None
    return dest


def secret_files(folder: Path, network: NetworkSettings) -> dict[str, Path]:
    """For BuildKit: write the settings as files (mode 0600) to pass with --secret."""
    files: dict[str, Path] = {}
    if ca := write_ca(network, folder / contract.CA_BUNDLE_ID):
        files[contract.CA_BUNDLE_ID] = ca
    if network.pip.client_cert:
        files[contract.CLIENT_CERT_ID] = Path(network.pip.client_cert)
    text = network.settings_text()
    if text:
        path = folder / contract.PIP_SETTINGS_ID
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        files[contract.PIP_SETTINGS_ID] = path
    return files
