# syntax=docker/dockerfile:1
# Rivulet model builder: runs pipelines/ (NeMo, torch, transformers) to write the Triton model
# repository. Only this image carries the training stack; it runs once per model revision as a
# Kubernetes Job that writes onto the shared model volume (helm/rivulet/charts/triton): it copies
# the committed model directories of models/ (config.pbtxt, python code, and the ASR weights once
# they are committed) into the volume, then runs the builds that are still missing.
#
# The build context is filtered by docker/model-builder.Dockerfile.dockerignore (BuildKit reads a
# Dockerfile-specific ignore file before the root .dockerignore): it lets the committed weights under
# models/asr_streaming/ in, which the root allow-list keeps out of every other image.
#
# The training data lives outside the repository (../shared/data, what `pipelines/` reads through
# RIVULET_DATA_DIR); it comes in as the named build context `data` (BuildKit):
#
#   docker buildx build --build-context data=../shared/data \
#       -f docker/model-builder.Dockerfile -t rivulet/model-builder:0.1.0 .
#   docker run --rm -v "$PWD/models-out:/models" rivulet/model-builder:0.1.0 \
#       pipelines.nlu build --dataset assistant --profile full --no-report --repository /models
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
FROM ${PYTHON_IMAGE}
# Compilers are needed here only: NeMo's [tts] extra builds pyopenjtalk, cdifflib and jieba.
# The speech engines (espeak-ng, flite, festival + English voices) and sox make the ASR training
# speech (pipelines/asr/data.py through rivulet.voices).
# Versions come from the Debian release of the (pinned) base image; point releases replace them in place.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake libsndfile1 \
        espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
    PIP_CONSTRAINT=/app/constraints.txt \
    PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
WORKDIR /app
COPY pyproject.toml constraints.txt ./
# [project].dependencies + the `triton` and `pipelines` extras (pipelines evaluate the models they
# build on tritonserver/onnxruntime), torch pinned to the CPU build so NeMo does not pull CUDA torch.
ARG NEMO_VERSION=3.0.0
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['pipelines'] + p['optional-dependencies']['triton']))" \
        > requirements.txt \
 && echo "nemo_toolkit[asr,tts]==${NEMO_VERSION}" >> requirements.txt \
 && grep -E '^grpcio-tools==' constraints.txt >> requirements.txt \
 && python -m pip install -r requirements.txt
COPY scripts/gen_protos.py scripts/
COPY protos/ protos/
RUN python scripts/gen_protos.py
COPY services/rivulet/ services/rivulet/
COPY pipelines/ pipelines/
COPY models/ models/
# The ASR speech data needs every engine: fail the build, not a six-hour Job, when one is missing.
RUN PYTHONPATH=/app/services python -c "import rivulet.voices as v; \
missing = [e for e in ('espeak-ng', 'flite', 'festival') if not v.engine_available(e)]; \
assert not missing, f'speech engines missing: {missing}'; print(len(v.all_voices()), 'voices')"
# `data` is the named build context given with --build-context (not a stage of this file).
# hadolint ignore=DL3022
COPY --from=data . /data/
RUN groupadd --system --gid 10001 rivulet \
 && useradd --system --uid 10001 --gid rivulet --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin rivulet
# Caches (speech data, checkpoints, built models) go under /tmp: an emptyDir in the cluster.
ENV PYTHONPATH=/app/services:/app PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    RIVULET_DATA_DIR=/data RIVULET_CACHE_DIR=/tmp/rivulet-cache HOME=/tmp \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=4
USER 10001:10001
# A one-shot job, not a server: the container is healthy while it runs.
HEALTHCHECK NONE
ENTRYPOINT ["python", "-m"]
CMD ["pipelines.nlu", "build", "--dataset", "assistant", "--profile", "full", "--no-report", "--repository", "/models"]
