# lambda-kit build image: Pipfile.lock -> /opt/lambda-kit/out/deps.zip, the packed dependencies.
# Driven by scripts/lambda-kit, which stages a minimal build context and runs
# docker build / create / cp / rm; everything it copies out is in /opt/lambda-kit/out. The code is
# added to deps.zip on the host, by the same zip writer for every builder and cache state, so the
# code never enters the image. Layer order is the article's: base image, tools, lock files, dependencies.
#
# BASE_IMAGE        any image with python3 (+ venv) for the target runtime; default: the AWS SAM
#                   build image, public.ecr.aws/sam/build-python3.X:latest-{x86_64,arm64}
# PYTHON_VERSION    the Lambda runtime's version; the build fails if the base image runs another
# TARGET_ARCH       set when the target architecture is not the image's: binary wheels for it
# FETCH             kit (default): the kit chooses and downloads the lock's files as pip would; pip: pip does
# SLIM              1: drop packages' tests, stubs, C sources, static libraries; strip native files
# COMPILE           1: hash-based .pyc for what importing the installed packages runs
#
# Written for BuildKit (secret and cache mounts). For the legacy builder the helper drops the
# `--mount=` options; the steps then read the same settings from the build context instead.
# Network: the host reads its settings and pip's (configuration files, PIP_* and proxy variables)
# once and hands them in (lambda_kit/net/netconfig.py); pip here reads no configuration file of its own
# (PIP_CONFIG_FILE=/dev/null), so both builders reach the indexes alike. Every index is probed
# before pip or the kit asks it anything (netprobe.py).
ARG BASE_IMAGE=public.ecr.aws/sam/build-python3.12:latest-x86_64
FROM ${BASE_IMAGE}

LABEL org.lambda-kit.kit="lambda-kit"
ENV LANG=C.UTF-8 \
    LC_ALL=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/opt/lambda-kit/kit \
    PIP_CONFIG_FILE=/dev/null \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /opt/lambda-kit

# 1. Tools: pinned pip and packaging, hash-checked, in a venv of the runtime's own python (the lock
#    was checked against the Pipfile on the host; no pipenv here). The image's own pip installs
#    them into a venv made without pip (`pip --python`, pip 22.3+), which saves seeding the venv
#    with a pip that is replaced at once; without such a pip, the venv seeds one. Then pip runs
#    once writing bytecode for what it imports, so each later pip start reads it (about 0.5 s).
#    Each folder of the context is one COPY: a step costs a container and a commit.
COPY setup/ ./
RUN --mount=type=secret,id=lambda-kit-pip --mount=type=secret,id=lambda-kit-ca \
    --mount=type=secret,id=lambda-kit-client-cert \
    if python3 -m venv --without-pip tools && python3 -m pip --python tools/bin/python --version >/dev/null 2>&1; \
    then installer="python3 -m pip --python tools/bin/python"; \
    else rm -rf tools && python3 -m venv tools && installer="tools/bin/python -m pip"; fi \
 && python3 -m lambda_kit.net.netconfig $installer install --quiet --no-cache-dir --no-deps \
        --require-hashes --only-binary=:all: --no-compile -r kit/container-requirements.txt \
 && env -u PYTHONDONTWRITEBYTECODE tools/bin/python -m pip download --help >/dev/null \
 && tools/bin/python -m pip --version

# 2. The kit's modules, the lock files, local path dependencies and the wheelhouse the helper kept
#    from the last build: pip downloads what the lock changed (hash-checked, the runtime's exact
#    tags), the kit unpacks the wheels (lambda_kit.steps.wheelinstall) into a tmpfs (BuildKit's mount, or
#    /dev/shm, which the helper gives room with --shm-size for the legacy builder), then packs
#    out/deps.zip (+ .sha256), which the helper keeps and adds the code to. The tree never enters a layer.
COPY build/ ./
ARG PYTHON_VERSION= SLIM=0 COMPILE=0 TARGET_ARCH= FETCH=kit
RUN --mount=type=secret,id=lambda-kit-pip --mount=type=secret,id=lambda-kit-ca \
    --mount=type=secret,id=lambda-kit-client-cert \
    --mount=type=cache,id=lambda-kit-pip-cache,target=/root/.cache/pip \
    --mount=type=tmpfs,target=/opt/lambda-kit/scratch \
    tools/bin/python -m lambda_kit.steps.incontainer deps
