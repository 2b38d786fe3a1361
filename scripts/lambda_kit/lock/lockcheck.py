"""The lock checked against the Pipfile, on the host, before any build: one check for both builders,
and a stale lock stops the build before Docker is asked anything.

The lock is never re-resolved. The Pipfile's hash is pipenv's own: `lockhash` runs in the helper's
environment, which has the pinned pipenv (scripts/requirements.txt). A lock is current when its
hash is today's (what `pipenv verify` compares) or the one older pipenv wrote before it normalised
names, which is just as true to the Pipfile; and every name in [packages] must be in its `default`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from lambda_kit.common import reporter
from lambda_kit.common.errors import StepError
from lambda_kit.common.processes import output_of, start_group, stop_group
from lambda_kit.lock import lockfile
from lambda_kit.lock.lockfile import Lock


class PendingCheck:
    """pipenv's facts about the Pipfile, computed in a process of its own while the caller goes on
    (the local builder downloads meanwhile); `verify` waits for them. Its own process group, as every
    tool: `stop` (and an interrupt) ends it at once."""

    def __init__(self, pipfile: Path) -> None:
        env = {**os.environ, "PIPENV_IGNORE_VIRTUALENVS": "1", "PIPENV_NOSPIN": "1", "PIPENV_YES": "1", "NO_COLOR": "1"}
        script = Path(__file__).with_name("lockhash.py")
        self.verified = False
        self.process = start_group([sys.executable, str(script), str(pipfile)], env)

    def stop(self) -> None:
        if self.process.poll() is None:
            stop_group(self.process)
        self.process.stdout.close()

    def verify(self, lock: Lock, say: Callable[[str], None], log: Callable[[str], object] | None = None) -> None:
        """Raises StepError when the lock does not belong to the Pipfile; says which hash matched.
        Once it has passed, asking again is free and silent."""
        if self.verified:
            return
        check_facts(output_of(self, log).splitlines(), lock, say)
        self.verified = True


class NoCheck:
    """pylock.toml and requirements.txt: the file is the lock, there is no project file it could be
    out of date with."""

    def __init__(self, choice) -> None:
        self.choice, self.said = choice, False

    def stop(self) -> None:
        pass

    def verify(self, lock: Lock, say: Callable[[str], None], log: Callable[[str], object] | None = None) -> None:
        if not self.said:
            say(reporter.line(f"{self.choice.path.name} is the lock itself (no project file to check it against)"))
            self.said = True


def start(choice):
    """The check of the lock against its project file, as its own tool decides, started now: pipenv's
    hash for a Pipfile.lock, `uv lock --check` for a uv.lock, Poetry's content hash for a poetry.lock."""
    from lambda_kit.lock import lockformats

    if isinstance(choice, Path):  # a Pipfile
        return PendingCheck(choice)
    if choice.format == lockformats.PIPFILE:
        return PendingCheck(choice.project)
    if choice.format == lockformats.UV:
        from lambda_kit.lock.uvlock import UvCheck

        return UvCheck(choice.path)
    if choice.format == lockformats.POETRY:
        from lambda_kit.lock.poetrylock import PoetryCheck

        return PoetryCheck(choice.path)
    return NoCheck(choice)


def check_facts(lines: list[str], lock: Lock, say: Callable[[str], None]) -> None:
    try:
        facts = json.loads(next((line for line in reversed(lines) if line.startswith("{")), ""))
    except ValueError:
        tail = "; ".join(line.strip() for line in lines[-3:] if line.strip())
        raise StepError("pipenv could not compute the Pipfile's hash", f"pipenv said: {tail[-300:]}") from None
    if "no_pipenv" in facts:
        raise StepError(
            f"the helper's environment has no pipenv ({sys.executable}: {facts['no_pipenv']})",
            "install scripts/requirements.txt into it, or unset LAMBDA_KIT_VENV to let the kit make its own",
        )
    if "error" in facts:
        raise StepError(f"pipenv cannot read the Pipfile ({facts['error']})", "fix the Pipfile, then run `pipenv lock`")
    recorded = lock.recorded_hash
    if recorded == facts["current"]:
        say(reporter.line("lock verified against Pipfile (pipenv's hash)"))
    elif recorded == facts["older"]:
        say(reporter.line("lock verified against Pipfile (the hash older pipenv wrote, before names were normalised)"))
    else:
        say(
            reporter.line(
                f"lock hash {recorded}, Pipfile hash {facts['current']} (pipenv now), {facts['older']} (older pipenv)"
            )
        )
        raise StepError(
            f"Pipfile.lock is out of date: its hash {recorded[:12]}... matches neither the Pipfile's "
            f"{facts['current'][:12]}... (pipenv now) nor {facts['older'][:12]}... (older pipenv)",
            "run `pipenv lock` and commit the new Pipfile.lock (the full hashes are in the line above)",
        )
    missing = lockfile.missing_from_default(lock, facts["packages"])
    if missing:
        raise StepError(
            f"Pipfile.lock's default lacks [packages] of the Pipfile ({', '.join(missing)})",
            "run `pipenv lock` and commit the new Pipfile.lock",
        )
