import gc
import sys

# The launcher's bytecode folder (PYTHONPYCACHEPREFIX) stays set for the tools the helper runs from
# its environment (pip, pipenv): installed without bytecode, they compile into it once, not each run.
from lambda_kit.cli import main  # noqa: E402

code = main()
# The run is over: what is left is freed by the interpreter's exit, whose collections would walk
# every object still alive (botocore's S3 client alone is tens of thousands: 0.1-0.3 s for an
# agent that used CACHE_URL=s3://). Frozen, they are left to the process's end; atexit handlers,
# finalizers and the flushing of stdout/stderr still run.
gc.freeze()
sys.exit(code)
