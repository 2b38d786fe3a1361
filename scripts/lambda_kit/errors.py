"""Typed errors. main() prints `lambda-kit: error: <what> (<value>)` and `hint: <fix>`."""

from __future__ import annotations


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


class UsageError(KitError):
    """Bad arguments or settings; exit code 2."""

    exit_code = 2


class Interrupted(BaseException):
    """SIGTERM (a Jenkins abort) turned into an exception, so every cleanup path runs as on Ctrl-C."""
