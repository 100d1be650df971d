# syntax=docker/dockerfile:1
# Rivulet gateway: the voice-assistant web app (HTTP + WebSocket on port 8080, bridged to
# rivulet.dialog.v1.Dialog/Converse; Prometheus metrics on the same port at /metrics).
#
#   docker build -f docker/gateway.Dockerfile -t rivulet/gateway:0.1.0 .      # from the repository root
#
# The same shape as the gRPC service images (see docker/README.md): a build stage makes a virtual
# environment with the serving dependencies only ([project].dependencies of pyproject.toml, pinned by
# constraints.txt) and generates the protobuf code with grpcio-tools; the run stage is a slim Python
# with that venv and the sources (the app's static files are under services/rivulet/gateway/static),
# no compiler, running as a non-root user. The health check is HTTP (/healthz), not gRPC.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Packages this service imports that [project].dependencies does not list (yet); space-separated,
# pinned by constraints.txt like the rest. tests/helm/test_dockerfiles.py checks that every package
# the service's modules import is installed.
ARG EXTRA_REQUIREMENTS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
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
# A self-signed certificate (RIVULET_GATEWAY_TLS_SELF_SIGNED) is made in /tmp, the one writable place
# (an emptyDir in the chart); a real one comes with RIVULET_GATEWAY_TLS_CERT/_KEY.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/services:/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RIVULET_GATEWAY_PORT=8080 \
    RIVULET_GATEWAY_TLS_DIR=/tmp/gateway-tls
WORKDIR /app
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "rivulet.gateway.healthcheck"]
ENTRYPOINT ["python", "-m", "rivulet.gateway"]
