"""The kit's one error tree. Every failure the user can fix is a KitError: a message, the value it
is about, a hint, and an exit code. Entry points print it as `contract.error_lines` says
(`lambda-kit: error: <what> (<value>)`, then `hint: <fix>`) and exit with its code; nothing
translates one kind into another on the way. Standard library only: it runs in the build image.

    KitError              exit 1
      UsageError          exit 2: bad arguments or settings
      LockError           the lock cannot be installed as it stands (lock/)
      StepError           a build step failed, in the image or on the host (steps/)
        WheelError        a wheel the kit will not unpack (steps/wheelarchive)
      ImageUnavailable    an image the build or smoke run needs cannot be had (builders/docker)
      ZipBuildError       a zip cannot be written from these files (zips/zipwriter)
      AuditError          a zip cannot be audited at all (audit/)
      SourceError         a file under SRC the kit will not pack (code/sources)
      CommandFailed       an external command failed (builders/runner)
      CacheUnavailable    the shared cache cannot be used: a warning (dependencies/cachestores)

The modules' own exceptions that are not KitErrors (NetError, ZipReadError, Unavailable, ...) are
signals between a module and its caller, which turns them into one of these.
"""

from __future__ import annotations

from pathlib import Path

from lambda_kit.common import contract

COMMAND_TAIL_LINES = 12  # of a failed command's output, kept for its message


class KitError(Exception):
    """A failure the user can fix; exit code 1."""

    exit_code = 1

    def __init__(self, message: str, value: str | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.value = value
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.value})" if self.value not in (None, "") else self.message

    def lines(self) -> list[str]:
        """What an entry point prints for it (contract.error_lines)."""
        return contract.error_lines(str(self), self.hint)

    def with_log(self, log_path: Path) -> KitError:
        """The same error, its hint pointing at the full log of the step that failed."""
        hint = f"{self.hint}  (full log: {log_path})" if self.hint else f"full log: {log_path}"
        return KitError(self.message, self.value, hint)


class UsageError(KitError):
    """Bad arguments or settings; exit code 2."""

    exit_code = 2


class LockError(KitError):
    """The lock cannot be installed as it stands. `hint` says how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)


class StepError(KitError):
    """A build step failed (in the image, or on the host for BUILDER=local)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.not_found: list[str] = []  # packages pip found no distribution for


class WheelError(StepError):
    """A wheel the kit will not unpack: one line, as every build step's error."""


class ImageUnavailable(KitError):
    """An image the build or the smoke run needs is not on the engine and cannot be pulled."""

    def __init__(self, message: str, value: str, hint: str, problem: str) -> None:
        super().__init__(message, value, hint)
        self.problem = problem  # why, in a few words (docker.pull_problem)


class ZipBuildError(KitError):
    """A zip cannot be written from these files."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)


class SourceError(KitError):
    """A file under SRC the kit will not pack as it stands."""


class AuditError(KitError):
    """The zip cannot be audited at all (missing, not a zip, over the bounds)."""

    def __init__(self, message: str, value: str, hint: str = "") -> None:
        super().__init__(message, printable(value), hint)


class CommandFailed(KitError):
    """An external command failed: its argv, its exit status (None: timed out) and its output's last
    lines. The kit itself then exits 1, as for any KitError, not with the command's status."""

    def __init__(self, argv: list[str], returncode: int | None, output: str, hint: str = "") -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        self.tail = [line for line in output.splitlines() if line.strip()][-COMMAND_TAIL_LINES:]
        what = "timed out" if returncode is None else f"exit {returncode}"
        super().__init__(f"`{' '.join(argv[:2])}` failed", what, hint)


class CacheUnavailable(KitError):
    """The store cannot be reached or read: a warning, and the build goes on without it."""


class Interrupted(BaseException):
    """SIGTERM (a Jenkins abort) turned into an exception, so every cleanup path runs as on Ctrl-C."""


def printable(text: str) -> str:
    """A name from a zip or a file, safe to print: control and other unprintable characters as \\x.., \\u...."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def hash_mismatch(what: str, got: str, expected: str = "", algorithm: str = "sha256") -> str:
    """The one wording of a file whose hash is not the lock's: what, the lock's hash when there is
    one, and the file's."""
    if expected:
        return (
            f"hash mismatch: {what} does not match Pipfile.lock "
            f"(lock: {algorithm} {expected[:16]}..., download: {got[:16]}...)"
        )
    return f"hash mismatch: {what} does not match Pipfile.lock ({algorithm} {got[:16]}...)"
