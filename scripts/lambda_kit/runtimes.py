"""The one table of Lambda Python runtimes and limits the kit knows about.

Sources: AWS Lambda runtime and quota documentation (see shared FACTS). Dates and glibc versions
change with AWS announcements: edit them here and nowhere else. Standard library only: this module
also runs inside the build container.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

# Lambda quotas ("MB" in AWS docs means MiB).
MAX_ZIPPED_DIRECT_UPLOAD = 50 * 1024 * 1024
MAX_UNZIPPED_TOTAL = 262_144_000
MAX_LAYERS = 5

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
    """Accept "3.12" or "python3.12"; raise KeyError for anything the table lacks."""
    key = version[len("python"):] if version.startswith("python") else version
    return RUNTIMES[key]


def default_build_image(version: str, arch: str) -> str:
    """The AWS SAM build image for a runtime and architecture (tags latest-x86_64 / latest-arm64)."""
    return f"public.ecr.aws/sam/build-python{version}:latest-{arch}"
