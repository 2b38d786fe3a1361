"""Ground truth for `native-needed`: the real glibc loader, in an image whose system libraries are
exactly what `runtimelibs` says the runtime provides.

    image = loader_image()                       # build once (or reuse), x86_64 only
    verdicts = loader_verdicts(image, zip_path)  # {member: sorted sonames ld.so did not find}
    assert audit_verdicts(zip_path, members=verdicts) == verdicts  # what the audit says of the same

The image is the stand-in base (Debian bookworm, glibc 2.36) with every shared library removed from
the folders ld.so searches, except ld.so itself and the sonames `runtimelibs.provided(runtime)`
lists, which are copied into /usr/lib64 (/lib64 is a link to it): where Amazon Linux keeps them, so
they sit at the runtime's place in Lambda's LD_LIBRARY_PATH (set in the image, from runtimelibs).
ld.so.cache is deleted: nothing else is found. A zip is unpacked as /var/task (layers as /opt) and
ld.so traces each member as ldd does (`LD_TRACE_LOADED_OBJECTS=1 /lib64/ld-linux-x86-64.so.2
<file>`: every library it cannot find is listed as "not found", where glibc 2.36's `--list` stops at
the first), with /var/task as the working folder, as on Lambda (relative RPATH entries count from
there). The member is then the main program; its RPATH applies down the chain as a dlopen'd
extension's does in Python (whose own executable carries none), so the verdicts are the loader's.

x86_64 only: this machine runs no arm64 emulation. The image is kept between runs (like the base
image), tagged by a digest of what made it; `docker rmi` it by the `org.lambda-kit.test=loader` label.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
import zipfile
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from helpers import BASE_IMAGE
from lambda_kit.audit import audit, auditnative, runtimelibs
from lambda_kit.common import runtimes

LABEL = "org.lambda-kit.test=loader"
LD_SO = "/lib64/ld-linux-x86-64.so.2"
SYSTEM_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib", "/usr/local/lib", "/usr/lib64")
NATIVE_NAME = re.compile(r"\.so(\.[0-9.]+)?$")
NOT_FOUND = re.compile(r"^\s*(\S+) => not found$")

# Run in the base image (its python3 still runs: what it has loaded stays mapped while files go).
PRUNE = r"""
import json, os, shutil, sys
keep, dirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
os.makedirs("/usr/lib64", exist_ok=True)
os.makedirs("/kept-libs")
copied = []
for soname in keep:
    for folder in dirs:
        path = os.path.join(folder, soname)
        if os.path.exists(path) and not os.path.exists("/usr/lib64/" + soname):
            shutil.copyfile(os.path.realpath(path), "/kept-libs/" + soname)
            copied.append(soname)
            break
ld_so = os.path.realpath("/lib64/ld-linux-x86-64.so.2")
for folder in dirs:
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if ".so" in name and not os.path.isdir(path) and os.path.realpath(path) != ld_so:
            if folder != "/usr/lib64" or name != "ld-linux-x86-64.so.2":
                os.unlink(path)
        elif name == "glibc-hwcaps":
            shutil.rmtree(path)
for soname in copied:
    os.rename("/kept-libs/" + soname, "/usr/lib64/" + soname)
os.rmdir("/kept-libs")
os.unlink("/etc/ld.so.cache")
with open("/kept.json", "w") as f:
    json.dump(sorted(copied), f)
"""


def _docker(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=600, **kw)


def loader_image(runtime: str = "3.11", base: str = BASE_IMAGE) -> str:
    """The image's tag, built from `base` unless an image of that tag exists (x86_64 only)."""
    keep = sorted(runtimelibs.provided(runtimes.lookup(runtime)))
    base_id = _docker("image", "inspect", "--format", "{{.Id}}", base).stdout.strip()
    recipe = json.dumps([base_id, keep, SYSTEM_DIRS, runtimelibs.LD_LIBRARY_PATH, PRUNE])
    tag = f"lambda-kit-test/loader:{runtime}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory(prefix="loader-image-") as tmp:
        Path(tmp, "prune.py").write_text(PRUNE, encoding="utf-8")
        Path(tmp, "Dockerfile").write_text(
            f"FROM {base}\n"
            "COPY prune.py /prune.py\n"
            f"RUN python3 /prune.py '{json.dumps(keep)}' '{json.dumps(list(SYSTEM_DIRS))}'\n"
            f"ENV LD_LIBRARY_PATH={':'.join(runtimelibs.LD_LIBRARY_PATH)}\n"
            f"LABEL {LABEL}\n",
            encoding="utf-8",
        )
        _docker("build", "--quiet", "--tag", tag, tmp)
    return tag


def image_libraries(image: str) -> list[str]:
    """The sonames the image's /usr/lib64 holds (what `loader_image` kept)."""
    return json.loads(_docker("run", "--rm", image, "/bin/sh", "-c", "read -r l < /kept.json; echo $l").stdout)


