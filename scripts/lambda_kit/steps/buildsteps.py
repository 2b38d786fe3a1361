"""The build steps, shared by the Docker build (run in the container by `incontainer`) and the
local builder (run on the host by `localbuild`): install [packages] (the host checked the lock
against the Pipfile before, `lockcheck`), slim, compile, pack; each with the `Toolchain` it is
handed (`toolchain`). Standard library plus `packaging` only.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from packaging.utils import (
    canonicalize_name,
)

from lambda_kit.common import contract
from lambda_kit.common.digests import sha256_hex
from lambda_kit.common.errors import StepError
from lambda_kit.lock import lockfile
from lambda_kit.steps import bytecode, fetchphase, pipchoices, slimming, wheelinstall
from lambda_kit.steps.piprun import dependency_failure, pip_failure, pip_install, run_pip
from lambda_kit.steps.toolchain import Toolchain, say
from lambda_kit.zips import zipcopy, zipwriter


def move_into(source: Path, target: Path) -> None:
    """Merge a second install folder into the first; two packages writing one path is an error."""
    for item in sorted(source.iterdir()):
        dest = target / item.name
        if dest.exists():
            if item.is_dir() and dest.is_dir() and not item.name.endswith(".dist-info"):
                move_into(item, dest)  # namespace packages share folders
                continue
            raise StepError(f"two dependencies install {dest.relative_to(target)}", "check the lock for duplicates")
        shutil.move(str(item), str(dest))


def build_dependencies(
    tools: Toolchain,
    project: Path,
    tree: Path,
    local_path: Callable[[str], str],
    packed: Path,
    *,
    slim: bool = False,
    compile_deps: bool = False,
    profile: Sequence[str] = (),
) -> None:
    """The one order of the dependency steps, for both builders: install [packages] into `tree`,
    slim it (SLIM=1), compile it (COMPILE=1), pack it into `packed` (+ its SHA-256). Where each
    unpacked file came from goes from the install to the pack in memory (wheelinstall.Origin)."""
    origins = install_dependencies(tools, project, tree, local_path)
    if slim:
        slimming.slim(tree, shutil.which("strip"))
    if compile_deps:
        compile_dependencies(tree, profile)
    pack_dependencies(tree, packed, compile_deps, origins)


def install_dependencies(
    tools: Toolchain, project: Path, target: Path, local_path: Callable[[str], str]
) -> dict[str, wheelinstall.Origin]:
    """[packages] of project/Pipfile.lock into a fresh `target`. `local_path` maps a lock `path`
    entry to where it can be read. Returns the wheel installer's origins of the files it unpacked
    (none for what pip installed: source distributions, local and VCS packages)."""
    lock = lockfile.load_pipfile_lock(project / "Pipfile.lock")
    plan = lockfile.install_plan(lock, tools.environment)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name, marker in plan.skipped:
        say(f"skipped {name}: marker {marker!r} is false for this runtime")
    origins: dict[str, wheelinstall.Origin] = {}
    with tempfile.TemporaryDirectory(prefix="lambda-kit-") as tmp:
        if plan.index:
            origins = install_index_packages(tools, plan, Path(tmp), target)
        others = [local_path(p.path) for p in plan.local] + [p.url for p in plan.urls]
        if others:
            # Not hash-checkable by pip: installed apart, as regular packages, never editable; from
            # the packages' default indexes (their build dependencies too).
            extra = Path(tmp) / "local"
            indexes = fetchphase.default_route(tools.network, plan.sources)
            if tools.target_args:
                others = build_wheels(tools, others, Path(tmp) / "wheels", indexes)
            pip_install(tools, others, extra, indexes)
            move_into(extra, target)
    drop_console_scripts(target)
    say(f"installed {len(plan.index)} hash-checked and {len(others)} local/VCS packages from [packages]")
    return origins


def install_index_packages(
    tools: Toolchain, plan: lockfile.InstallPlan, tmp: Path, target: Path
) -> dict[str, wheelinstall.Origin]:
    """The lock's index packages, hash-checked, into `target`: every file is chosen as pip would
    choose it and fetched into the wheelhouse (`fetch_files`: the runtime's exact tags, the lock's
    hashes); the wheels are then unpacked by `wheelinstall` (the same files as pip --target, without
    a pip process), and any source distribution is built and installed by pip. Returns the
    installer's origins: none when the wheelhouse is temporary (its wheels are gone before the tree is packed)."""
    wheelhouse = tools.wheelhouse
    kept = wheelhouse is not None
    if wheelhouse is None:
        wheelhouse = tmp / "wheelhouse"
        tools = dataclasses.replace(tools, wheelhouse=wheelhouse)
    # Only packages whose file was not chosen for this target before are looked up.
    notes = pipchoices.Choices(wheelhouse, tools.target)
    chosen: dict[str, Path] = {}
    for p in plan.index:
        if (known := notes.known(p.name, p.version, p.hashes)) is not None:
            try:  # a note is used only for a file the lock names; the installer need not hash it again
                wheelinstall.check_hash(wheelinstall.wheel_for(known, p.hashes, p.name))
            except wheelinstall.WheelError:
                say(
                    f"warning: the wheelhouse's note for {p.name} names {known.name}, "
                    "which the lock does not: asking pip"
                )
                continue
            chosen[canonicalize_name(p.name)] = known
    checked = frozenset(chosen.values())
    ask = [p for p in plan.index if canonicalize_name(p.name) not in chosen]
    if chosen:
        say(f"{len(chosen)} files chosen for this target before, in the wheelhouse (not asked again)")
    if ask:
        chosen.update(fetchphase.fetch_files(tools, ask, tmp, plan.sources))
    notes.save(
        {
            key: (p.name, p.version, p.hashes, chosen[key])
            for p in plan.index
            if (key := canonicalize_name(p.name)) in chosen
        }
    )
    wheels, others = [], []
    for package in plan.index:
        file = chosen.get(canonicalize_name(package.name))
        if file is not None and file.name.endswith(".whl"):
            wheels.append(wheelinstall.wheel_for(file, package.hashes, package.name))
        else:
            others.append(package)
    say("installing")
    origins = wheelinstall.install(wheels, target, tools.python_xy, checked)
    say(f"{len(wheels)} wheels unpacked (hash-checked against the lock)")
    if others:
        # A source distribution (or a file pip's output did not name): pip builds and installs it,
        # from the package's own indexes.
        built = tmp / "built"
        for n, (indexes, group) in enumerate(fetchphase.by_route(tools, others, plan.sources)):
            subset = tmp / f"requirements-pip-{n}.txt"
            subset.write_text("".join(p.requirement_line() + "\n" for p in group), encoding="utf-8")
            found = ["--find-links", str(wheelhouse)]
            pip_install(tools, ["--require-hashes", *found, "-r", str(subset)], built, indexes)
        move_into(built, target)
    return origins if kept else {}


