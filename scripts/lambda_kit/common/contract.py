"""The container contract: every fact the host helper and the build image must agree on.

Both sides import this module (it is shipped into the image with the in-container modules, and beside
netconfig.py where that runs alone), and tests/test_contract.py compares the Dockerfile's literals
with it. Standard library only: it runs with the base image's python before the kit's tools exist.

- paths in the image, and the build context's folders that the Dockerfile copies there;
- what the build leaves for the host in OUT: deps.zip, its SHA-256 beside it, the wheels;
- the BuildKit secret ids (the same names are files under net/ for the legacy builder);
- the network settings file (KEY=VALUE lines) and the `${VAR}` pattern of the lock's sources;
- the build arguments;
- the error lines a failed step prints and the host lifts out of the build log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from lambda_kit.common import reporter

# Paths in the image (WORKDIR is ROOT).
ROOT = PurePosixPath("/opt/lambda-kit")
TOOLS_BIN = ROOT / "tools" / "bin"  # the pinned pip and packaging (Dockerfile step 1)
KIT = ROOT / "kit"  # on PYTHONPATH: lambda_kit/ and container-requirements.txt
PROJECT = ROOT / "project"  # Pipfile, Pipfile.lock (and COMPILE=1's profile)
PATHS = ROOT / "paths"  # local path dependencies: <n>/ and the map below
PATHS_MAP = PATHS / "map.json"  # {lock path: path in the image}
SCRATCH = ROOT / "scratch"  # BuildKit's tmpfs mount for the installed dependencies (else /dev/shm)
OUT = ROOT / "out"  # what the host copies out: DEPS_ZIP, its digest, WHEELS
NET = ROOT / "net"  # the legacy builder's network settings (no credentials)
SECRETS = PurePosixPath("/run/secrets")  # BuildKit's secret mounts

# What the build leaves in OUT (the local builder writes the same into its own folder).
DEPS_ZIP = "deps.zip"
DIGEST_SUFFIX = ".sha256"  # deps.zip.sha256: the hex SHA-256 of deps.zip and a newline
WHEELS = "wheels"  # downloads, kept by the host as its wheelhouse and staged back in
WHEEL_CHOICES = ".lambda-kit-choices.json"  # in WHEELS: which file pip chose per package and target (pipchoices)

# Folders of the build context (context.stage_build) and where the Dockerfile copies them.
# The build context: two folders, each laid out as ROOT and copied there in one step (a step is a
# container and a commit for the legacy builder). setup/ for the tools layer, build/ for the rest.
CONTEXT_FOLDERS = {"setup": ROOT, "build": ROOT}
SETUP_HOLDS = {"net": NET, "kit": KIT}  # NET's settings, the tools' pins and the TOOLS_PACKAGES
BUILD_HOLDS = {"kit": KIT, "project": PROJECT, "paths": PATHS, "out": OUT}  # the BUILD_PACKAGES, lock, paths, wheels
# The kit's folders (lambda_kit/<name>/, whole) each image gets, with lambda_kit/__init__.py. What a
# set holds imports nothing of the kit outside it (tests/unit/test_image_packages.py), and only the
# standard library and `packaging`. The tools layer: netconfig and what it imports; the build step
# adds the rest of what runs in the image; the smoke image: netconfig, then the runner and its reader.
# Each image's second step copies only what its first step did not (*_STEP_PACKAGES).
TOOLS_PACKAGES = ("common", "net")
BUILD_STEP_PACKAGES = ("lock", "steps", "zips")
SMOKE_STEP_PACKAGES = ("zips", "invoke")
BUILD_PACKAGES = (*TOOLS_PACKAGES, *BUILD_STEP_PACKAGES)
SMOKE_PACKAGES = (*TOOLS_PACKAGES, *SMOKE_STEP_PACKAGES)

# BuildKit secret ids, also the file names under NET.
PIP_SETTINGS_ID = "lambda-kit-pip"  # the network settings file below
CA_BUNDLE_ID = "lambda-kit-ca"  # an extra CA bundle (PEM), added to pip's own
CLIENT_CERT_ID = "lambda-kit-client-cert"  # pip's client certificate (PEM: key and certificate); BuildKit only


@dataclass(frozen=True)
class BuildArguments:
    """The build arguments: the host passes them (`docker build --build-arg`), the Dockerfile declares
    them (ARG) and the steps read them from the environment."""

    base_image: str
    python_version: str  # the runtime's, e.g. 3.12; the image must run it
    slim: bool = False
    compile: bool = False
    target_arch: str = ""  # set when the target architecture is not the image's
    fetch: str = "kit"  # who chooses and downloads the lock's files: kit (wheelfetch, pip for the rest) or pip

    def as_build_args(self) -> dict[str, str]:
        return {
            "BASE_IMAGE": self.base_image,
            "PYTHON_VERSION": self.python_version,
            "SLIM": "1" if self.slim else "0",
            "COMPILE": "1" if self.compile else "0",
            "TARGET_ARCH": self.target_arch,
            "FETCH": self.fetch,
        }

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> BuildArguments:
        return cls(
            base_image=environ.get("BASE_IMAGE", ""),
            python_version=environ.get("PYTHON_VERSION", ""),
            slim=environ.get("SLIM") == "1",
            compile=environ.get("COMPILE") == "1",
            target_arch=environ.get("TARGET_ARCH", ""),
            fetch=environ.get("FETCH") or "kit",
        )


# The network settings file: KEY=VALUE lines. INDEX_URL, EXTRA_INDEX_URLS (space-separated) and
# ENV_<name> for each `${name}` the lock's source URLs use; then what pip itself would read on the
# host (its configuration files and PIP_* variables), so both builders reach the indexes alike:
INDEX_URL = "INDEX_URL"
EXTRA_INDEX_URLS = "EXTRA_INDEX_URLS"
PIP_INDEX_URL = "PIP_INDEX_URL"  # pip's index-url: replaces a lock source that is the default PyPI
PIP_INDEX_FROM = "PIP_INDEX_FROM"  # where that was set (a file, or PIP_INDEX_URL)
SEARCH_ALL_SOURCES = "SEARCH_ALL_SOURCES"  # 1: the Pipfile's [pipenv] install_search_all_sources
TRUSTED_HOSTS = "TRUSTED_HOSTS"  # pip's trusted-host values, space-separated
TIMEOUT = "TIMEOUT"  # pip's timeout, seconds
RETRIES = "RETRIES"  # pip's retries
PROXY = "PROXY"  # pip's proxy setting (present, even empty: the environment's proxies are not used)
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")  # the environment's, as requests reads them
FIND_LINKS = "FIND_LINKS"  # local find-links folders (the local builder's only)
NETRC = "NETRC"  # ~/.netrc entries for the indexes' hosts: "host login password", \x1f-separated
ENV_PREFIX = "ENV_"
ENV_REFERENCE = re.compile(r"\$\{(\w+)\}|\$(\w+)")  # pipenv's `${NAME}` (and `$NAME`) in source URLs


def settings_text(values: dict[str, str], variables: dict[str, str]) -> str:
    """The file: `values` (KEY -> value; empty values are left out, but PROXY's) and the ENV_s."""
    lines = [f"{k}={v}" for k, v in values.items() if v or (k == PROXY and v is not None)]
    lines += [f"{ENV_PREFIX}{k}={v}" for k, v in sorted(variables.items())]
    return "".join(line + "\n" for line in lines)


def parse_settings(text: str) -> dict[str, str]:
    settings: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            settings[key.strip()] = value.strip()
    return settings


def settings_variables(settings: dict[str, str]) -> dict[str, str]:
    """The ENV_<name> values of a settings file, by name."""
    return {k[len(ENV_PREFIX) :]: v for k, v in settings.items() if k.startswith(ENV_PREFIX)}


def referenced_names(url: str) -> list[str]:
    return [m.group(1) or m.group(2) for m in ENV_REFERENCE.finditer(url)]


def expand(url: str, variables: dict[str, str]) -> str:
    """`${NAME}` and `$NAME` replaced by the values handed over; unknown names stay as written."""
    return ENV_REFERENCE.sub(lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), url)


