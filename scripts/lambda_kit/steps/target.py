"""The interpreter a build installs for, as pip's TargetPython describes one: a Lambda runtime on an
architecture, and whether source distributions may be built (only where the build runs on the
target's own machine). It owns what the steps ask of it: pip's target options, the marker
environment, and the wheel tags pip accepts, in pip's order of preference, so nothing parses the
options back. Runs in the build image: the standard library and `packaging`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.version import Version

from lambda_kit.common import runtimes

ONLY_BINARY = "--only-binary=:all:"


@dataclass(frozen=True)
class Target:
    runtime: runtimes.Runtime
    arch: str  # Lambda's name: x86_64 or arm64
    # True: the build runs on the target's own machine (the build image's Python is the runtime's):
    # pip may build source distributions here, as wheels tagged linux_<machine>, which the target
    # then also accepts, and markers are the running interpreter's own.
    sources_allowed: bool = False

    @property
    def on_target_machine(self) -> bool:
        return self.sources_allowed

    @property
    def name(self) -> str:
        """For messages: python3.12 x86_64."""
        return f"{self.runtime.name} {self.arch}"

    @property
    def python(self) -> Version:
        """What Requires-Python is checked against: X.Y.0."""
        return Version(f"{self.runtime.version}.0")

    @property
    def python_xy(self) -> str:
        """The headers folder's name for the target: python3.12."""
        return self.runtime.name

    def environment(self) -> dict[str, str]:
        """The PEP 508 marker variables of the target."""
        return runtimes.target_environment(self.runtime, self.arch)

    def platforms(self) -> list[str]:
        """The --platform values: every manylinux tag the runtime's glibc accepts, newest first,
        then linux_<machine> when sources may be built (pip tags what it builds so)."""
        tags = runtimes.manylinux_tags(self.runtime, self.arch)
        if self.sources_allowed:
            tags.append(f"linux_{runtimes.ARCHITECTURES[self.arch][1]}")
        return tags

    def pip_args(self) -> list[str]:
        """pip's options for this target: the Python version, CPython and its ABIs, each platform,
        and wheels only unless sources may be built."""
        args = [] if self.sources_allowed else [ONLY_BINARY]
        args += ["--python-version", self.runtime.version, "--implementation", "cp"]
        for abi in (self.runtime.cpython_tag, "abi3", "none"):
            args += ["--abi", abi]
        for platform in self.platforms():
            args += ["--platform", platform]
        return args

    def key(self) -> str:
        """Names the target in the wheelhouse's notes (pipchoices): a digest of pip's options."""
        return hashlib.sha256(json.dumps(self.pip_args()).encode()).hexdigest()[:16]

    @cached_property
    def tags(self) -> tuple[Tag, ...]:
        """The wheel tags pip accepts for the target, in its order of preference (the index of a
        tag is its rank: lower is better)."""
        major, minor = (int(part) for part in self.runtime.version.split("."))
        platforms = expand_platforms(self.platforms())
        abis = [self.runtime.cpython_tag, "abi3", "none"]
        cpython = f"cp{major}{minor}"
        return (*cpython_tags((major, minor), abis, platforms), *compatible_tags((major, minor), cpython, platforms))

    @cached_property
    def priority(self) -> dict[Tag, int]:
        return {tag: i for i, tag in enumerate(self.tags)}  # as pip builds it: the last index of a repeated tag


def expand_platforms(platforms: list[str]) -> list[str]:
    """pip's expansion of explicit --platform values: manylinux2014 brings manylinux2010 and
    manylinux1 (x86 only), manylinux2010 brings manylinux1; each platform once, first place kept."""
    result: list[str] = []
    for platform in platforms:
        prefix, _, machine = platform.partition("_")
        more = [platform]
        if prefix == "manylinux2014" and machine in ("i686", "x86_64"):
            more += [f"manylinux2010_{machine}", f"manylinux1_{machine}"]
        elif prefix == "manylinux2010":
            more += [f"manylinux1_{machine}"]
        result += [p for p in more if p not in result]
    return result
