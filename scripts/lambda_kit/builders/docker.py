"""The docker lifecycle: preflight, build, and a container that is always removed.

Nothing here assumes the engine is local: files reach the engine through the build context and
leave it through `docker cp`, so DOCKER_HOST pointing at a remote engine works. No bind mounts.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from lambda_kit.builders.runner import Run
from lambda_kit.common import reporter, runtimes
from lambda_kit.common.errors import CommandFailed, ImageUnavailable, KitError

LABEL = "org.lambda-kit.kit"
CHECKOUT_LABEL = "org.lambda-kit.checkout"
PREFLIGHT_TIMEOUT = 20  # seconds; an unreachable daemon must fail fast, not hang the job


@dataclass(frozen=True)
class Engine:
    server_version: str
    buildkit: bool
    arch: str = "x86_64"  # Lambda's name for the engine's architecture

    @property
    def builder_name(self) -> str:
        return "BuildKit" if self.buildkit else "legacy builder"


def preflight(run: Run, environ: dict[str, str] | None = None) -> Engine:
    """Docker present and its daemon answering, and which builder `docker build` will use."""
    environ = os.environ if environ is None else environ
    if shutil.which("docker", path=environ.get("PATH")) is None:
        raise KitError(
            "docker is not installed or not on PATH",
            hint="install Docker and make sure `docker version` works, or build without it: "
            "make package BUILDER=local (needs a binary wheel of every package)",
        )
    try:
        answer = run(
            ["docker", "version", "--format", "{{.Server.Version}} {{.Server.Arch}}"], timeout=PREFLIGHT_TIMEOUT
        )
    except CommandFailed as exc:
        where = environ.get("DOCKER_HOST") or "the local socket"
        raise KitError(
            "the Docker daemon is not reachable",
            where,
            hint="start Docker (e.g. `sudo systemctl start docker`), or check DOCKER_HOST and your permissions",
        ) from exc
    version, _, machine = answer.strip().partition(" ")
    return Engine(version, _uses_buildkit(run, environ), runtimes.arch_of_machine(machine) or "x86_64")


def probe(run: Run, environ: dict[str, str] | None = None) -> tuple[Engine | None, str]:
    """For BUILDER=auto: the engine when one answers, else None and why not (for the fallback line)."""
    try:
        return preflight(run, environ), ""
    except KitError as exc:
        return None, str(exc)


def _uses_buildkit(run: Run, environ) -> bool:
    """DOCKER_BUILDKIT decides when set, as it does for docker itself; otherwise BuildKit is used
    when the client has the buildx plugin (docker 23+ builds with it by default)."""
    choice = environ.get("DOCKER_BUILDKIT", "").strip().lower()
    if choice in ("1", "true"):
        return True
    if choice in ("0", "false"):
        return False
    try:
        run(["docker", "buildx", "version"], timeout=PREFLIGHT_TIMEOUT)
        return True
    except CommandFailed:
        return False


def reference_component(text: str, fallback: str = "project", limit: int = 64) -> str:
    """`text` reduced to one path component of a Docker image reference: lower-case ASCII letters
    and digits joined by single dashes (the grammar also allows `.`, `_` and `__`, but not every
    run of them, so the kit uses only `-`), at most `limit` characters, never empty."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    return slug[:limit].strip("-") or fallback


# Why a pull failed, from docker's own words; the first class that matches wins.
INVALID_NAME = "not a valid image name"
PULL_PROBLEMS = (
    (INVALID_NAME, ("invalid reference format", "invalid tag", "repository name must")),
    (
        "no network to the registry",
        (
            "no such host",
            "dial tcp",
            "i/o timeout",
            "connection refused",
            "network is unreachable",
            "tls handshake timeout",
            "server misbehaving",
            "client.timeout",
            "context deadline exceeded",
            "connection reset",
        ),
    ),
    ("not found", ("manifest unknown", "not found", "does not exist")),
    ("access denied", ("unauthorized", "denied", "authentication required", "forbidden", "no basic auth")),
)


def pull_problem(output: str) -> str:
    lowered = output.lower()
    for reason, needles in PULL_PROBLEMS:
        if any(needle in lowered for needle in needles):
            return reason
    return "the registry refused it"


def pull_hint(image: str, setting: str, alternative: str = "") -> str:
    return (
        f"`docker pull {image}` shows docker's answer (`docker login` for a private registry); "
        f"or set {setting} to an image the engine has{alternative}"
    )


