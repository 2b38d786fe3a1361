"""poetry.lock read as `poetry install --only main` installs it: the main group only (LOCK_GROUPS adds
groups), the extras LOCK_EXTRAS names (declared in pyproject.toml), markers applied for the target.

Locks Poetry 2 writes (lock-version 2.1) record each package's groups and markers: they are read as
they are. Older locks are followed from pyproject.toml's dependencies through each package's
locked dependencies, as Poetry 1's installer walks them.

Staleness is what `poetry check --lock` decides: the lock's `content-hash` against the SHA-256 of
pyproject.toml's relevant sections, as JSON with sorted keys. No library outside Poetry computes
it, so `content_hash` below is the kit's own code for Poetry's documented and observed rule
(checked against locks Poetry 1.x and 2.5 wrote, tests/projects/locks):
  [project]: requires-python, dependencies, optional-dependencies (those present);
  [dependency-groups] when not empty (Poetry 2.3 and later; locks written before are compared without it);
  [tool.poetry]: dependencies, source, extras, dev-dependencies (present as null when absent,
  unless [project] or [dependency-groups] has content), group (when present);
  all under {"project", "dependency-groups", "tool": {"poetry": ...}} when [project] or the groups
  have content, else [tool.poetry]'s part alone at the top level.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from lambda_kit.common import reporter
from lambda_kit.common.errors import LockError, StepError, UsageError
from lambda_kit.lock import lockmodel
from lambda_kit.lock.lockfile import Lock

HINT = "run `poetry lock` and commit poetry.lock"
LEGACY_KEYS = ("dependencies", "source", "extras", "dev-dependencies")
PROJECT_KEYS = ("requires-python", "dependencies", "optional-dependencies")
SHAPES = {
    "version": str,
    "groups": "list[str]",
    "markers": (str, dict),
    "files": list,
    "dependencies": dict,
    "extras": dict,
    "source": dict,
    "python-versions": str,
}


def read(path: Path, environment: dict, selection: lockmodel.Selection) -> dict:
    data = lockmodel.load_toml(path, HINT)
    pyproject = lockmodel.load_toml(path.with_name("pyproject.toml"), HINT)
    if selection.package:
        raise UsageError("LOCK_PACKAGE is for uv.lock workspaces", selection.package, hint="unset it for a poetry.lock")
    packages = data.get("package", [])
    lockmodel.check_shapes(path, packages, SHAPES, HINT)
    if not all(isinstance(p.get("version"), str) for p in packages):
        raise LockError(f"malformed poetry.lock: [[package]] entries without a version ({path})", HINT)
    groups = {"main", *selection.groups}
    extras = {canonicalize_name(e) for e in selection.extras}
    _check_selection(pyproject, selection)
    files = data.get("metadata", {}).get("files", {})  # lock-version 1.x keeps them there
    model = lockmodel.new_model(path, lockmodel.POETRY)
    if all("groups" in p for p in packages):
        chosen = {id(p): (p, set()) for p in packages if _in_groups(p, groups, extras, environment)}
        dev = {
            id(p): (p, set())
            for p in packages
            if _in_groups(p, {g for q in packages for g in q["groups"]}, extras, environment)
        }
    else:
        walk = _Walk(path, packages, environment)
        chosen = walk.run(_roots(pyproject, groups, extras, environment))
        dev = _Walk(path, packages, environment).run(
            _roots(pyproject, set(_group_names(pyproject)), extras, environment)
        )
    for package, asked in sorted(chosen.values(), key=lambda p: canonicalize_name(p[0]["name"])):
        model["default"][canonicalize_name(package["name"])] = _entry(path, model, package, asked, files)
    for package, _ in dev.values():
        name = canonicalize_name(package["name"])
        if name not in model["default"]:
            model["develop"][name] = {"version": f"=={package['version']}"}
    return lockmodel.finish(model)


def _group_names(pyproject: dict) -> list[str]:
    poetry = pyproject.get("tool", {}).get("poetry", {})
    names = ["main", *poetry.get("group", {}), *pyproject.get("dependency-groups", {})]
    return names + (["dev"] if "dev-dependencies" in poetry else [])


def _declared_extras(pyproject: dict) -> set[str]:
    return {
        canonicalize_name(e)
        for e in (
            *pyproject.get("project", {}).get("optional-dependencies", {}),
            *pyproject.get("tool", {}).get("poetry", {}).get("extras", {}),
        )
    }


def _check_selection(pyproject: dict, selection: lockmodel.Selection) -> None:
    known_groups, known_extras = _group_names(pyproject), _declared_extras(pyproject)
    unknown = [g for g in selection.groups if g not in known_groups]
    unknown += [e for e in selection.extras if canonicalize_name(e) not in known_extras]
    if unknown:
        raise UsageError(
            "pyproject.toml declares no such group or extra",
            ", ".join(unknown),
            hint=f"groups: {', '.join(known_groups)}; extras: {', '.join(sorted(known_extras)) or '(none)'}",
        )


def _evaluate(marker: str, environment: dict, extras: set[str], path: Path | None = None) -> bool:
    try:
        parsed = Marker(marker)
    except InvalidMarker as exc:
        raise LockError(
            f"malformed poetry.lock: marker {marker!r} ({str(exc).splitlines()[0]}; {path})", HINT
        ) from None
    return any(parsed.evaluate(dict(environment, extra=e)) for e in (extras | {""}))


def _in_groups(package: dict, groups: set[str], extras: set[str], environment: dict) -> bool:
    """Lock-version 2.1: the package's groups meet `groups` and its marker for one of them holds."""
    markers = package.get("markers")
    for group in set(package.get("groups", [])) & groups:
        marker = markers.get(group) if isinstance(markers, dict) else markers
        if not marker or _evaluate(marker, environment, extras):
            return True
    return False


