"""The one table of Lambda Python runtimes and limits the kit knows about.

Sources: AWS Lambda runtime and quota documentation (see shared FACTS). Dates and glibc versions
change with AWS announcements: edit them here and nowhere else. Standard library only: this module
also runs inside the build container.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from lambda_kit.common.errors import UsageError

# Lambda quotas ("MB" in AWS docs means MiB).
MAX_ZIPPED_DIRECT_UPLOAD = 50 * 1024 * 1024
MAX_UNZIPPED_TOTAL = 262_144_000
MAX_LAYERS = 5

# What a build, an audit, a smoke run or a deploy targets when not told (the Makefile's defaults).
DEFAULT_RUNTIME = "3.12"
DEFAULT_ARCH = "x86_64"

ARCHITECTURES = {
    # Lambda's name -> (ELF e_machine, machine name in wheel tags, docker platform)
    "x86_64": (62, "x86_64", "linux/amd64"),
    "arm64": (183, "aarch64", "linux/arm64"),
}


@dataclass(frozen=True)
class Runtime:
    version: str  # "3.12"
    os: str
    glibc: tuple[int, int]
    deprecation: datetime.date

    @property
    def name(self) -> str:
        return f"python{self.version}"

    @property
    def cpython_tag(self) -> str:
        return "cp" + self.version.replace(".", "")

    def deprecated_on(self, today: datetime.date) -> bool:
        return today >= self.deprecation


RUNTIMES = {
    r.version: r
    for r in (
        Runtime("3.14", "Amazon Linux 2023", (2, 34), datetime.date(2029, 6, 30)),
        Runtime("3.13", "Amazon Linux 2023", (2, 34), datetime.date(2029, 6, 30)),
        Runtime("3.12", "Amazon Linux 2023", (2, 34), datetime.date(2028, 10, 31)),
        Runtime("3.11", "Amazon Linux 2", (2, 26), datetime.date(2027, 6, 30)),
        Runtime("3.10", "Amazon Linux 2", (2, 26), datetime.date(2026, 10, 31)),
        Runtime("3.9", "Amazon Linux 2", (2, 26), datetime.date(2025, 12, 15)),
    )
}

# The pinned pipenv in the build image needs Python 3.10 or newer.
OLDEST_BUILDABLE = (3, 10)


def lookup(version: str) -> Runtime:
    """Accept "3.12" or "python3.12"; anything the table lacks is the user's error."""
    key = version[len("python") :] if version.startswith("python") else version
    if key not in RUNTIMES:
        raise UsageError("unknown Python runtime", version, hint=f"use one of {', '.join(sorted(RUNTIMES))}")
    return RUNTIMES[key]


def default_build_image(version: str, arch: str) -> str:
    """The AWS SAM build image for a runtime and architecture (tags latest-x86_64 / latest-arm64)."""
    return f"public.ecr.aws/sam/build-python{version}:latest-{arch}"


def default_runtime_image(version: str, arch: str) -> str:
    """The AWS Lambda base image for a runtime and architecture (what `make smoke` runs in)."""
    return f"public.ecr.aws/lambda/python:{version}-{arch}"


def target_environment(runtime: Runtime, arch: str) -> dict[str, str]:
    """PEP 508 marker variables of a Lambda runtime, wherever the code asking runs."""
    machine = ARCHITECTURES[arch][1]
    full = f"{runtime.version}.0"
    return {
        "implementation_name": "cpython",
        "implementation_version": full,
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": full,
        "python_version": runtime.version,
        "sys_platform": "linux",
    }


def manylinux_tags(runtime: Runtime, arch: str) -> list[str]:
    """Every manylinux platform tag the runtime's glibc accepts, newest first. pip does not expand
    a manylinux_2_X tag to older ones, so an install for the runtime passes each of these
    (steps/target.py: the Target's --platform values)."""
    machine = ARCHITECTURES[arch][1]
    major, minor = runtime.glibc
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 16, -1)]  # down to 2_17
    tags.append(f"manylinux2014_{machine}")
    if machine == "x86_64":  # older policies exist only for x86 (and i686)
        tags += [
            f"manylinux_2_12_{machine}",
            f"manylinux2010_{machine}",
            f"manylinux_2_5_{machine}",
            f"manylinux1_{machine}",
        ]
    return tags


def arch_of_machine(machine: str) -> str | None:
    """Lambda's name for a machine (`uname -m` or docker's Server.Arch): x86_64 / arm64."""
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
