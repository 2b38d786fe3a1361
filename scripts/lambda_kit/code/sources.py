"""What of SRC goes into the zip: the one definition, for the build and for make's change check.

Left out by default, at any depth: VCS folders and files (.git, .gitignore, ...), bytecode
(__pycache__, *.pyc), Pipfile, Pipfile.lock and the other locks (uv.lock, poetry.lock, pylock.toml),
and everything the kit owns: its own folder when it sits inside SRC (copied in as lambda-kit/), its
files when SRC contains the folder it lives in, its state folder, the output zip with its temporary
files, and DIST. Nothing else: a user's `build/`,
`dist/` or `node_modules/` ships. EXCLUDE adds gitignore-style patterns (pathspec), relative to SRC.

Symlinks: a link whose target is inside the repository is packed as what it points to; a link
leaving the repository (unless allowed), a loop or a dangling link is an error naming the link and
its target. A name that is not valid UTF-8 is an error naming it, escaped.

    python -m lambda_kit.code.sources --stamp FILE ...   make's check: rewrite FILE only when the
                                                    selection (names, sizes, times, modes) changed
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lambda_kit.code.kitfiles import KIT_FILES
from lambda_kit.common import reporter
from lambda_kit.common.errors import KitError, SourceError
from lambda_kit.zips.zipwriter import BYTECODE_DIRS, BYTECODE_SUFFIXES

VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr"})
VCS_FILES = frozenset({".gitignore", ".gitattributes", ".gitmodules", ".hgignore", ".hgtags"})
LOCK_FILES = frozenset({"Pipfile", "Pipfile.lock", "uv.lock", "poetry.lock", "pylock.toml"})
MAX_DEPTH = 64  # deeper than any real source tree; a guard against link chains the loop check misses


@dataclass(frozen=True)
class SourceRules:
    src: Path
    repo: Path  # links may point anywhere inside it (the Pipfile's folder)
    kit_dir: Path
    state_dir: Path
    out: Path  # the zip being written; its temporary files are `.<name>.*` beside it
    dist: Path | None = None
    exclude: tuple[str, ...] = ()
    outside_links: bool = False


@dataclass
class Selection:
    dirs: list[str] = field(default_factory=list)  # zip names, ending in "/"
    files: list[tuple[str, Path, os.stat_result]] = field(default_factory=list)  # zip name, file to read, its stat

    def digest(self, rules: SourceRules) -> str:
        h = hashlib.sha256(repr((rules.exclude, rules.outside_links)).encode())
        for name in self.dirs:
            h.update(b"D" + name.encode() + b"\0")
        for name, path, st in self.files:
            h.update(
                b"F%s\0%s\0%d %d %o\0" % (name.encode(), os.fsencode(path), st.st_size, st.st_mtime_ns, st.st_mode)
            )
        return h.hexdigest()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _escaped(path: str) -> str:
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class _Walker:
    def __init__(self, rules: SourceRules) -> None:
        self.rules = rules
        self.repo = os.path.realpath(rules.repo)
        src_real = os.path.realpath(rules.src)
        kit_real = os.path.realpath(rules.kit_dir)
        owned = [rules.state_dir]
        if rules.dist is not None:
            owned.append(rules.dist)
        if _inside(kit_real, src_real) and kit_real != src_real:
            owned.append(rules.kit_dir)  # the kit copied in: all of it
        else:
            owned += [rules.kit_dir / name for name in KIT_FILES]  # the kit's own repo: its files
        self.owned = {i for i in map(_identity, owned) if i is not None}
        self.out_dir = _identity(rules.out.parent)
        self.spec = None
        if rules.exclude:
            import pathspec  # the helper's pinned dependency; only needed when EXCLUDE is set

            self.spec = pathspec.GitIgnoreSpec.from_lines(rules.exclude)

    def left_out(self, name: str, zip_name: str, is_dir: bool, ident: tuple[int, int], parent: tuple[int, int]) -> bool:
        if ident in self.owned:
            return True
        if parent == self.out_dir and (name == self.rules.out.name or name.startswith(f".{self.rules.out.name}.")):
            return True
        if is_dir:
            if name in VCS_DIRS or name in BYTECODE_DIRS:
                return True
        elif name in VCS_FILES or name in LOCK_FILES or name.endswith(BYTECODE_SUFFIXES):
            return True
        return self.spec is not None and self.spec.match_file(zip_name)

    def link_target(self, path: str, zip_name: str) -> str:
        """The real path a link resolves to, or an error naming the link and its target."""
        target = os.readlink(path)
        try:
            real = str(Path(path).resolve(strict=True))
        except FileNotFoundError:
            raise SourceError(
                "a symlink under SRC points to nothing",
                f"{zip_name} -> {target}",
                hint="remove the link or create its target",
            ) from None
        except (RuntimeError, OSError):
            raise SourceError(
                "a symlink under SRC is a loop", f"{zip_name} -> {target}", hint="remove the link"
            ) from None
        if not _inside(real, self.repo) and not self.rules.outside_links:
            raise SourceError(
                "a symlink under SRC points outside the repository",
                f"{zip_name} -> {target}",
                hint="copy the file into the repository, or set ALLOW_OUTSIDE_LINKS=1 to zip what it points to",
            )
        return real

    def walk(self, folder: str, prefix: str, chain: tuple[str, ...], out: Selection) -> None:
        if len(chain) > MAX_DEPTH:
            raise SourceError("the source tree is nested too deeply", prefix, hint="look for a symlink loop")
        parent = _identity(Path(folder))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise SourceError(
                f"cannot read a folder under SRC ({exc.strerror})",
                _escaped(prefix or "."),
                hint="fix its permissions or EXCLUDE it",
            ) from None
        for entry in entries:
            try:
                entry.name.encode("utf-8")
            except UnicodeEncodeError:
                raise SourceError(
                    "a file name under SRC is not valid UTF-8",
                    _escaped(prefix + entry.name),
                    hint="rename it (Lambda and zip tools expect UTF-8 names)",
                ) from None
            path = entry.path
            zip_name = prefix + entry.name
            if entry.is_symlink():
                real = self.link_target(path, zip_name)
                st = os.stat(real)
            else:
                real = path
                st = entry.stat(follow_symlinks=False)
            is_dir = stat.S_ISDIR(st.st_mode)
            if self.left_out(
                entry.name, zip_name + "/" if is_dir else zip_name, is_dir, (st.st_dev, st.st_ino), parent
            ):
                continue
            if is_dir:
                real_dir = os.path.realpath(real)
                # A folder link to where the walk already is, or above it, would copy SRC into itself.
                if entry.is_symlink() and any(_inside(seen, real_dir) for seen in chain):
                    raise SourceError(
                        "a symlink under SRC is a loop", f"{zip_name} -> {os.readlink(path)}", hint="remove the link"
                    )
                out.dirs.append(zip_name + "/")
                self.walk(real, zip_name + "/", (*chain, real_dir), out)
            elif stat.S_ISREG(st.st_mode):
                out.files.append((zip_name, Path(real), st))
            else:
                raise SourceError("not a regular file under SRC", zip_name, hint="remove it or EXCLUDE it")


def select(rules: SourceRules) -> Selection:
    """Every folder and file of SRC that goes into the zip, in name order."""
    selection = Selection()
    _Walker(rules).walk(str(rules.src), "", (os.path.realpath(rules.src),), selection)
    return selection


def stage_code(rules: SourceRules, dest: Path) -> Selection:
    """Copy the selection to `dest` (links resolved, modes kept): what the zip writer reads."""
    selection = select(rules)
    dest.mkdir(parents=True, exist_ok=True)
    for name in selection.dirs:
        (dest / name).mkdir()
    for name, path, _ in selection.files:
        shutil.copy2(path, dest / name)
    return selection


def write_stamp(rules: SourceRules, stamp: Path) -> None:
    """For make: the stamp's text is the selection's digest, rewritten only when it changed, so its
    date says when the sources last changed (without passing a file name through make)."""
    digest = select(rules).digest(rules) + "\n"
    try:
        if stamp.read_text(encoding="ascii") == digest:
            return
    except (OSError, UnicodeDecodeError):
        pass
    stamp.parent.mkdir(parents=True, exist_ok=True)
    tmp = stamp.with_name(f".{stamp.name}.{os.getpid()}.tmp")
    tmp.write_text(digest, encoding="ascii")
    tmp.replace(stamp)


def rules_from_environment(src: Path, pipfile: Path, kit_dir: Path, state_dir: Path, out: Path) -> SourceRules:
    """The rules for SRC from the settings make exports (EXCLUDE, ALLOW_OUTSIDE_LINKS, DIST)."""
    dist = os.environ.get("DIST", "").strip()
    return SourceRules(
        src=src.absolute(),
        repo=pipfile.absolute().parent,
        kit_dir=kit_dir,
        state_dir=state_dir.absolute(),
        out=out.absolute(),
        dist=Path(dist).absolute() if dist else None,
        exclude=tuple(os.environ.get("EXCLUDE", "").split()),
        outside_links=os.environ.get("ALLOW_OUTSIDE_LINKS", "0").strip() == "1",
    )


def _interrupted(signum, frame) -> None:
    """The stamp is written by rename, so stopping anywhere loses nothing: one line, no traceback."""
    print(
        reporter.line(f"error: interrupted ({signal.Signals(signum).name}) while looking at the sources"),
        file=sys.stderr,
    )
    os._exit(130 if signum == signal.SIGINT else 143)


def main(argv: list[str] | None = None) -> int:
    # make starts this with SIGINT/SIGTERM ignored (or the launcher with them held) so that the
    # interpreter's start-up cannot die with a traceback; from here on they stop it cleanly.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupted)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    parser = argparse.ArgumentParser(prog="lambda_kit.code.sources")
    for option in ("--src", "--pipfile", "--state-dir", "--out", "--stamp"):
        parser.add_argument(option, type=Path, required=True)
    args = parser.parse_args(argv)
    kit_dir = Path(__file__).resolve().parents[3]
    try:
        if not args.src.is_dir():
            raise SourceError(
                "the source folder does not exist", str(args.src), hint="set SRC to the folder that holds your handler"
            )
        write_stamp(rules_from_environment(args.src, args.pipfile, kit_dir, args.state_dir, args.out), args.stamp)
    except KitError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