# ---- locks without groups and markers: walked from pyproject.toml ----


def _roots(pyproject: dict, groups: set[str], extras: set[str], environment: dict) -> list[tuple[str, dict]]:
    """(name, Poetry-style dependency spec) for what the project itself asks in `groups` and `extras`."""
    project, poetry = pyproject.get("project", {}), pyproject.get("tool", {}).get("poetry", {})
    roots: list[tuple[str, dict]] = []
    if "main" in groups:
        if "dependencies" in project:
            roots += [_pep508(r) for r in project["dependencies"]]
            for extra, requirements in project.get("optional-dependencies", {}).items():
                if canonicalize_name(extra) in extras:
                    roots += [_pep508(r) for r in requirements]
        else:
            activated = {
                canonicalize_name(n)
                for e, names in poetry.get("extras", {}).items()
                if canonicalize_name(e) in extras
                for n in names
            }
            for name, spec in poetry.get("dependencies", {}).items():
                if name != "python":
                    roots += [
                        (name, dict(s, optional=False) if canonicalize_name(name) in activated else s)
                        for s in _specs(spec)
                    ]
    sections = {g: s.get("dependencies", {}) for g, s in poetry.get("group", {}).items()}
    if "dev-dependencies" in poetry:
        sections.setdefault("dev", {}).update(poetry["dev-dependencies"])
    for group in groups - {"main"}:
        roots += [(n, s) for n, spec in sections.get(group, {}).items() for s in _specs(spec)]
        roots += [_pep508(r) for r in pyproject.get("dependency-groups", {}).get(group, []) if isinstance(r, str)]
    return roots


def _pep508(text: str) -> tuple[str, dict]:
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise LockError(
            f"pyproject.toml has a dependency that is not PEP 508 ({text!r}: {exc})", "fix pyproject.toml"
        ) from None
    spec = {"version": str(requirement.specifier) or "*", "extras": sorted(requirement.extras)}
    if requirement.marker is not None:
        spec["markers"] = str(requirement.marker)
    return requirement.name, spec


