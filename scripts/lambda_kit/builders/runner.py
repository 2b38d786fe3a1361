"""Every external command the helper runs passes through `Runner`, built on `sh`.

Defaults are baked once: no TTY (Jenkins has none), output captured or sent to a log file, the
full argv logged at debug level. Failures become `CommandFailed` carrying the LAST lines of
the command's output, where docker puts the cause (sh's own message keeps the beginning).
A command still running when the helper is interrupted (Ctrl-C, SIGTERM) is killed first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from lambda_kit.common.errors import CommandFailed, Interrupted

log = logging.getLogger("lambda_kit")
logging.getLogger("sh").setLevel(logging.WARNING)


class Run(Protocol):
    def __call__(
        self,
        argv: list[str],
        *,
        log_file: Path | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> str: ...


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data or ""


class _Interruption:
    """SIGINT/SIGTERM while a command runs: the command is stopped and Interrupted is raised once
    it has ended, from our own code, never from inside sh's machinery (which may swallow it)."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.in_command = False
        self.running = None
        self.committed = False  # the zip is (being) replaced: a signal now is noted, never raised

    def handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.committed:
            self.signal_name = name
            return
        if not self.in_command:
            raise Interrupted(name)
        self.signal_name = name
        self._stop()

    def _stop(self) -> None:
        running = self.running
        if running is not None and running.process.is_alive()[0]:
            running.terminate()  # docker's client cancels the build and exits

    def raise_if_interrupted(self) -> None:
        if self.signal_name:
            name, self.signal_name = self.signal_name, None
            raise Interrupted(name)


interruption = _Interruption()


@contextlib.contextmanager
def committing():
    """Around the atomic replace of a zip: a signal meanwhile (or after it) does not raise, so
    nothing after the replace can fail the run; the run ends normally and says it was interrupted."""
    interruption.committed = True
    try:
        yield
    except BaseException:
        interruption.committed = False
        interruption.raise_if_interrupted()
        raise


def install_signal_handlers() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interruption.handle)


class Runner:
    """The real `Run`: one `sh` call per command, one string per argument."""

    def __call__(self, argv, *, log_file=None, timeout=None, env=None):
        import sh  # here, not at the top: a build that runs no command (BUILDER=local) never loads it

        log.debug("run: %s", shlex.join(argv))
        try:
            command = sh.Command(argv[0])
        except sh.CommandNotFound:
            raise CommandFailed(argv, 127, f"{argv[0]}: command not found") from None
        options = {"_tty_out": False, "_tty_in": False, "_in": "", "_bg": True, "_bg_exc": False}
        if timeout:
            options["_timeout"] = timeout
        if env is not None:
            options["_env"] = {**os.environ, **env}
        out = None
        if log_file is not None:
            out = open(log_file, "ab")
            options.update(_out=out, _err_to_out=True)
        interruption.in_command = True
        try:
            running = interruption.running = command(*argv[1:], **options)
            if interruption.signal_name:  # arrived while the process was starting
                interruption._stop()
            try:
                running.wait()
            except (sh.ErrorReturnCode, sh.SignalException, sh.TimeoutException):
                interruption.raise_if_interrupted()
                raise
            interruption.raise_if_interrupted()
        except sh.TimeoutException as exc:
            raise CommandFailed(argv, None, _text(getattr(exc, "full_cmd", ""))) from None
        except sh.ErrorReturnCode as exc:
            output = _text(exc.stdout) + _text(exc.stderr)
            if log_file is not None:
                output = Path(log_file).read_text(encoding="utf-8", errors="replace")
            raise CommandFailed(argv, exc.exit_code, output) from None
        except sh.SignalException as exc:
            raise CommandFailed(argv, exc.exit_code, _text(exc.stderr)) from None
        finally:
            interruption.in_command = False
            interruption.running = None
            if out is not None:
                out.close()
        return "" if log_file is not None else _text(running.stdout)
