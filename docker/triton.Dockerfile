# syntax=docker/dockerfile:1
# Triton Inference Server for Rivulet: NVIDIA's container (tritonserver, python backend, CUDA) plus
# the Python packages Rivulet's python-backend models import (numpy, onnxruntime-gpu, tokenizers).
# The model repository is NOT baked in: the model-builder image writes it onto a shared volume
# that every Triton replica mounts read-only at /models (see helm/rivulet/charts/triton).
#
#   docker build -f docker/triton.Dockerfile -t rivulet/triton:0.1.0 .   # from the repository root
ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.12-py3
FROM ${TRITON_IMAGE}
# The Triton 24.12 image is Ubuntu 24.04 (Python 3.12, PEP 668): the python backend stub runs the
# system interpreter, so the model packages go into it.
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_BREAK_SYSTEM_PACKAGES=1
COPY docker/triton-requirements.txt /tmp/triton-requirements.txt
RUN python3 -m pip install -r /tmp/triton-requirements.txt \
 && python3 -c "import numpy, onnxruntime, tokenizers; print('onnxruntime providers:', onnxruntime.get_available_providers())"
# Python caches and the backend's scratch files go to /tmp (an emptyDir in the cluster): the root
# filesystem is read-only there.
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1
# triton-server (uid 1000) is the unprivileged user NVIDIA's image ships.
USER 1000:1000
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python3", "-c", "import urllib.request as u; u.urlopen('http://localhost:8000/v2/health/ready', timeout=4)"]
CMD ["tritonserver", "--model-repository=/models", "--strict-readiness=true", "--exit-on-error=false"]
