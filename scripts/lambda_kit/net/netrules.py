"""pip's rules for reaching a host, as pip 26.3 (requests, urllib3, truststore) applies them, for
`httpget`: the TLS trust store (the system's, as truststore finds it, plus certifi's bundle, plus
every extra bundle, added and never in place of the others), NO_PROXY (requests' rule, CIDR ranges
included), when a redirect keeps credentials (requests' should_strip_auth), and what messages name
of a URL (host and port, never credentials). Standard library only: the tools layer too.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import ssl
import urllib.parse

DEFAULT_PORTS = {"http": 80, "https": 443}
KINDS = {
    "dns": "the name does not resolve",
    "refused": "connection refused",
    "timeout": "no answer within the timeout",
    "tls": "TLS verification failed",
    "auth": "credentials refused",
    "proxy": "the proxy refused or did not answer",
    "server": "server error",
    "http": "unexpected answer",
    "broken": "the connection broke",
    "stalled": "the answer is too slow (a drip-feed)",
    "insecure": "not HTTPS and not a trusted host (pip ignores it)",
    "stopped": "stopped",
    "address": "not a valid address",
}


class NetError(Exception):
    """A request that failed: `kind` (a KINDS key), `where` (host:port, never credentials)."""

    def __init__(self, kind: str, where: str, detail: str = "", status: int | None = None) -> None:
        super().__init__(f"{where}: {KINDS[kind]}" + (f" ({detail})" if detail else ""))
        self.kind, self.where, self.detail, self.status = kind, where, detail, status


CA_FILE_CANDIDATES = (
    "/etc/ssl/cert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/cert.pem",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/ca-bundle.pem",
)  # truststore's


def netloc(host: str, port: int | None) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}" if port else host


def place(url: str) -> str:
    """host[:port] of a URL, without credentials: what messages name (never raises)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "?"
    if not parts.hostname:  # not a URL (no scheme): what stands where its host would
        return url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1] or "?"
    try:
        return netloc(parts.hostname or "", parts.port)
    except ValueError:
        return (parts.hostname or "?") + ":?"


def host_of(url: str) -> str:
    """The host name of a URL (or of host[:port]), "" when it has none or is not a URL."""
    try:
        return urllib.parse.urlsplit(url if "://" in url else f"//{url}").hostname or ""
    except ValueError:
        return ""


def split(url: str) -> tuple[urllib.parse.SplitResult, int]:
    """The URL's parts and port (the scheme's by default); httpget.NetError("address") when it is
    not an http(s) address with a host and a valid port."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError as exc:
        raise NetError("address", place(url), str(exc)) from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise NetError("address", place(url), "not an http:// or https:// address with a host")
    return parts, port


def same_origin(old: str, new: str) -> bool:
    """requests keeps Authorization on a redirect to the same host, scheme and port (http to https
    on the default ports counts as the same)."""
    a, b = urllib.parse.urlsplit(old), urllib.parse.urlsplit(new)
    if a.hostname != b.hostname:
        return False
    try:
        ports = a.port or DEFAULT_PORTS.get(a.scheme), b.port or DEFAULT_PORTS.get(b.scheme)
    except ValueError:
        return False
    return (
        (a.scheme, ports[0]) == (b.scheme, ports[1]) or ports == (80, 443) and (a.scheme, b.scheme) == ("http", "https")
    )


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode("ascii")


def verified_context(cafiles: list[str], client_cert: str | None) -> ssl.SSLContext:
    """pip's trust: the system store as truststore finds it, certifi, then every extra bundle."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    defaults = ssl.get_default_verify_paths()
    hashed = re.compile(r"^[0-9a-fA-F]{8}\.[0-9]$")
    capath = defaults.capath if defaults.capath and os.path.isdir(defaults.capath) else None
    if defaults.cafile or (capath and any(hashed.match(name) for name in os.listdir(capath))):
        context.set_default_verify_paths()
    else:
        found = next((f for f in CA_FILE_CANDIDATES if os.path.isfile(f)), None)
        if found:
            context.load_verify_locations(cafile=found)
    try:
        from pip._vendor import certifi  # the bundle pip adds (the tools' pip, or the image's own)

        context.load_verify_locations(cafile=certifi.where())
    except ImportError:
        pass
    for extra in cafiles:
        context.load_verify_locations(capath=extra) if os.path.isdir(extra) else context.load_verify_locations(extra)
    if client_cert:
        context.load_cert_chain(client_cert)
    return context


def bypasses(host: str, port: int | None, no_proxy: str) -> bool:
    """requests' NO_PROXY rule: IP hosts by address or CIDR, names by suffix (with or without the
    port); `*` alone matches everything (urllib's proxy_bypass_environment)."""
    entries = [e for e in no_proxy.replace(" ", "").split(",") if e]
    if "*" in entries:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in entries:
        if address is not None and address.version == 4:
            try:
                if address in ipaddress.ip_network(entry, strict=False) if "/" in entry else str(address) == entry:
                    return True
            except ValueError:
                continue
            continue
        entry = entry.lstrip(".").lower()
        for name in (host.lower(), netloc(host.lower(), port) if port else None):
            if name and (name == entry or name.endswith("." + entry)):
                return True
    return False
