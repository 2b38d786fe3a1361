"""The kit's lock model, and what the readers of every format share to build it.

The model is Pipfile.lock's shape, which every stage reads (lockformats.py tells the formats apart
and reads them):

    _meta.sources   [{name, url, verify_ssl}], the first one the default index
    default         {name: {version "==X", hashes ["sha256:..."], index, extras, markers} or
                           {path} or {git, ref} or {file}}: what the function needs
    develop         names the project's development groups add (they must never reach the zip)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from lambda_kit.common.errors import LockError

PIPFILE, PYLOCK, UV, POETRY, REQUIREMENTS = "Pipfile.lock", "pylock.toml", "uv.lock", "poetry.lock", "requirements.txt"
FORMATS = (PIPFILE, PYLOCK, UV, POETRY, REQUIREMENTS)
PYLOCK_NAME = re.compile(r"^pylock\.([^.]+\.)?toml$")  # PEP 751: pylock.toml or pylock.<name>.toml
PYPI = "https://pypi.org/simple"
READS = "Pipfile.lock, pylock.toml, uv.lock, poetry.lock or a hash-pinned requirements.txt"


@dataclass(frozen=True)
class Selection:
    """What of a lock the zip gets beyond the production dependencies (LOCK_GROUPS, LOCK_EXTRAS), and
    which workspace member (LOCK_PACKAGE, uv.lock only)."""

    groups: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    package: str = ""

    @classmethod
    def from_environment(cls, environ) -> Selection:
        def words(name: str) -> tuple[str, ...]:
            return tuple(w for w in re.split(r"[\s,]+", environ.get(name, "")) if w)

        return cls(words("LOCK_GROUPS"), words("LOCK_EXTRAS"), environ.get("LOCK_PACKAGE", "").strip())

    def describe(self) -> str:
        parts = [
            f"groups {','.join(self.groups)}" if self.groups else "",
            f"extras {','.join(self.extras)}" if self.extras else "",
            f"member {self.package}" if self.package else "",
        ]
        return "; ".join(p for p in parts if p)


RELOCK = {
    PYLOCK: "the lock's tool again (`uv export --format pylock.toml`, `pip lock`)",
    UV: "`uv lock`",
    POETRY: "`poetry lock`",
    REQUIREMENTS: "`pip-compile --generate-hashes` (or `uv pip compile --generate-hashes`)",
}


def reworded(hint: str, fmt: str) -> str:
    """A build step's hint, which names pipenv's command (the build image only knows a Pipfile.lock),
    with the command of the format the lock really has."""
    if fmt not in RELOCK:
        return hint
    return hint.replace("run `pipenv lock`", f"run {RELOCK[fmt]}").replace("`pipenv lock`", RELOCK[fmt])


# ---- what the readers share ----


def new_model(path: Path, fmt: str) -> dict:
    data = path.read_bytes()
    return {
        "_meta": {"hash": {"sha256": hashlib.sha256(data).hexdigest()}, "sources": [], "lock-format": fmt},
        "default": {},
        "develop": {},
    }


def source_name(model: dict, url: str) -> str:
    """The name of the model's source for index `url`, added when new (pypi first of all when used)."""
    url = url.rstrip("/")
    sources = model["_meta"]["sources"]
    for source in sources:
        if source["url"].rstrip("/") == url:
            return source["name"]
    name = "pypi" if url == PYPI else f"index-{len(sources) + 1}"
    sources.append({"name": name, "url": url, "verify_ssl": True})
    return name


def finish(model: dict) -> dict:
    """PyPI first among the sources whenever a package names no index of its own (uv, pylock and
    Poetry take such a package from PyPI; the model's packages without `index` come from the first)."""
    sources = model["_meta"]["sources"]
    unpinned = any("hashes" in e and not e.get("index") for e in model["default"].values())
    if unpinned or not sources:
        source_name(model, PYPI)
    sources.sort(key=lambda s: s["name"] != "pypi")
    return model


def index_entry(version: str, hashes, index: str = "", extras=()) -> dict:
    entry = {"version": f"=={version}", "hashes": sorted(set(hashes))}
    if index:
        entry["index"] = index
    if extras:
        entry["extras"] = sorted(set(extras))
    return entry


def sha256_of(value: str) -> str | None:
    """`sha256:hex` from `sha256:hex` or `sha256=hex` (as the formats write them); None for another algorithm."""
    algorithm, _, digest = value.replace("=", ":", 1).partition(":")
    return (
        f"sha256:{digest.lower()}"
        if algorithm.lower() == "sha256" and re.fullmatch(r"[0-9a-fA-F]{64}", digest)
        else None
    )


def check_shapes(path: Path, packages, shapes: dict, hint: str) -> None:
    """Every package a table whose keys in `shapes` hold the type given (list entries: tables, or
    strings for `list[str]`), as the tool writes them: a value of another shape never silently drops
    or adds a package."""
    if not isinstance(packages, list):
        raise LockError(f"malformed {path.name}: its packages are not a list of tables ({path})", hint)
    for package in packages:
        name = package.get("name") if isinstance(package, dict) else None
        if not isinstance(name, str):
            raise LockError(f"malformed {path.name}: a package without a name ({path})", hint)
        for key, kind in shapes.items():
            value = package.get(key)
            if value is None:
                continue
            items = kind == "list[str]"
            ok = (
                isinstance(value, list) and all(isinstance(v, str if items else dict) for v in value)
                if items or kind is list
                else isinstance(value, kind)
            )
            if not ok:
                raise LockError(
                    f"malformed {path.name}: {name}'s {key} is {type(value).__name__}, not "
                    f"{getattr(kind, '__name__', kind)} ({path})",
                    hint,
                )


def load_toml(path: Path, hint: str) -> dict:
    """The TOML file's data; one line naming the file and what is wrong otherwise (`hint`: the fix)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockError(f"no {path.name} ({path})", hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LockError(f"cannot read {path.name} ({path}: {exc})", hint) from None
    try:
        import tomllib

        return tomllib.loads(text)
    except ImportError:  # Python 3.10: the TOML reader pipenv vendors (the helper's environment has it)
        from pipenv.vendor import tomlkit

        try:
            return tomlkit.parse(text).unwrap()
        except Exception as exc:  # noqa: BLE001  tomlkit's parse errors have no common base
            raise LockError(f"{path.name} is not valid TOML ({path}: {exc})", hint) from None
    except ValueError as exc:  # tomllib.TOMLDecodeError
        raise LockError(f"{path.name} is not valid TOML ({path}: {exc})", hint) from None


def vcs_url(kind: str, url: str, ref: str = "", subdirectory: str = "") -> str:
    url = url if url.startswith(f"{kind}+") else f"{kind}+{url}"
    return url + (f"@{ref}" if ref else "") + (f"#subdirectory={subdirectory}" if subdirectory else "")
