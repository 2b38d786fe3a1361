"""pip's network settings as pip 26.3 reads them on this machine: its configuration files and PIP_*
variables, the proxy and CA variables requests reads, and ~/.netrc. Both builders hand these to
their pip (and to the kit's fetch) through the settings file, instead of letting each side's pip
read its own configuration: a corporate CA, proxy or client certificate in pip.conf counts in a
Docker build too, and the two builders see the same.

Read as pip reads them (`pip._internal.configuration`, `cli.parser`, requests' `sessions`):
- files, later ones winning: each `$XDG_CONFIG_DIRS` (default /etc/xdg) `pip/pip.conf`, then
  /etc/pip.conf; ~/.pip/pip.conf and `$XDG_CONFIG_HOME` (~/.config) `pip/pip.conf`, unless
  PIP_CONFIG_FILE names a file that exists; `<sys.prefix>/pip.conf`; then PIP_CONFIG_FILE itself.
  PIP_CONFIG_FILE=/dev/null reads none. In each, [global] then [download] then [install];
  PIP_<NAME> variables last. Option aliases: default-timeout is timeout, pypi-url is index-url.
- `proxy` (or no-proxy-env) switches requests' environment off: no *_proxy variables then, and no
  REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, which otherwise take `cert`'s place as the extra bundle.
- *_proxy variables as urllib reads them (lower case wins; empty unsets), NO_PROXY as requests.
Used: cert, client-cert, proxy, no-proxy-env, trusted-host, timeout, retries, index-url (as the
mirror of a lock source that is the default PyPI) and local find-links folders. Not used, and said
so once in the build log: whatever else decides which files are installed or from where
(extra-index-url, constraint, no-binary, remote find-links, ...): the lock decides that.
Host only (standard library).
"""

from __future__ import annotations

import configparser
import netrc
import os
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from lambda_kit.common.errors import UsageError

ALIASES = {"default-timeout": "timeout", "pypi-url": "index-url"}
USED = {"cert", "client-cert", "proxy", "no-proxy-env", "trusted-host", "timeout", "retries", "index-url", "find-links"}
HARMLESS = {
    "disable-pip-version-check",
    "no-input",
    "progress-bar",
    "cache-dir",
    "no-cache-dir",
    "root-user-action",
    "no-color",
    "require-virtualenv",
    "no-warn-script-location",
    "quiet",
    "verbose",
    "break-system-packages",
    "no-python-version-warning",
    "config-file",
    "default-timeout",
    "exists-action",
    "log",
    "src",
    "no-compile",
    "compile",
    "user-agent-user-data",
    "isolated",
}
PYPI_SIMPLE = "https://pypi.org/simple"
FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class PipView:
    index_url: str = ""  # pip's index-url when it is not PyPI's
    index_from: str = ""  # the file or variable that set it
    cafiles: tuple[str, ...] = ()  # the extra CA bundle pip would add (cert, or REQUESTS_CA_BUNDLE ...)
    client_cert: str = ""
    proxy: str | None = None  # pip's proxy setting ("" with no-proxy-env): the environment's then unused
    proxy_from: str = ""
    env_proxies: dict[str, str] = field(default_factory=dict)  # http, https, all, no
    trusted_hosts: tuple[str, ...] = ()
    timeout: str = ""
    retries: str = ""
    find_links: tuple[str, ...] = ()  # local folders
    netrc: dict[str, tuple[str, str]] = field(default_factory=dict)
    unused: tuple[str, ...] = ()  # "extra-index-url (FILE)": settings the build does not use


def config_files(environ) -> list[str]:
    """The configuration files pip would read, in the order their values override each other."""
    env_file = environ.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return []
    xdg_dirs = (environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep)
    files = [os.path.join(d, "pip", "pip.conf") for d in xdg_dirs if d] + ["/etc/pip.conf"]
    if not (env_file and os.path.exists(env_file)):
        home = os.path.expanduser("~")
        user = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
        files += [os.path.join(home, ".pip", "pip.conf"), os.path.join(user, "pip", "pip.conf")]
    files.append(os.path.join(sys.prefix, "pip.conf"))
    if env_file:
        files.append(env_file)
    return files