def ensure_image(run: Run, image: str, what: str, setting: str, say, alternative: str = "") -> None:
    """The image on the engine before anything is built on it: present, or pulled now. A pull that
    fails is one line naming the image and why (no network, not found, access denied), not docker's
    log. `what` says what the image is for, `setting` which setting chose it."""
    try:
        run(["docker", "image", "inspect", "--format", "{{.Id}}", image], timeout=PREFLIGHT_TIMEOUT)
        return
    except CommandFailed:
        pass
    say(reporter.line(f"pulling the {what} {image} (once per engine)"))
    try:
        run(["docker", "pull", image], timeout=1800)
    except CommandFailed as exc:
        problem = pull_problem(exc.output)
        raise ImageUnavailable(
            f"cannot pull the {what}: {problem}",
            image,
            hint=pull_hint(image, setting, alternative),
            problem=problem,
        ) from None


SHM_SIZE = "2g"


@dataclass
class BuildRequest:
    context: Path
    tag: str
    build_args: dict[str, str]
    labels: dict[str, str]
    secrets: dict[str, Path] = field(default_factory=dict)  # BuildKit only
    platform: str | None = None
    network: str | None = None  # "host": the build's RUN steps use the host's network (its 127.0.0.1)


def build_command(engine: Engine, request: BuildRequest) -> tuple[list[str], dict[str, str]]:
    """argv and extra environment for `docker build`."""
    argv = ["docker", "build", "--file", str(request.context / "Dockerfile"), "--tag", request.tag]
    env = {"DOCKER_BUILDKIT": "1" if engine.buildkit else "0"}
    if engine.buildkit:
        argv += ["--progress", "plain"]
        for name, path in sorted(request.secrets.items()):
            argv += ["--secret", f"id={name},src={path}"]
    else:
        argv += ["--force-rm"]  # no intermediate container left behind, even when a step fails
        # Room in the build containers' /dev/shm for the dependency tree (BuildKit has a tmpfs mount
        # in the Dockerfile instead): a limit, not a reservation.
        argv += ["--shm-size", SHM_SIZE]
    if request.platform:
        argv += ["--platform", request.platform]
    if request.network:
        argv += ["--network", request.network]
    for key, value in request.build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in request.labels.items():
        argv += ["--label", f"{key}={value}"]
    argv.append(str(request.context))
    return argv, env


class ContainerSession:
    """`docker create` on enter, `docker rm --force` on exit, whatever happened in between
    (an error, Ctrl-C, SIGTERM). The container is never started: `docker cp` reads a stopped one.
    LAMBDA_KIT_KEEP_CONTAINER=1 keeps it for debugging."""

    def __init__(
        self,
        run: Run,
        image: str,
        labels: dict[str, str],
        name_prefix: str = "lambda-kit",
        command: tuple[str, ...] = ("/bin/true",),
        options: tuple[str, ...] = (),
    ) -> None:
        self.run = run
        self.image = image
        self.labels = labels
        self.name = f"{name_prefix}-{secrets.token_hex(6)}"
        self.command = command
        self.options = options
        self.created = False

    def __enter__(self) -> ContainerSession:
        argv = ["docker", "create", "--name", self.name]
        for key, value in self.labels.items():
            argv += ["--label", f"{key}={value}"]
        # Some images (an imported root file system) have no command; create refuses them without one.
        argv += [*self.options, self.image, *self.command]
        self.created = True  # from here on, remove it: a create that failed or timed out may have made it
        try:
            self.run(argv, timeout=120)
        except BaseException:
            self.remove()
            raise
        return self

    def copy_out(self, path_in_container: str, dest: Path) -> None:
        self.run(["docker", "cp", f"{self.name}:{path_in_container}", str(dest)], timeout=600)

    def copy_in(self, source: Path, path_in_container: str) -> None:
        self.run(["docker", "cp", str(source), f"{self.name}:{path_in_container}"], timeout=600)

    def start_attached(self, timeout: float) -> str:
        """Start the created container and wait for it; its output (stdout) is returned."""
        return self.run(["docker", "start", "--attach", self.name], timeout=timeout)

    def __exit__(self, *exc_info) -> None:
        self.remove()

    def remove(self) -> None:
        if not self.created or os.environ.get("LAMBDA_KIT_KEEP_CONTAINER") == "1":
            return
        try:
            self.run(["docker", "rm", "--force", self.name], timeout=120)
        except CommandFailed as exc:
            if not any("No such container" in line for line in exc.tail):
                raise


def prune_superseded_images(run: Run, checkout_id: str) -> None:
    """Remove this checkout's untagged images (earlier builds under the same tag). Best effort."""
    try:
        run(
            [
                "docker",
                "image",
                "prune",
                "--force",
                "--filter",
                "dangling=true",
                "--filter",
                f"label={CHECKOUT_LABEL}={checkout_id}",
            ],
            timeout=120,
        )
    except CommandFailed:
        pass
