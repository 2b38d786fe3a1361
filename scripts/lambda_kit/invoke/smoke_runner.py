"""Runs inside the smoke container: unpack the zip the way Lambda does, then invoke the handler
through awslambdaric's own loading code, as an unprivileged user.

    python3 -m lambda_kit.invoke.smoke_runner HANDLER TIMEOUT_SECONDS
    (the helper has copied the zip and the event to /tmp/lambda-kit-smoke/)

As root: the zip is extracted into /var/task with bounded work (zipreader: at most MAX_ENTRIES
entries, each checked against its header, Lambda's 262,144,000 bytes in all), setuid, setgid and
sticky bits dropped. Then a fresh interpreter runs as uid 993 (Lambda's sandbox user id) with only
/var/task and the runtime on sys.path: `-I -S` drops site-packages and the environment's PYTHON*
variables, and awslambdaric's folder is removed from sys.path (and its dependencies from
sys.modules) once its bootstrap is loaded, so the handler sees exactly what the zip brings.

The result never travels on the handler's stdout (which a handler may print anything to): the child
writes one JSON line to a pipe, and this supervisor writes the report to REPORT_FILE, in a folder
only root can write, which the helper copies out of the stopped container. Standard library only
(plus awslambdaric in the child, and the kit's zip reader, lambda_kit.zips).
"""

import json
import os
import resource
import stat
import subprocess
import sys
import sysconfig
import threading
import time
import uuid

try:
    from lambda_kit.zips import zipreader  # the host's kit, or the smoke image's copy (PYTHONPATH)
except ImportError:
    zipreader = None  # the sandboxed child (python -I: no PYTHONPATH) does not need it

# In the smoke image these are fixed; `make smoke` on the host (hostsmoke.py, no Docker engine)
# names temporary folders instead, and runs the handler as the user it is, with no runtime packages.
HOST = {k: os.environ.get(f"LAMBDA_KIT_SMOKE_{k}", "") for k in ("WORK", "TASK_ROOT", "RIC", "REPORT_DIR")}
ON_HOST = bool(HOST["TASK_ROOT"])
WORK = HOST["WORK"] or "/tmp/lambda-kit-smoke"
TASK_ROOT = HOST["TASK_ROOT"] or "/var/task"
RIC = HOST["RIC"] or "/opt/lambda-kit-smoke/ric"
REPORT_DIR = HOST["REPORT_DIR"] or "/var/lambda-kit-smoke-report"  # root only: the handler cannot write the report
REPORT_FILE = REPORT_DIR + "/report.json"
SANDBOX_UID = SANDBOX_GID = 993
MAX_UNZIPPED = 262_144_000  # Lambda's limit on the unzipped function
REPORT_FD = "LAMBDA_KIT_REPORT_FD"


class InvalidZip(Exception):
    pass


def extract(zip_path: str, root: str, max_bytes: int = MAX_UNZIPPED) -> int:
    """Unpack like Lambda: every entry under root, Unix modes as stored less setuid/setgid/sticky,
    folders last; at most `max_bytes` in all, each entry checked against its header."""
    root = os.path.realpath(root)
    folders, total = [], 0
    try:
        reader = zipreader.ZipReader(zip_path)
    except (zipreader.ZipReadError, OSError, ValueError, EOFError) as exc:
        raise InvalidZip(str(exc)) from None
    except Exception as exc:  # noqa: BLE001  zipfile's errors on a hostile zip
        raise InvalidZip(f"not a readable zip ({exc})") from None
    with reader:
        for info in reader.infos:
            path = os.path.normpath(os.path.join(root, info.filename.lstrip("/")))
            if not path.startswith(root + os.sep):
                raise InvalidZip(f"entry outside the task root: {zipreader.escape(info.filename)}")
            mode = info.external_attr >> 16
            keep = stat.S_IMODE(mode) & 0o777 if info.create_system == 3 and mode and not stat.S_ISLNK(mode) else None
            if info.is_dir():
                os.makedirs(path, exist_ok=True)
                if keep is not None:
                    folders.append((path, keep))
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                try:
                    for data in reader.chunks(info, max_bytes - total):
                        out.write(data)
                        total += len(data)
                except zipreader.EntryError as exc:
                    if exc.over_cap:
                        raise InvalidZip(f"Unzipped size must be smaller than {MAX_UNZIPPED} bytes") from None
                    raise InvalidZip(str(exc)) from None
            os.chmod(path, keep if keep is not None else 0o644)
        count = len(reader.infos)
    for path, mode in reversed(folders):
        os.chmod(path, mode)
    os.chmod(root, 0o755)
    return count


