"""pip and the other tools the build steps run (pip, pipenv, strip): each in its own process group,
its output echoed to the build log as it comes with credentials masked, an interrupt stopping the
whole group at once; and pip's failures as one line each. Standard library only (the Toolchain
they run with is `toolchain`'s).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lambda_kit.common.errors import StepError, hash_mismatch
from lambda_kit.common.processes import start_group, stop_group
from lambda_kit.steps import wheelcheck

if TYPE_CHECKING:
    from lambda_kit.steps.toolchain import Toolchain


def pip_install(tools: Toolchain, args: list[str], target: Path, indexes: list) -> None:
    argv = [
        str(tools.python),
        "-m",
        "pip",
        "install",
        "--target",
        str(target),
        "--no-compile",
        "--no-deps",
        "--no-input",
        "--no-warn-script-location",
        "--progress-bar",
        "off",
        *tools.target_args,
        *args,
    ]
    code, lines = run_pip(tools, argv, indexes)
    if code != 0:
        raise pip_failure(code, lines, tools)


def run_pip(tools: Toolchain, argv: list[str], indexes: list) -> tuple[int, list[str]]:
    """pip with the toolchain's network settings for `indexes` (netconfig.Index, in pip's order);
    its output is echoed line by line as it comes (the build log, which the helper follows for its
    progress line), credentials masked, and returned."""
    argv = argv + (["--cache-dir", tools.cache_dir] if tools.cache_dir else ["--no-cache-dir"])
    env, cleanup = tools.network.pip_environment(indexes)
    try:
        return run_tool(argv, env, tools.echo)
    finally:
        for path in cleanup:
            path.unlink(missing_ok=True)


def run_tool(
    argv: list[str], env: dict[str, str], echo: Callable[[str], object] | None = None
) -> tuple[int, list[str]]:
    """Run a tool (pip, pipenv, strip) in its own process group, its output (stderr merged) as lines.
    An interrupt (Ctrl-C, SIGTERM) stops the whole group at once, instead of waiting for pip."""
    lines: list[str] = []
    with start_group(argv, env) as tool:
        assert tool.stdout is not None  # stdout=PIPE
        try:
            for line in tool.stdout:
                if echo is not None:
                    echo(line)
                lines.append(line.rstrip("\n"))
            tool.wait()
        except BaseException:
            stop_group(tool)
            raise
    return tool.returncode, lines


def pip_failure(code: int, lines: list[str], tools: Toolchain) -> StepError:
    """One line for what pip said went wrong; the common causes get their own hint."""
    text = "\n".join(lines)
    if "DO NOT MATCH THE HASHES" in text:
        start = next(i for i, line in enumerate(lines) if "DO NOT MATCH THE HASHES" in line)
        culprits = [
            line.strip().split(" from ")[0].rstrip(":")
            for line in lines[start + 1 :]
            if line.startswith("    ") and not line.startswith("        ")
        ]
        expected = next((ln.split()[-1] for ln in lines[start:] if ln.strip().startswith("Expected sha256")), "?")
        got = next((ln.split()[-1] for ln in lines[start:] if ln.strip().startswith("Got")), "?")
        return StepError(
            hash_mismatch(f"the download of {', '.join(culprits) or 'a package'}", got, expected),
            "the file differs from what `pipenv lock` recorded: re-lock only if you trust the new file",
        )
    errors = [line for line in lines if line.startswith("ERROR:")]
    detail = errors[-1][len("ERROR:") :].strip() if errors else f"exit {code}"
    error = StepError(tools.redact(f"pip install failed: {detail}"), "pip's full output is in the build log")
    error.not_found = wheelcheck.not_found(text)  # the fetch asks pip about each of them
    return error


def dependency_failure(lines: list[str], tools: Toolchain) -> StepError | None:
    """A local or VCS dependency pip could not get or build: the dependency and git's first error
    line (`fatal: ...`), else pip's first ERROR line."""
    collecting, first = "", None
    for line in lines:
        text = line.strip()
        if text.startswith("Collecting "):
            collecting = text[len("Collecting ") :].split(" @ ")[0].split(" from ")[0]
        if text.startswith("fatal:") or (first is None and text.startswith("ERROR:")):
            first = (collecting, text.removeprefix("ERROR:").strip())
            if text.startswith("fatal:"):
                break
    if first is None:
        return None
    name, detail = first
    return StepError(
        tools.redact(f"cannot install the local/VCS dependency {name or '(unnamed)'}: {detail}"),
        "check the dependency's URL, ref or path (git's full output is in the build log)",
    )
