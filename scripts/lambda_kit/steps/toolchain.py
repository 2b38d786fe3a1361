"""What every build step is handed: the `Toolchain` (which pinned pip to run, how pip reaches the
network, for which interpreter markers are evaluated and, for a cross-platform install, which wheel
tags pip may take), and `say`, the steps' one line to the build log. The steps' own modules import
this one and never each other for it, so no step depends on the one that orders them (buildsteps).
Standard library plus the kit's netconfig only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lambda_kit.common import reporter
from lambda_kit.net import netconfig
from lambda_kit.net.netconfig import BuildNetwork


def say(message: str) -> None:
    print(reporter.line(message), flush=True)


@dataclass
class Toolchain:
    python: Path  # a python with the pinned pip (scripts/container-requirements.txt)
    network: BuildNetwork = field(default_factory=lambda: BuildNetwork({}))  # indexes, trust, proxies (netconfig)
    environment: dict[str, str] | None = None  # marker variables of the target; None: this interpreter
    target_args: list[str] = field(default_factory=list)  # pip options for a cross-platform install
    target_name: str = ""  # e.g. "python3.12 x86_64", for messages
    no_wheel_hint: str = "build with Docker (make package without BUILDER=local), which can compile it"
    cache_dir: str | None = None  # pip's download cache; None: --no-cache-dir
    wheelhouse: Path | None = None  # downloaded files, kept between builds: a lock change fetches only what changed
    echo: Callable[[str], None] = lambda line: print(line, end="", flush=True)
    python_xy: str = "python%d.%d" % sys.version_info[:2]  # the target's, for the headers folder
    fetch: str = "kit"  # who downloads the lock's files: kit (wheelfetch, pip for the rest) or pip (LAMBDA_KIT_FETCH)
    redact: Callable[[str], str] = lambda text: text  # masks the network settings' credentials

    def __post_init__(self) -> None:
        echo, self.redact = self.echo, netconfig.redactor(self.network.secrets())
        self.echo = lambda line: echo(self.redact(line))  # nothing the build logs shows a credential
