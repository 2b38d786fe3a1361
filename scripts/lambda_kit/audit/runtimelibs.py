"""The shared libraries each Lambda Python runtime provides, beside the runtimes table.

Source: the Lambda runtimes page of the AWS Lambda Developer Guide names the OS of each runtime
(Amazon Linux 2 for python3.9-3.11, Amazon Linux 2023 for python3.12 and later; see runtimes.py).
Every image of those OSes installs glibc, libgcc, libstdc++ and zlib (their base packages), whose
sonames are listed here; the runtime's own Python also ships libpython. Nothing else is assumed:
a library outside this table must come with the zip or a layer (`native-needed`). Kept minimal on
purpose: a missing entry costs a false alarm the user can answer with a layer, a wrong one a
function that fails at import on Lambda.
"""

from __future__ import annotations

from lambda_kit.common.runtimes import Runtime

# LD_LIBRARY_PATH as Lambda sets it for the Python runtimes (AWS Lambda Developer Guide, "Defined
# runtime environment variables"): the runtime's folders, then the function's (/var/task is the zip
# root) and the layers' (/opt/lib). RUNTIME_DIRS hold what `provided` lists.
LD_LIBRARY_PATH = (
    "/var/lang/lib",
    "/lib64",
    "/usr/lib64",
    "/var/runtime",
    "/var/runtime/lib",
    "/var/task",
    "/var/task/lib",
    "/opt/lib",
)
RUNTIME_DIRS = LD_LIBRARY_PATH[:5]

GLIBC_SONAMES = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libdl.so.2",
        "libpthread.so.0",
        "librt.so.1",
        "libutil.so.1",
        "libresolv.so.2",
        "libnsl.so.1",
        "libanl.so.1",
        "libBrokenLocale.so.1",
        "libmvec.so.1",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
    }
)
TOOLCHAIN_SONAMES = frozenset({"libgcc_s.so.1", "libstdc++.so.6", "libz.so.1"})
# libxcrypt: Amazon Linux 2 ships libcrypt.so.1, Amazon Linux 2023 libcrypt.so.2.
BY_OS = {
    "Amazon Linux 2": frozenset({"libcrypt.so.1"}),
    "Amazon Linux 2023": frozenset({"libcrypt.so.2"}),
}


def provided(runtime: Runtime) -> frozenset[str]:
    """Sonames a native file may need that the runtime itself loads."""
    return preloaded(runtime) | TOOLCHAIN_SONAMES | BY_OS.get(runtime.os, frozenset())


def preloaded(runtime: Runtime) -> frozenset[str]:
    """Those of them the runtime's Python process has loaded before any import: glibc, libpython
    (a library of that soname is then never searched for)."""
    return GLIBC_SONAMES | {f"libpython{runtime.version}.so.1.0"}
