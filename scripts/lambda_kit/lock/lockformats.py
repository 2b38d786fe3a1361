"""Which lock a project has, and its reading as the kit's lock model, whatever tool wrote it.

The lock model (lockmodel.py) is Pipfile.lock's shape, which every stage reads; `load` returns it.
A Pipfile.lock is read as it is; the other formats are read for one target (the Lambda runtime and
architecture: markers, groups and extras applied by the format's own rules), so their model has
no markers left. Readers: pylock.py (PEP 751), uvlock.py, poetrylock.py, reqlock.py. Each refuses
what its tool would not install hash-checked, in one line that names what is wrong.

With neither LOCK nor a PIPFILE of its own, the kit looks in the project folder for one of
CANDIDATES and says which it used; two of them are refused unless LOCK chooses one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lambda_kit.common.errors import LockError, UsageError
from lambda_kit.lock import lockfile
from lambda_kit.lock.lockmodel import (  # noqa: F401  (the formats and the selection: said with the choice)
    FORMATS,
    PIPFILE,
    POETRY,
    PYLOCK,
    PYLOCK_NAME,
    PYPI,
    READS,
    RELOCK,
    REQUIREMENTS,
    UV,
    Selection,
    load_toml,
)


@dataclass(frozen=True)
class LockChoice:
    path: Path  # the lock file
    format: str  # one of FORMATS
    project: Path | None  # the file the lock was made from: the Pipfile, pyproject.toml; None for none
    found: bool = False  # the kit found it in the folder (no LOCK, no PIPFILE)
    note: str = ""  # what the search set aside, said with the choice

    @property
    def folder(self) -> Path:
        """Where the lock's relative paths (local path dependencies) start."""
        return self.path.parent

    def describe(self) -> str:
        return f"{self.path.name} ({self.format})" if self.path.name != self.format else self.path.name


def format_of(path: Path) -> str | None:
    name = path.name
    if name in (UV, POETRY):
        return name
    if PYLOCK_NAME.match(name):
        return PYLOCK
    if name.endswith(".txt"):
        return REQUIREMENTS
    if name.endswith(".lock"):
        return PIPFILE  # Pipfile.lock, or the lock of a Pipfile named otherwise (PIPFILE)
    return None


def project_of(path: Path, fmt: str) -> Path | None:
    if fmt == PIPFILE:
        return path.with_name(path.name[: -len(".lock")])
    if fmt in (UV, POETRY):
        return path.with_name("pyproject.toml")
    return None


def chosen(path: Path, found: bool = False) -> LockChoice:
    fmt = format_of(path)
    if fmt is None:
        raise UsageError("not a lock file the kit reads", str(path), hint=f"LOCK names a {READS}")
    return LockChoice(path, fmt, project_of(path, fmt), found)


def candidates(folder: Path) -> list[Path]:
    """The lock files in `folder`, in the order of FORMATS."""
    found = [folder / PIPFILE] + sorted(p for p in folder.glob("pylock*.toml") if PYLOCK_NAME.match(p.name))
    found += [folder / UV, folder / POETRY, folder / REQUIREMENTS]
    return [p for p in found if p.is_file()]


def choose(lock: Path | None, pipfile: Path | None, folder: Path) -> LockChoice:
    """LOCK when set; else PIPFILE's lock when PIPFILE was set; else the one lock in `folder`."""
    if lock is not None:
        if not lock.is_file():
            raise UsageError("no such lock file", str(lock), hint=f"set LOCK to a {READS}")
        return chosen(lock)
    if pipfile is not None:
        return chosen(pipfile.with_name(pipfile.name + ".lock"))
    found = candidates(folder)
    if len(found) > 1:
        # A requirements.txt without hashes beside a real lock is an export or a leftover, not a lock.
        found = [
            p for p in found if p.name != REQUIREMENTS or "--hash" in p.read_text(encoding="utf-8", errors="replace")
        ]
    note = ""
    others = [p for p in found if p.name != REQUIREMENTS]
    if len(found) == 2 and len(others) == 1 and _is_export(folder / REQUIREMENTS, others[0]):
        # `pipenv requirements --hash`, `uv export`, `poetry export`: the same lock written for pip.
        found, note = (
            others,
            f"{REQUIREMENTS} pins only what {others[0].name} locks (an export of it), not a second lock",
        )
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise UsageError(
            f"more than one lock in {folder}", names, hint=f"choose the one to build from: make LOCK={found[0].name}"
        )
    if not found:
        if (folder / "Pipfile").is_file() or not (folder / "pyproject.toml").is_file():
            return chosen(folder / PIPFILE, found=True)  # the Pipfile's flow says what is missing
        raise UsageError(
            "no lock file", str(folder), hint=f"lock the project (`uv lock`, `poetry lock`, ...): the kit reads {READS}"
        )
    choice = chosen(found[0], found=True)
    return LockChoice(choice.path, choice.format, choice.project, True, note)


PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;\\]+)", re.MULTILINE)


def _pins(path: Path) -> set[tuple[str, str]] | None:
    """(name, version) of every package the lock pins, whatever its groups and markers; None when it
    cannot be read (the build then says why)."""
    from packaging.utils import canonicalize_name

    try:
        text = path.read_text(encoding="utf-8")
        fmt = format_of(path)
        if fmt == REQUIREMENTS:
            pairs = PIN.findall(text)
        elif fmt == PIPFILE:
            import json

            data = json.loads(text)
            pairs = [
                (n, e["version"].lstrip("="))
                for part in ("default", "develop")
                for n, e in data.get(part, {}).items()
                if isinstance(e, dict) and isinstance(e.get("version"), str)
            ]
        else:
            data = load_toml(path, "")
            pairs = [
                (p["name"], p["version"])
                for p in data.get("packages" if fmt == PYLOCK else "package", [])
                if isinstance(p, dict) and isinstance(p.get("version"), str)
            ]
        return {(canonicalize_name(n), v) for n, v in pairs}
    except (OSError, ValueError, TypeError, AttributeError, LockError):
        return None


def _is_export(requirements: Path, lock: Path) -> bool:
    pins, locked = _pins(requirements), _pins(lock)
    return bool(pins) and locked is not None and pins <= locked


def read(choice: LockChoice, environment: dict | None, selection: Selection | None = None) -> lockfile.Lock:
    """The lock model of `choice` for the target `environment` (None: the running interpreter)."""
    selection = selection or Selection()
    if choice.format == PIPFILE:
        if selection.groups or selection.extras or selection.package:
            raise UsageError(
                "LOCK_GROUPS, LOCK_EXTRAS and LOCK_PACKAGE are for pylock, uv and poetry locks",
                selection.describe(),
                hint="Pipfile.lock's [packages] is what the zip gets; unset them",
            )
        return lockfile.load_pipfile_lock(choice.path)
    if not choice.path.is_file():
        raise LockError(f"no lock file ({choice.path})", f"the kit reads {READS}")
    if environment is None:
        from packaging.markers import default_environment

        environment = default_environment()
    if choice.format == PYLOCK:
        from lambda_kit.lock import pylock as reader
    elif choice.format == UV:
        from lambda_kit.lock import uvlock as reader
    elif choice.format == POETRY:
        from lambda_kit.lock import poetrylock as reader
    else:
        from lambda_kit.lock import reqlock as reader
    try:
        model = reader.read(choice.path, environment, selection)
    except (AttributeError, TypeError, KeyError, ValueError, RecursionError) as exc:
        # A value of another type or shape than the tool writes (a hand edit, a hostile file): one line.
        what = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
        raise LockError(
            f"malformed {choice.path.name}: an entry of an unexpected shape ({what}; {choice.path})",
            f"lock again with {RELOCK.get(choice.format, 'its tool')}",
        ) from None
    problem = lockfile.shape_problem(model)
    if problem:  # a reader's own mistake, never the user's: said as the kit's
        raise LockError(f"the kit misread {choice.path.name}: {problem[0]} {problem[1]}", "report it to the kit")
    return lockfile.Lock(model)


def load(path: Path, environment: dict | None = None, selection=None) -> lockfile.Lock:
    """The lock model of any lock the kit reads, chosen by its file name : a Pipfile.lock
    as it is; pylock.toml, uv.lock, poetry.lock or requirements.txt read for `environment` (the
    target's marker variables; None: the running interpreter) and `selection` (groups, extras)."""
    path = Path(path)
    if path.name.endswith(".lock") and path.name not in ("uv.lock", "poetry.lock"):
        return lockfile.load_pipfile_lock(path)
    return read(chosen(path), environment, selection or Selection())
