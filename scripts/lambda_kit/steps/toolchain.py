"""What every build step is handed: the `Toolchain` (which pinned pip to run, how pip reaches the
network, and the Target: the interpreter it installs for), and `say`, the steps' one line to the
build log. The steps' own modules import this one and never each other for it, so no step
depends on the one that orders them (buildsteps).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lambda_kit.common import reporter
from lambda_kit.net import netconfig
from lambda_kit.net.netconfig import BuildNetwork
from lambda_kit.steps.target import Target


def say(message: str) -> None:
    print(reporter.line(message), flush=True)


@dataclass
class Toolchain:
    python: Path  # a python with the pinned pip (scripts/container-requirements.txt)
    network: BuildNetwork = field(default_factory=lambda: BuildNetwork({}))  # indexes, trust, proxies (netconfig)
    target: Target | None = None  # the interpreter installed for; None: this one, as pip judges it
    no_wheel_hint: str = "build with Docker (make package without BUILDER=local), which can compile it"
    cache_dir: str | None = None  # pip's download cache; None: --no-cache-dir
    wheelhouse: Path | None = None  # downloaded files, kept between builds: a lock change fetches only what changed
    echo: Callable[[str], None] = lambda line: print(line, end="", flush=True)
    fetch: str = "kit"  # who downloads the lock's files: kit (wheelfetch, pip for the rest) or pip (LAMBDA_KIT_FETCH)
    redact: Callable[[str], str] = lambda text: text  # masks the network settings' credentials

    @property
    def environment(self) -> dict[str, str] | None:
        """The target's marker variables; None: this interpreter's, which is the target's own when the
        build runs on the target's machine (its exact version and platform, not a model of them)."""
        if self.target is None or self.target.on_target_machine:
            return None
        return self.target.environment()

    @property
    def target_args(self) -> list[str]:
        """pip's target options; none: pip installs for this interpreter."""
        return self.target.pip_args() if self.target else []

    @property
    def target_name(self) -> str:
        return self.target.name if self.target else "this runtime"

    @property
    def python_xy(self) -> str:
        """The target's headers folder name: python3.12."""
        return self.target.python_xy if self.target else "python{}.{}".format(*sys.version_info[:2])

    def __post_init__(self) -> None:
        echo, self.redact = self.echo, netconfig.redactor(self.network.secrets())
        self.echo = lambda line: echo(self.redact(line))  # nothing the build logs shows a credential
