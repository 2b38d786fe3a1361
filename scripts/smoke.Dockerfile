# lambda-kit smoke image: the Lambda runtime image plus the AWS Lambda runtime interface client
# (awslambdaric, pinned and hash-checked) outside the runtime's own paths. The zip is never baked
# in: the helper copies it into a fresh container for each run. Legacy builder: see ../Dockerfile.
#
# RUNTIME_IMAGE  the runtime image (default: public.ecr.aws/lambda/python:3.X-{x86_64,arm64}),
#                or any image with python3 and pip for the runtime
ARG RUNTIME_IMAGE=public.ecr.aws/lambda/python:3.12-x86_64
FROM ${RUNTIME_IMAGE}

LABEL org.lambda-kit.kit="lambda-kit"
ENV PYTHONDONTWRITEBYTECODE=1 PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
    PIP_ROOT_USER_ACTION=ignore PYTHONPATH=/opt/lambda-kit-smoke
# setup/: the pins and the kit's common/ and net/ (netconfig); run/: lambda_kit/invoke and zips.
# The handler's own interpreter runs `-I`: it sees neither PYTHONPATH nor these folders.
COPY net/ /opt/lambda-kit/net/
COPY setup/ /opt/lambda-kit-smoke/
RUN --mount=type=secret,id=lambda-kit-pip --mount=type=secret,id=lambda-kit-ca \
    --mount=type=secret,id=lambda-kit-client-cert \
    python3 -m lambda_kit.net.netconfig python3 -m pip install --quiet --no-cache-dir --no-deps \
        --require-hashes --only-binary=:all: --no-compile --target /opt/lambda-kit-smoke/ric \
        -r /opt/lambda-kit-smoke/smoke-requirements.txt \
 && rm -rf /opt/lambda-kit-smoke/ric/bin \
 && mkdir -p /var/task /tmp/lambda-kit-smoke
COPY run/ /opt/lambda-kit-smoke/
WORKDIR /var/task
ENTRYPOINT []
CMD ["python3", "/opt/lambda-kit-smoke/lambda_kit/invoke/smoke_runner.py"]
