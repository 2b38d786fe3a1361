"""The kit's one error tree. Every failure the user can fix is a KitError: a message, the value it
is about, a hint, and an exit code. Entry points print it as `contract.error_lines` says
(`lambda-kit: error: <what> (<value>)`, then `hint: <fix>`) and exit with its code; nothing
translates one kind into another on the way. Standard library only: it runs in the build image.

    KitError              exit 1
      UsageError          exit 2: bad arguments or settings
      LockError           the lock cannot be installed as it stands (lockfile)
      StepError           a build step failed, in the image or on the host (buildsteps)
      ZipBuildError       a zip cannot be written from these files (zipwriter)
      AuditError          a zip cannot be audited at all (auditcore)
      SourceError         a file under SRC the kit will not pack (sources)
      CommandFailed       an external command failed (runner)
      CacheUnavailable    the shared cache cannot be used: a warning (cachestores)
"""

from __future__ import annotations

from pathlib import Path

from lambda_kit.common import contract


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


class ImageUnavailable(KitError):
    """An image the build or the smoke run needs is not on the engine and cannot be pulled."""

    def __init__(self, message: str, value: str, hint: str, problem: str) -> None:
        super().__init__(message, value, hint)
        self.problem = problem  # why, in a few words (docker.pull_problem)


class ZipBuildError(KitError):
    """A zip cannot be written from these files."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)


class Interrupted(BaseException):
    """SIGTERM (a Jenkins abort) turned into an exception, so every cleanup path runs as on Ctrl-C."""