# The error lines: what every entry point prints for a KitError, and what the host reads back from
# the build log (the legacy builder colours the lines, BuildKit prefixes them with the step).
_KIT_LINE = re.escape(reporter.PREFIX)  # the kit's lines in a log
ERROR_PREFIX = reporter.line("error: ")
INTERNAL_ERROR_PREFIX = reporter.line("internal error: ")
HINT_PREFIX = "hint: "
_ERROR_LINE = re.compile(_KIT_LINE + r"((?:internal )?error: .*)$")
_HINT_LINE = re.compile(r"(?:^|\s)hint: (.*)$")
_ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")


def error_lines(message: str, hint: str = "") -> list[str]:
    return [ERROR_PREFIX + message] + ([HINT_PREFIX + hint] if hint else [])


def parse_error(log_text: str) -> tuple[str, str | None] | None:
    """The last error line in a build log and the hint that follows it: (message, hint or None).
    An internal error keeps its `internal error: ` prefix. None: no error line."""
    found: tuple[str, str | None] | None = None
    for line in _ANSI_CODE.sub("", log_text).splitlines():
        error = _ERROR_LINE.search(line)
        if error:
            found = (error.group(1).strip().removeprefix("error: "), None)
            continue
        hint = _HINT_LINE.search(line)
        if hint and found and found[1] is None:
            found = (found[0], hint.group(1).strip())
    return found