def lambda_environment(handler: str, function_name: str, memory_mb: str) -> dict:
    version = ".".join(map(str, sys.version_info[:2]))
    return {
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": memory_mb,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "lambda-kit-smoke",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": TASK_ROOT,
        **({f"LAMBDA_KIT_SMOKE_{k}": v for k, v in HOST.items()} if ON_HOST else {}),  # the child's folders
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin:/bin",
        "_HANDLER": handler,
    }


def drop_privileges() -> None:
    os.setgroups([])
    os.setgid(SANDBOX_GID)
    os.setuid(SANDBOX_UID)


def write_report(report: dict) -> None:
    os.makedirs(REPORT_DIR, mode=0o700, exist_ok=True)
    os.chmod(REPORT_DIR, 0o700)
    with open(REPORT_FILE, "w", encoding="utf-8") as f:
        json.dump(report, f)


def failure(error_type: str, message: str) -> dict:
    return {"ok": False, "error": {"errorType": error_type, "errorMessage": message}}


def problem(report) -> str | None:
    """What is wrong with a report (the child's, or this supervisor's for the helper), or None."""
    if not isinstance(report, dict) or not isinstance(report.get("ok"), bool):
        return "not a report"
    if report["ok"]:
        ok = isinstance(report.get("result"), str) and isinstance(report.get("duration_ms"), (int, float))
        return None if ok else "no result"
    error = report.get("error")
    ok = isinstance(error, dict) and all(isinstance(error.get(k), str) for k in ("errorType", "errorMessage"))
    return None if ok else "no error"


def child_report(raw: bytes) -> dict:
    """The child's one JSON line; anything else is a failure, whoever wrote it."""
    lines = raw.decode("utf-8", "replace").splitlines()
    if not lines:
        return failure("Runtime.ExitError", "the runtime exited without a result")
    try:
        report = json.loads(lines[0]) if len(lines) == 1 else None
    except ValueError:
        report = None
    wrong = f"{len(lines)} lines" if len(lines) != 1 else problem(report)
    if wrong:
        return failure("Runtime.MalformedReport", f"the result channel held something else than one report ({wrong})")
    return report


def supervise(handler: str, timeout: float) -> int:
    """Root side: unpack, run the child as the sandbox user, report duration and peak memory."""
    try:
        entries = extract(os.path.join(WORK, "function.zip"), TASK_ROOT)
    except (InvalidZip, OSError) as exc:
        write_report(failure("Runtime.InvalidZip", str(exc)))
        return 0
    env = lambda_environment(
        handler,
        os.environ.get("LAMBDA_KIT_FUNCTION_NAME", "lambda-kit-smoke"),
        os.environ.get("LAMBDA_KIT_MEMORY_MB", "128"),
    )
    env["LAMBDA_KIT_DEADLINE_MS"] = str(int((time.time() + timeout) * 1000))
    read_end, write_end = os.pipe()
    env[REPORT_FD] = str(write_end)
    argv = [sys.executable, "-I", "-S", os.path.abspath(__file__), "--invoke", handler]
    chunks: list[bytes] = []

    def drain() -> None:  # read as it comes: a large result must not block the child
        while data := os.read(read_end, 65536):
            if sum(map(len, chunks)) < 8 << 20:  # a report over 8 MB is malformed anyway
                chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    started = time.perf_counter()
    sandbox = None if ON_HOST else drop_privileges  # on the host: as the user who ran make smoke
    child = subprocess.Popen(argv, env=env, cwd=TASK_ROOT, preexec_fn=sandbox, pass_fds=(write_end,))
    os.close(write_end)
    try:
        child.wait(timeout=timeout + 5)
        reader.join(10)
        report = child_report(b"".join(chunks))
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        report = failure("Sandbox.Timedout", f"Task timed out after {timeout:.2f} seconds")
    wall_ms = (time.perf_counter() - started) * 1000
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    report.update(entries=entries, peak_memory_mb=round(peak_kb / 1024, 1), wall_ms=round(wall_ms, 1))
    write_report(report)
    return 0