def _specs(spec) -> list[dict]:
    if isinstance(spec, str):
        return [{"version": spec}]
    if isinstance(spec, dict):
        return [spec]
    if isinstance(spec, list):
        return [s if isinstance(s, dict) else {"version": str(s)} for s in spec]
    return []


class _Walk:
    def __init__(self, path: Path, packages: list[dict], environment: dict) -> None:
        self.path, self.environment = path, environment
        self.by_name: dict[str, list[dict]] = {}
        for package in packages:
            self.by_name.setdefault(canonicalize_name(package["name"]), []).append(package)

    def applies(self, spec: dict, extras: set[str]) -> bool:
        if spec.get("markers") and not _evaluate(spec["markers"], self.environment, extras, self.path):
            return False
        if spec.get("python") and not allows(spec["python"], self.environment["python_full_version"]):
            return False
        return not spec.get("platform") or spec["platform"] == self.environment.get("sys_platform")

    def locked(self, name: str, spec: dict) -> dict | None:
        found = self.by_name.get(canonicalize_name(name), [])
        if len(found) > 1:
            found = [p for p in found if allows(spec.get("version", "*"), p["version"])] or found
        if len(found) > 1:
            python = self.environment["python_full_version"]
            found = [p for p in found if allows(p.get("python-versions", "*"), python)] or found
        return found[0] if found else None

    def run(self, roots: list[tuple[str, dict]]) -> dict[int, tuple[dict, set]]:
        reached: dict[int, tuple[dict, set]] = {}
        queue = [(n, s) for n, s in roots if not s.get("optional") and self.applies(s, set())]
        while queue:
            name, spec = queue.pop()
            package = self.locked(name, spec)
            if package is None:
                raise LockError(
                    f"poetry.lock lacks {name}, which pyproject.toml or a locked package asks for ({self.path})", HINT
                )
            extras = {canonicalize_name(e) for e in spec.get("extras", [])}
            seen = reached.get(id(package))
            if seen is not None and extras <= seen[1]:
                continue
            asked = (seen[1] if seen else set()) | extras
            reached[id(package)] = (package, asked)
            activated = {
                canonicalize_name(re.split(r"[\s(\[;<>=!~]", n, maxsplit=1)[0])
                for e, names in package.get("extras", {}).items()
                if canonicalize_name(e) in asked
                for n in names
            }
            for dep_name, dep_spec in package.get("dependencies", {}).items():
                for candidate in _specs(dep_spec):
                    if candidate.get("optional") and canonicalize_name(dep_name) not in activated:
                        continue
                    if self.applies(candidate, asked):
                        queue.append((dep_name, candidate))
                        break
        return reached


def allows(constraint: str, version: str) -> bool:
    """Whether Poetry's version constraint (`^1.2`, `~1.2`, `>=1,<2`, `1.2.*`, `a || b`, PEP 440) takes `version`."""
    try:
        parsed = Version(version)
    except InvalidVersion:
        return True
    for alternative in str(constraint).split("||"):
        terms = [t for t in re.split(r"[,\s]+(?=[<>=!~^*\d])", alternative.strip()) if t.strip()]
        try:
            if all(_term(t.replace(" ", "")).contains(parsed, prereleases=True) for t in terms or ["*"]):
                return True
        except (InvalidSpecifier, InvalidVersion):
            return True  # a constraint the kit cannot read never drops a locked package
    return False


def _term(term: str) -> SpecifierSet:
    if term in ("*", ""):
        return SpecifierSet()
    if term.startswith(("^", "~")) and not term.startswith("~="):
        caret, base = term[0] == "^", Version(term.lstrip("^~"))
        parts = list(base.release) + [0] * (3 - len(base.release))
        if caret:
            first = next((i for i, p in enumerate(parts[: len(base.release)]) if p), len(base.release) - 1)
            upper = parts[:first] + [parts[first] + 1]
        else:
            upper = [parts[0] + 1] if len(base.release) == 1 else [parts[0], parts[1] + 1]
        return SpecifierSet(f">={base},<{'.'.join(map(str, upper))}")
    if term[0].isdigit():
        return SpecifierSet(f"=={term}")
    return SpecifierSet(term)


