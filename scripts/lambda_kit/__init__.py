"""lambda-kit: build AWS Lambda deployment zips from a project's lock, in Docker or on the host,
reproducibly.

The folders are the pipeline's stages (docs/design.md, "The structure in ten minutes"): plan, code,
dependencies (lock, steps, builders), zips, audit, then smoke and deploy; common and net are shared.
`package.py` is the flow, `cli.py` the commands. What runs in the images (contract.BUILD_PACKAGES,
SMOKE_PACKAGES) uses the standard library and `packaging` only; what drives docker uses `sh`.
"""

__version__ = "0.1.0"
