"""lambda-kit: build AWS Lambda deployment zips from a Pipfile.lock, in Docker, reproducibly.

The modules that also run inside the build container (lockfile, netconfig, runtimes, zipwriter,
zipdeflate, incontainer) use the standard library and `packaging` only; everything that drives docker uses `sh`.
"""

__version__ = "0.1.0"