def _entry(path: Path, model: dict, package: dict, extras: set, files: dict) -> dict:
    name, source = package["name"], package.get("source") or {}
    kind = source.get("type", "")
    if kind == "git":
        ref = source.get("resolved_reference") or source.get("reference", "")
        return {"file": lockmodel.vcs_url("git", source["url"], ref, source.get("subdirectory") or "")}
    if kind in ("directory", "file"):
        return {"path": source["url"]}
    listed = package.get("files") or files.get(package["name"]) or files.get(canonicalize_name(name)) or []
    hashes = [h for f in listed if isinstance(f, dict) and (h := lockmodel.sha256_of(f.get("hash", "")))]
    if kind == "url":
        return {"file": source["url"] + (f"#sha256={hashes[0].split(':', 1)[1]}" if hashes else "")}
    if not hashes:
        raise LockError(f"{name}=={package['version']} has no sha256 hashes in poetry.lock ({path})", HINT)
    index = lockmodel.source_name(model, source["url"]) if kind == "legacy" and source.get("url") else ""
    return lockmodel.index_entry(package["version"], hashes, index, extras)


# ---- staleness: the content hash ----


def content_hash(pyproject: dict, with_groups: bool = True) -> str:
    project = {k: pyproject["project"][k] for k in PROJECT_KEYS if pyproject.get("project", {}).get(k) is not None}
    groups = pyproject.get("dependency-groups", {}) if with_groups else {}
    poetry_section = pyproject.get("tool", {}).get("poetry", {})
    poetry = {}
    for key in (*LEGACY_KEYS, "group"):
        value = poetry_section.get(key)
        if value is None and (key not in LEGACY_KEYS or project or groups):
            continue
        poetry[key] = value
    content: dict = {}
    if project:
        content["project"] = project
    if groups:
        content["dependency-groups"] = groups
    content = dict(content, tool={"poetry": poetry}) if content else poetry
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class PoetryCheck:
    """The lock's content-hash against pyproject.toml's; `verify` raises when they differ."""

    def __init__(self, lock: Path) -> None:
        self.lock, self.verified = lock, False

    def stop(self) -> None:
        pass

    def verify(self, lock: Lock, say: Callable[[str], None], log: Callable[[str], object] | None = None) -> None:
        if self.verified:
            return
        data = lockmodel.load_toml(self.lock, HINT)
        pyproject = lockmodel.load_toml(self.lock.with_name("pyproject.toml"), HINT)
        recorded = data.get("metadata", {}).get("content-hash", "")
        try:
            current = content_hash(pyproject)
            before_groups = content_hash(pyproject, with_groups=False)
        except (TypeError, ValueError) as exc:
            raise StepError(
                f"pyproject.toml's Poetry sections cannot be hashed ({exc})", "fix pyproject.toml"
            ) from None
        written_by = re.search(r"Poetry ([0-9][^ ]*)", self.lock.read_text(encoding="utf-8").split("\n", 1)[0])
        older = written_by is None or _older_than(written_by.group(1), "2.3.0")
        if recorded == current:
            say(reporter.line("poetry.lock verified against pyproject.toml (Poetry's content hash)"))
        elif older and recorded == before_groups:
            say(reporter.line("poetry.lock verified against pyproject.toml (the content hash Poetry wrote before 2.3)"))
        else:
            if log is not None:
                log(f"poetry.lock content-hash {recorded}, pyproject.toml {current}\n")
            raise StepError(
                f"poetry.lock is out of date with pyproject.toml (content-hash {recorded[:12]}..., "
                f"pyproject.toml's {current[:12]}...; {self.lock})",
                HINT,
            )
        self.verified = True


def _older_than(version: str, than: str) -> bool:
    try:
        return Version(version) < Version(than)
    except InvalidVersion:
        return True
