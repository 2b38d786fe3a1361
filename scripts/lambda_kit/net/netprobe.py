"""Reachability first, once: before any package is looked up, every index the build needs is asked
for its root page (HEAD: name lookup, connection, TLS, credentials, an answer) in parallel, within the
timeout. A failure is one error line naming the index (host and port, never credentials), where it
was set, the packages that need it and the class of failure, and a hint saying what to change: so
a dead or misconfigured index costs one timeout, whatever the size of the lock, and pip never
retries a host found dead.

Standard library only: runs in the tools layer, in the build image and on the host.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from lambda_kit.net import httpget

ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
MAX_NAMED = 6  # packages named per index in a message


@dataclass(frozen=True)
class Target:
    index: object  # netconfig.Index: url, label, fix, host
    packages: tuple[str, ...]  # what needs it (empty: the build's tools)


def check(client: httpget.Client, url: str, deadline: float) -> None:
    """One HEAD of an index's root page, its answer's status judged (a GET of PyPI's root waits
    0.5-1 s for 40 MB of project names; its HEAD answers in 0.05 s). 404, 405 and 501 count as
    reachable (an index without a root, or without HEAD), any other 4xx too (pages will tell)."""
    if not client.secure_origin(url):
        raise httpget.NetError("insecure", httpget.place(url))
    with client.get(url, accept=ACCEPT, deadline=deadline, method="HEAD") as response:
        status = response.status
    if status in (401, 403):
        raise httpget.NetError("auth", response.where, f"HTTP {status}", status)
    if status >= 500 and status != 501:
        raise httpget.NetError("server", response.where, f"HTTP {status}", status)


def probe(client: httpget.Client, targets: list[Target]) -> list[tuple[Target, httpget.NetError]]:
    """Each distinct index URL asked once, all at once; the failures, in the targets' order."""
    by_url: dict[str, list[Target]] = {}
    for target in targets:
        by_url.setdefault(target.index.url, []).append(target)
    results: dict[str, httpget.NetError | None] = {}
    deadline = time.monotonic() + client.settings.timeout

    def one(url: str) -> None:
        try:
            check(client, url, deadline)
            results[url] = None
        except httpget.NetError as exc:
            results[url] = exc

    threads = [threading.Thread(target=one, args=(url,), daemon=True) for url in by_url]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline + 1 - time.monotonic()))
    failures = []
    for url, group in by_url.items():
        error = results.get(url, httpget.NetError("timeout", httpget.place(url), f"{client.settings.timeout:g} s"))
        if error is not None:
            needed = tuple(dict.fromkeys(p for t in group for p in t.packages))
            failures.append((Target(group[0].index, needed), error))
    return failures


def hint(target: Target, error: httpget.NetError) -> str:
    fix = target.index.fix
    if error.kind == "tls" and "client certificate" in error.detail:
        return (
            "give pip's client certificate: client-cert in pip.conf, or PIP_CLIENT_CERT "
            "(a PEM with key and certificate)"
        )
    return {
        "dns": f"check the host name in {fix} (and this machine's DNS)",
        "refused": f"check the address and port in {fix}, and that the index is up",
        "timeout": f"check {fix} and the proxy variables (HTTPS_PROXY, NO_PROXY); PIP_TIMEOUT sets the timeout",
        "tls": "set CA_BUNDLE to the CA bundle (PEM) that signs its certificate, "
        f"or trust the host (PIP_TRUSTED_HOST={error.where})",
        "auth": f"check the credentials in {fix}, or give some (https://user:token@host/..., ~/.netrc)",
        "proxy": "check the proxy settings: HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY (or pip's proxy setting)",
        "server": f"the index is failing: build again later, or check {fix}",
        "stalled": f"it sends under 1 KiB per timeout: check {fix} and the proxy (PIP_TIMEOUT sets the timeout)",
        "insecure": f"use https in {fix}, or trust the host (the source's verify_ssl = false, or PIP_TRUSTED_HOST)",
    }.get(error.kind, f"check {fix}")


def describe(target: Target, error: httpget.NetError) -> str:
    needed = ""
    if target.packages:
        names = list(target.packages[:MAX_NAMED]) + (
            [f"{len(target.packages) - MAX_NAMED} more"] if len(target.packages) > MAX_NAMED else []
        )
        needed = ", needed by " + ", ".join(names)
    detail = f" ({error.detail})" if error.detail else ""
    return f"{target.index.host} ({target.index.label}{needed}): {httpget.KINDS[error.kind]}{detail}"


def message(failures: list[tuple[Target, httpget.NetError]]) -> tuple[str, str]:
    """One error line for every index that failed, and the hint for the first."""
    if len(failures) == 1:
        what = "file host " if failures[0][0].index.label.startswith("files of ") else "package index "
        return what + describe(*failures[0]), hint(*failures[0])
    listed = "; ".join(describe(t, e) for t, e in failures)
    return f"{len(failures)} package indexes cannot be used: {listed}", hint(*failures[0])


def first_failure(settings: httpget.HttpSettings, targets: list[Target]) -> tuple[str, str] | None:
    """For the tools layer: (message, hint) when an index cannot be used, else None."""
    try:
        client = httpget.Client(settings)
    except (OSError, ValueError) as exc:  # a CA bundle or client certificate that cannot be read
        return f"the network settings cannot be used ({exc})", "check CA_BUNDLE / PIP_CERT and PIP_CLIENT_CERT"
    failures = probe(client, targets)
    return message(failures) if failures else None