def _exports_init(path: Path, stem: str) -> bool:
    """Whether the ELF file defines PyInit_<stem> in its dynamic symbol table (pyelftools)."""
    try:
        with open(path, "rb") as f:
            dynsym = ELFFile(f).get_section_by_name(".dynsym")
            found = dynsym.get_symbol_by_name(f"PyInit_{stem}") if dynsym is not None else None
            return bool(found) and found[0]["st_shndx"] != "SHN_UNDEF"
    except (ELFError, OSError):
        return False


def importable_extensions(names, runtime="3.11", arch="x86_64", roots=("",), folder: Path | None = None) -> list[str]:
    """Entries Python's importer would load as extension modules from `roots` of the zip: every
    folder part and the module name identifiers, the name ending in one of the runtime's suffixes;
    with `folder` (the unpacked zip), a plain `name.so` only if it defines PyInit_name (the
    importer calls it; a library without one is no module, whatever its name)."""
    suffixes = auditnative.extension_suffixes(runtimes.lookup(runtime), arch)
    found = []
    for name in names:
        for root in roots:
            rest = name[len(root) :] if name.startswith(root) else None
            if rest is None:
                continue
            *folders, base = rest.split("/")
            stems = [base[: -len(s)] for s in suffixes if base.endswith(s)]
            if not (all(p.isidentifier() for p in folders) and any(stem.isidentifier() for stem in stems)):
                continue
            plain = base[:-3]
            if folder is not None and "." not in plain and not _exports_init(folder / name, plain):
                continue
            found.append(name)
            break
    return sorted(found)


def _unpack(zip_path: Path, dest: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
        names = [i.filename for i in zf.infolist() if not i.is_dir()]
    for root, folders, files in os.walk(dest):
        for name in folders + files:
            os.chmod(os.path.join(root, name), 0o755)
    return names


def loader_verdicts(image: str, zip_path: Path, members=None, layers=(), runtime: str = "3.11") -> dict[str, list[str]]:
    """{member: sorted sonames ld.so reports "not found"} for each member of the zip (default: every
    importable extension module of `runtime`), the zip unpacked as /var/task and `layers` (zips) as /opt.
    A member ld.so cannot handle at all maps to ["<ld.so: first line of its answer>"]."""
    with tempfile.TemporaryDirectory(prefix="loader-task-") as tmp:
        task, opt = Path(tmp, "task"), Path(tmp, "opt")
        task.mkdir()
        opt.mkdir()
        names = _unpack(zip_path, task)
        for layer in layers:
            _unpack(Path(layer), opt)
        members = importable_extensions(names, runtime, folder=task) if members is None else list(members)
        if not members:
            return {}
        script = (
            f'for f do echo "=== $f"; LD_TRACE_LOADED_OBJECTS=1 {LD_SO} "/var/task/$f" 2>&1; echo "=== exit $?"; done'
        )
        run = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                f"{task}:/var/task:ro",
                "-v",
                f"{opt}:/opt:ro",
                "-w",
                "/var/task",
                image,
                "/bin/sh",
                "-c",
                script,
                "sh",
                *members,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    if run.returncode != 0 or run.stdout.count("=== exit ") != len(members):
        raise RuntimeError(f"docker run of {image} failed ({run.returncode}): {run.stderr.strip()[-500:]}")
    out = run.stdout
    verdicts: dict[str, list[str]] = {}
    member, lines = None, []
    for line in out.splitlines():
        if line.startswith("=== exit "):
            missing = sorted({m.group(1) for m in map(NOT_FOUND.match, lines) if m})
            if not missing and line != "=== exit 0":
                missing = [f"<ld.so: {lines[0].strip() if lines else 'no output'}>"]
            verdicts[member] = missing
        elif line.startswith("=== "):
            member, lines = line[4:], []
        else:
            lines.append(line)
    return verdicts


def audit_verdicts(zip_path: Path, members=None, runtime: str = "3.11", arch: str = "x86_64", **options):
    """What the audit says the loader would not find, by extension module, in loader_verdicts'
    shape: {member: sorted missing sonames}, from its native-needed errors and native-optional
    warnings (the loader fails either way; native-optional only says the package copes). `members`
    default: importable_extensions of the zip's names (without the PyInit check)."""
    report = audit.audit_zip(zip_path, runtime=runtime, arch=arch, **options)
    with zipfile.ZipFile(zip_path) as zf:
        out = {m: set() for m in (importable_extensions(zf.namelist(), runtime, arch) if members is None else members)}
    for finding in report.findings:
        if finding.id in ("native-needed", "native-optional"):
            for line in finding.entries:  # "member[ -> lib ...] (soname)" or "(soname: reason)"
                out.setdefault(line.split(" ")[0], set()).add(re.search(r"\(([^():]+)(: [^()]*)?\)$", line).group(1))
    return {m: sorted(v) for m, v in out.items()}
