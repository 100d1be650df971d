# syntax=docker/dockerfile:1
# Rivulet ASR service (nvidia.riva.asr.RivaSpeechRecognition on gRPC port 50051).
#
#   docker build -f docker/asr.Dockerfile -t rivulet/asr:0.1.0 .      # from the repository root
#
# Every gRPC service image has the same shape (see docker/README.md): a build stage makes a virtual
# environment with the serving dependencies only ([project].dependencies of pyproject.toml, pinned by
# constraints.txt) and generates the protobuf code with grpcio-tools; the run stage is a slim Python
# with that venv and the sources, no compiler, no NeMo, no torch, running as a non-root user.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Packages this service imports that [project].dependencies does not list (yet); space-separated,
# pinned by constraints.txt like the rest. tests/helm/test_dockerfiles.py checks that every package
# the service's modules import is installed.
# The [asr] extra: kenlm (the n-gram LM in the Python beam search) is built from its sdist, g++ and
# cmake here in the build stage only; flashlight-text (the C++ lexicon search) is a manylinux wheel.
ARG EXTRA_REQUIREMENTS="kenlm flashlight-text"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ cmake make zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > serving-requirements.txt \
 && echo "${EXTRA_REQUIREMENTS}" | tr ' ' '\n' | sed '/^$/d' >> serving-requirements.txt \
 && grep -E '^grpcio-tools==' constraints.txt > build-requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install -c constraints.txt -r serving-requirements.txt \
 && python -m venv /opt/protoc \
 && /opt/protoc/bin/pip install -c constraints.txt -r build-requirements.txt
COPY scripts/gen_protos.py scripts/
COPY protos/ protos/
RUN /opt/protoc/bin/python scripts/gen_protos.py
COPY services/rivulet/ services/rivulet/
RUN /opt/venv/bin/python -m compileall -q services

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 rivulet \
 && useradd --system --uid 10001 --gid rivulet --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin rivulet
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/services /app/services
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/services:/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RIVULET_GRPC_PORT=50051 \
    RIVULET_METRICS_PORT=9464
WORKDIR /app
USER 10001:10001
EXPOSE 50051 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["sh", "-c", "exec python -m rivulet.core.healthcheck --address localhost:${RIVULET_GRPC_PORT}"]
ENTRYPOINT ["python", "-m", "rivulet.asr"]
