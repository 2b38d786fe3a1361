"""Runs inside the smoke container: unpack the zip the way Lambda does, then invoke the handler
through awslambdaric's own loading code, as an unprivileged user.

    python3 smoke_runner.py HANDLER TIMEOUT_SECONDS
    (the helper has copied the zip and the event to /tmp/lambda-kit-smoke/)

As root: the zip is extracted into /var/task with the modes it carries. Then a fresh interpreter
runs as uid 993 (Lambda's sandbox user id) with only /var/task and the runtime on sys.path:
`-I -S` drops site-packages and the environment's PYTHON* variables, and awslambdaric's folder is
removed from sys.path (and its dependencies from sys.modules) once its bootstrap is loaded, so the
handler sees exactly what the zip brings. The last stdout line is a JSON report for the helper.
Standard library only (plus awslambdaric in the child).
"""

import json
import os
import resource
import stat
import subprocess
import sys
import sysconfig
import time
import uuid
import zipfile

WORK = "/tmp/lambda-kit-smoke"
TASK_ROOT = "/var/task"
RIC = "/opt/lambda-kit-smoke/ric"
SANDBOX_UID = SANDBOX_GID = 993
REPORT = "LAMBDA_KIT_SMOKE_REPORT "


def extract(zip_path: str, root: str) -> int:
    """Unpack like Lambda: every entry under root, Unix modes as stored, folders last."""
    folders = []
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            path = zf.extract(info, root)  # zipfile drops absolute and '..' parts
            mode = info.external_attr >> 16
            if info.create_system == 3 and mode and not stat.S_ISLNK(mode):
                if info.is_dir():
                    folders.append((path, stat.S_IMODE(mode)))
                else:
                    os.chmod(path, stat.S_IMODE(mode))
        count = len(zf.infolist())
    for path, mode in reversed(folders):
        os.chmod(path, mode)
    os.chmod(root, 0o755)
    return count


def lambda_environment(handler: str, function_name: str, memory_mb: str) -> dict:
    version = "%d.%d" % sys.version_info[:2]
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


def supervise(handler: str, timeout: float) -> int:
    """Root side: unpack, run the child as the sandbox user, report duration and peak memory."""
    try:
        entries = extract(os.path.join(WORK, "function.zip"), TASK_ROOT)
    except (zipfile.BadZipFile, OSError) as exc:
        print(REPORT + json.dumps({"ok": False, "error": {"errorType": "Runtime.InvalidZip", "errorMessage": str(exc)}}))
        return 0
    env = lambda_environment(handler, os.environ.get("LAMBDA_KIT_FUNCTION_NAME", "lambda-kit-smoke"),
                             os.environ.get("LAMBDA_KIT_MEMORY_MB", "128"))  # fmt: skip
    env["LAMBDA_KIT_DEADLINE_MS"] = str(int((time.time() + timeout) * 1000))
    argv = [sys.executable, "-I", "-S", os.path.abspath(__file__), "--invoke", handler]
    started = time.perf_counter()
    try:
        child = subprocess.run(argv, env=env, cwd=TASK_ROOT, preexec_fn=drop_privileges, stdout=subprocess.PIPE,
                               timeout=timeout + 5)  # fmt: skip
        output = child.stdout.decode("utf-8", "replace").splitlines()
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode("utf-8", "replace").splitlines()
        output.append(REPORT + json.dumps({"ok": False, "error": {
            "errorType": "Sandbox.Timedout", "errorMessage": f"Task timed out after {timeout:.2f} seconds"}}))  # fmt: skip
    wall_ms = (time.perf_counter() - started) * 1000
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    report = {"ok": False, "error": {"errorType": "Runtime.ExitError", "errorMessage": "the runtime exited without a result"}}
    for line in output:
        if line.startswith(REPORT):
            report = json.loads(line[len(REPORT):])
        else:
            print(line)  # the handler's own output, as CloudWatch would show it
    report.update(entries=entries, peak_memory_mb=round(peak_kb / 1024, 1), wall_ms=round(wall_ms, 1))
    print(REPORT + json.dumps(report), flush=True)
    return 0


def record_compiles() -> set:
    """Zip names of the modules under the task root the importer compiles from source (no usable
    .pyc): every source module goes through SourceLoader.source_to_code, bytecode does not."""
    from importlib import _bootstrap_external

    compiled = set()
    original = _bootstrap_external.SourceLoader.source_to_code

    def source_to_code(self, data, path, *args, **kwargs):
        if isinstance(path, str) and path.startswith(TASK_ROOT + "/"):
            compiled.add(path[len(TASK_ROOT) + 1:])
        return original(self, data, path, *args, **kwargs)

    _bootstrap_external.SourceLoader.source_to_code = source_to_code
    return compiled


def imported_from_task() -> list:
    """Zip names of the source modules under the task root imported so far (the profile)."""
    names = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        if path.startswith(TASK_ROOT + "/") and path.endswith(".py"):
            names.add(path[len(TASK_ROOT) + 1:])
    return sorted(names)


def invoke(handler: str) -> None:
    """Sandbox side, in `python -I -S`: only the stdlib here; add the task root and the runtime."""
    sys.path[:0] = [TASK_ROOT]
    runtime_packages = sysconfig.get_paths()["purelib"]
    if runtime_packages not in sys.path:
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
    request_id = str(uuid.uuid4())
    with open(os.path.join(WORK, "event.json"), "rb") as f:
        event = json.loads(f.read() or b"{}")

    def fail(error_type: str, message: str, trace) -> None:
        error = bootstrap.make_error(message, error_type, trace, request_id)
        print(REPORT + json.dumps({"ok": False, "error": error}), flush=True)
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
    context = LambdaContext(request_id, None, None, int(os.environ["LAMBDA_KIT_DEADLINE_MS"]),
                            f"arn:aws:lambda:us-east-1:000000000000:function:{os.environ['AWS_LAMBDA_FUNCTION_NAME']}")  # fmt: skip
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
    print(REPORT + json.dumps({"ok": True, "result": body, "duration_ms": round(duration_ms, 2), "init_ms": round(init_ms, 2),
                               "init_cpu_ms": round(init_cpu_ms, 2),
                               "compiled_at_init": compiled_at_init, "imported": imported_from_task(),
                               "request_id": request_id}), flush=True)  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] == ["--invoke"]:
        invoke(sys.argv[2])
    else:
        sys.exit(supervise(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 60.0))