def drop_console_scripts(target: Path) -> None:
    """Console scripts point at the build's interpreter (useless on Lambda, and different between
    builders): remove them, and their lines from each RECORD so RECORD matches what ships."""
    shutil.rmtree(target / "bin", ignore_errors=True)
    for record in sorted(target.glob("*.dist-info/RECORD")):
        lines = record.read_bytes().splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith(b"../")]
        if kept != lines:
            record.write_bytes(b"".join(kept))


def build_wheels(tools: Toolchain, requirements: list[str], folder: Path, indexes: list) -> list[str]:
    """For a cross-platform install: local and VCS packages become wheels first (pip installs
    only wheels with --platform). A pure-Python wheel installs anywhere; a compiled one for this
    host is refused by the target's tags, which is right."""
    argv = [
        str(tools.python),
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-input",
        "--wheel-dir",
        str(folder),
        *requirements,
    ]
    code, lines = run_pip(tools, argv, indexes)
    if code != 0:
        raise dependency_failure(lines, tools) or pip_failure(code, lines, tools)
    return sorted(str(p) for p in folder.glob("*.whl"))


def compile_dependencies(deps: Path, profile: Sequence[str] = ()) -> None:
    """COMPILE=1, dependency side: what importing each installed top-level package runs (the
    code is not known here, and deps.zip must not depend on it), plus the profile's modules and
    what they import, compiled by this interpreter."""
    index = bytecode.module_index(deps)
    roots = bytecode.top_level_modules(deps, index) + bytecode.profile_modules(list(profile), index)
    names = bytecode.import_closure(deps, roots, index)
    written = compile_modules(deps, names, bytecode.DEPENDENCY_MODE)
    say(
        f"bytecode: {len(written)} of {len(index)} dependency modules compiled ({bytecode.DEPENDENCY_MODE}): "
        "what importing each top-level package runs"
    )


def compile_code(src: Path, handler: str, profile: Sequence[str] = ()) -> list[str]:
    """COMPILE=1, code side: the handler's module, the profile's modules of the code, and what they
    import, compiled (checked-hash) by this interpreter."""
    index = bytecode.module_index(src)
    roots = [handler.rsplit(".", 1)[0], *bytecode.profile_modules(list(profile), index)]
    return compile_modules(src, bytecode.import_closure(src, roots, index), bytecode.CODE_MODE)


def compile_modules(root: Path, names: list[str], mode: str) -> list[str]:
    try:
        return bytecode.compile_tree(root, names, mode)
    except RuntimeError as exc:
        raise StepError(str(exc), "report this as a kit bug; build with COMPILE=0 meanwhile") from None


def pack_dependencies(
    deps: Path, packed: Path, compiled: bool = False, origins: dict[str, wheelinstall.Origin] | None = None
) -> None:
    """Compress the installed dependencies once, into a zip of their own, with its SHA-256 beside
    it (the host checks its copy). The host adds the code after these entries without deflating
    them again: a code change costs the code, not the payload. A file of `origins` still as the
    installer wrote it is not deflated here either: its wheel's own deflate stream is copied."""
    entries = zipwriter.collect(deps, bytecode=compiled)
    reused = use_wheel_streams(entries, origins or {})
    merged = zipwriter.merge(("the dependencies", entries))
    zipwriter.write_zip(merged, packed, zipwriter.zip_date_time(None))
    packed.with_name(packed.name + contract.DIGEST_SUFFIX).write_text(sha256_hex(packed) + "\n", encoding="ascii")
    files = sum(1 for e in merged if not e.is_dir)
    say(f"dependencies packed: {files} files ({reused} as their wheel's deflate stream), {packed.stat().st_size} bytes")


def use_wheel_streams(entries: dict[str, zipwriter.Entry], origins: dict[str, wheelinstall.Origin]) -> int:
    """Point each collected file that is still exactly what the installer wrote (same stat identity,
    same wheel) at its wheel's deflate stream; a file slimmed, compiled or otherwise changed since
    is deflated as any other. Returns how many."""
    wheels: dict[str, bool] = {}  # each wheel's path -> unchanged since it was unpacked
    count = 0
    for name, origin in origins.items():
        entry = entries.get(name)
        if entry is not None and entry.source is not None and origin.unchanged(entry.source, wheels):
            entries[name] = dataclasses.replace(entry, packed=zipcopy.Packed(origin.wheel, origin.info, own=False))
            count += 1
    return count
