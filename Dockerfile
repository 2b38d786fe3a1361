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
# SLIM              1: drop packages' tests, stubs, C sources, static libraries; strip native files
# COMPILE           1: hash-based .pyc for what importing the installed packages runs
#
# Written for BuildKit (secret and cache mounts). For the legacy builder the helper drops the
# `--mount=` options; the steps then read the same settings from the build context instead.
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

# 1. Tools: pinned pip and pipenv, hash-checked, in a venv of the runtime's own python. The image's
#    own pip installs them into a venv made without pip (`pip --python`, pip 22.3+), which saves
#    seeding the venv with a pip that is replaced at once; without such a pip, the venv seeds one.
COPY net/ net/
COPY kit/container-requirements.txt kit/
COPY kit/lambda_kit/netconfig.py kit/lambda_kit/netconfig.py
COPY kit/lambda_kit/contract.py kit/lambda_kit/contract.py
RUN --mount=type=secret,id=lambda-kit-pip --mount=type=secret,id=lambda-kit-ca \
    if python3 -m venv --without-pip tools && python3 -m pip --python tools/bin/python --version >/dev/null 2>&1; \
    then installer="python3 -m pip --python tools/bin/python"; \
    else rm -rf tools && python3 -m venv tools && installer="tools/bin/python -m pip"; fi \
 && python3 kit/lambda_kit/netconfig.py $installer install --quiet --no-cache-dir --no-deps \
        --require-hashes --only-binary=:all: --no-compile -r kit/container-requirements.txt \
 && tools/bin/python -m pip --version \
 && find tools -name __pycache__ -prune -exec rm -rf {} +

# 2. Lock files (and local path dependencies), verified, then [packages] installed with hashes,
#    from the wheelhouse the helper kept from the last build plus what the lock changed; packed
#    once into out/deps.zip (+ .sha256), which the helper keeps and adds the code to.
COPY kit/lambda_kit/ kit/lambda_kit/
COPY project/ project/
COPY paths/ paths/
COPY wheels/ out/wheels/
ARG PYTHON_VERSION=
ARG SLIM=0
ARG COMPILE=0
ARG TARGET_ARCH=
RUN --mount=type=secret,id=lambda-kit-pip --mount=type=secret,id=lambda-kit-ca \
    --mount=type=cache,id=lambda-kit-pip-cache,target=/root/.cache/pip \
    tools/bin/python -m lambda_kit.incontainer deps