def record_compiles() -> set:
    """Zip names of the modules under the task root the importer compiles from source (no usable
    .pyc): every source module goes through SourceLoader.source_to_code, bytecode does not."""
    from importlib import _bootstrap_external

    compiled = set()
    original = _bootstrap_external.SourceLoader.source_to_code

    def source_to_code(self, data, path, *args, **kwargs):
        if isinstance(path, str) and path.startswith(TASK_ROOT + "/"):
            compiled.add(path[len(TASK_ROOT) + 1 :])
        return original(self, data, path, *args, **kwargs)

    _bootstrap_external.SourceLoader.source_to_code = source_to_code
    return compiled


def imported_from_task() -> list:
    """Zip names of the source modules under the task root imported so far (the profile)."""
    names = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        if path.startswith(TASK_ROOT + "/") and path.endswith(".py"):
            names.add(path[len(TASK_ROOT) + 1 :])
    return sorted(names)


def send(fd: int, line: str) -> None:
    data = memoryview((line + "\n").encode())
    while data:
        data = data[os.write(fd, data) :]


def invoke(handler: str) -> None:
    """Sandbox side, in `python -I -S`: only the stdlib here; add the task root and the runtime."""
    sys.path[:0] = [TASK_ROOT]
    for name in HOST:
        os.environ.pop(f"LAMBDA_KIT_SMOKE_{name}", None)  # not in the handler's environment
    runtime_packages = sysconfig.get_paths()["purelib"]
    if runtime_packages not in sys.path and not ON_HOST:  # the host's own packages are not the runtime's
        sys.path.append(runtime_packages)
    before = set(sys.modules)
    sys.path.append(RIC)
    from awslambdaric import bootstrap  # noqa: E402  (Lambda's own handler loading)
    from awslambdaric.lambda_context import LambdaContext
    from awslambdaric.lambda_runtime_exception import FaultException
    from awslambdaric.lambda_runtime_marshaller import to_json

    sys.path.remove(RIC)
    for name in set(sys.modules) - before:  # awslambdaric's dependencies must not serve the handler
        module = sys.modules[name]
        if not name.startswith("awslambdaric") and (getattr(module, "__file__", "") or "").startswith(RIC):
            del sys.modules[name]

    compiled = record_compiles()
    report_fd = int(os.environ.pop(REPORT_FD))  # not in the handler's environment
    request_id = str(uuid.uuid4())
    with open(os.path.join(WORK, "event.json"), "rb") as f:
        event = json.loads(f.read() or b"{}")

    def fail(error_type: str, message: str, trace) -> None:
        error = bootstrap.make_error(message, error_type, trace, request_id)
        send(report_fd, json.dumps({"ok": False, "error": error}))
        sys.exit(0)

    init_started, init_cpu = time.perf_counter(), time.process_time()
    try:
        function = bootstrap._get_handler(handler)  # the import Lambda's "Init Duration" counts
    except FaultException as fault:
        fail(fault.exception_type, fault.msg, fault.trace)
    except Exception as exc:  # e.g. PermissionError on a 0600 file: Lambda reports the exception's type
        import traceback

        fail(type(exc).__name__, str(exc), traceback.format_list(traceback.extract_tb(exc.__traceback__)))
    init_ms = (time.perf_counter() - init_started) * 1000
    init_cpu_ms = (time.process_time() - init_cpu) * 1000  # what a shared CPU does not inflate
    compiled_at_init = sorted(compiled)
    context = LambdaContext(
        request_id,
        None,
        None,
        int(os.environ["LAMBDA_KIT_DEADLINE_MS"]),
        f"arn:aws:lambda:us-east-1:000000000000:function:{os.environ['AWS_LAMBDA_FUNCTION_NAME']}",
    )
    started = time.perf_counter()
    try:
        result = function(event, context)
    except Exception as exc:  # what Lambda reports for an unhandled exception
        import traceback

        fail(type(exc).__name__, str(exc), traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:]))
    duration_ms = (time.perf_counter() - started) * 1000
    try:
        body = to_json(result)
    except Exception as exc:
        fail(FaultException.MARSHAL_ERROR, f"Unable to marshal response: {exc}", None)
    sys.stdout.flush()
    report = json.dumps(
        {
            "ok": True,
            "result": body,
            "duration_ms": round(duration_ms, 2),
            "init_ms": round(init_ms, 2),
            "init_cpu_ms": round(init_cpu_ms, 2),
            "compiled_at_init": compiled_at_init,
            "imported": imported_from_task(),
            "request_id": request_id,
        }
    )
    send(report_fd, report)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--invoke"]:
        invoke(sys.argv[2])
    else:
        sys.exit(supervise(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 60.0))
