"""COMPILE=1 on the host: the settings checks and which Python compiles the code (bytecode.py does
the work; this decides whether this host may)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from lambda_kit.common import reporter, runtimes
from lambda_kit.common.errors import UsageError
from lambda_kit.steps import bytecode


def host_version() -> str:
    return "{}.{}".format(*sys.version_info[:2])


def host_runs(runtime_version: str) -> bool:
    """Bytecode compiled here is the runtime's (the same magic number and compiler)."""
    return host_version() == runtimes.lookup(runtime_version).version


def profile(s) -> list[str]:
    """The profile's names when COMPILE=1 and the file exists (check() validated it)."""
    path = s.compile_profile
    return bytecode.read_profile(path) if s.compile and path is not None and path.is_file() else []


def check(s, runtime: runtimes.Runtime, builder: str | None = None) -> None:
    """Before any build: the local builder compiles with the host's Python; the profile parses.
    `builder`: what BUILDER=auto chose (checked again once it has)."""
    if s.compile and (builder or s.builder) == "local" and not host_runs(runtime.version):
        raise UsageError(
            "COMPILE=1 with BUILDER=local needs the host's Python to be the runtime's (bytecode is per version)",
            f"host Python {host_version()}, runtime {runtime.name}",
            hint=f"run make with PYTHON=python{runtime.version}, "
            "or build in Docker (start an engine, or set DOCKER_HOST)",
        )
    try:
        profile(s)
    except (OSError, ValueError) as exc:
        raise UsageError(
            "the import profile cannot be used",
            f"{s.compile_profile}: {exc}",
            hint="record it again with make profile, or delete it",
        ) from None


def code_handler(s, say: Callable[[str], None]) -> str | None:
    """The code is always added on the host (assemble.build_zip): the handler to compile the code's
    closure from, or None (with a line saying so) when this host cannot compile for the runtime."""
    if not s.compile:
        return None
    if host_runs(s.runtime):
        return s.handler
    say(
        reporter.line(
            f"COMPILE=1: this host runs Python {host_version()}, not {s.runtime}: your code ships without "
            f"bytecode (the dependencies' was compiled in the build); make PYTHON=python{s.runtime} compiles it too"
        )
    )
    return None