def _normal(name: str) -> str:
    name = name.lower().replace("_", "-").removeprefix("--")
    return ALIASES.get(name, name)


def settings(environ) -> dict[str, tuple[str, str]]:
    """Every option pip's download/install would take from files and variables: name -> (value, origin)."""
    sections: dict[str, dict[str, tuple[str, str]]] = {}
    for path in config_files(environ):
        if not os.path.exists(path):
            continue
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError, OSError) as exc:
            raise UsageError(
                f"pip's configuration file cannot be read ({exc})".replace("\n", " "),
                path,
                hint="fix it (pip refuses it too), or set PIP_CONFIG_FILE=/dev/null",
            ) from None
        for section in parser.sections():
            for key, value in parser.items(section):
                sections.setdefault(section, {})[_normal(key)] = (value, path)
    for key, value in environ.items():
        if key.startswith("PIP_") and key[4:].lower() not in ("version", "help"):
            sections.setdefault(":env:", {})[_normal(key[4:])] = (value, key)
    out: dict[str, tuple[str, str]] = {}
    for section in ("global", "download", "install", ":env:"):
        out.update({k: v for k, v in sections.get(section, {}).items() if v[0]})
    return out


def environment_proxies(environ) -> dict[str, str]:
    """urllib's getproxies_environment (what requests uses): lower-case names win, empty unsets."""
    proxies: dict[str, str] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            proxies[name.lower()[:-6]] = value
    if "REQUEST_METHOD" in environ:
        proxies.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy"):
            if value:
                proxies[name.lower()[:-6]] = value
            else:
                proxies.pop(name.lower()[:-6], None)
    return {k: proxies[k] for k in ("http", "https", "all", "no") if k in proxies}


def netrc_logins(environ) -> dict[str, tuple[str, str]]:
    """requests' get_netrc_auth: NETRC, else ~/.netrc or ~/_netrc; a file it cannot parse is ignored."""
    found = environ.get("NETRC")
    candidates = [found] if found else [os.path.expanduser("~/.netrc"), os.path.expanduser("~/_netrc")]
    for path in candidates:
        if os.path.isfile(path):
            try:
                hosts = netrc.netrc(path).hosts
            except (OSError, netrc.NetrcParseError):
                return {}
            return {host: (login or "", password or "") for host, (login, _, password) in hosts.items()}
    return {}


def local_folder(item: str) -> str | None:
    """A find-links value as a local path (a folder or file:// URL), None for a remote one."""
    if item.startswith("file:"):
        return urllib.parse.unquote(urllib.parse.urlsplit(item).path)
    return None if "://" in item else item


def read(environ) -> PipView:
    """pip's network settings on this machine (module docstring)."""
    values = settings(environ)
    value = {k: v for k, (v, _) in values.items()}
    no_env = value.get("no-proxy-env", "").lower() not in FALSE
    proxy = value.get("proxy") if "proxy" in value else ("" if no_env else None)
    trust_env = proxy is None
    extra = value.get("cert", "")
    if trust_env:
        extra = environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE") or extra
    index = value.get("index-url", "")
    if index.rstrip("/") == PYPI_SIMPLE:
        index = ""
    folders, unused = [], []
    for item in value.get("find-links", "").split():
        folder = local_folder(item)
        if folder and Path(folder).is_dir():
            folders.append(folder)
        else:
            unused.append(f"find-links {item} ({values['find-links'][1]})")
    unused += [f"{k} ({origin})" for k, (_, origin) in values.items() if k not in USED and k not in HARMLESS]
    return PipView(
        index_url=index,
        index_from=values["index-url"][1] if index else "",
        cafiles=(extra,) if extra else (),
        client_cert=value.get("client-cert", ""),
        proxy=proxy,
        proxy_from=values["proxy"][1] if "proxy" in values else "",
        env_proxies=environment_proxies(environ) if trust_env else {},
        trusted_hosts=tuple(value.get("trusted-host", "").split()),
        timeout=value.get("timeout", ""),
        retries=value.get("retries", ""),
        find_links=tuple(folders),
        netrc=netrc_logins(environ),
        unused=tuple(unused),
    )
