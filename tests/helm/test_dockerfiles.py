"""Every Dockerfile under docker/ passes hadolint and keeps the image rules of the deploy design.

No image is built here (no Docker daemon); these checks read the Dockerfiles and .dockerignore.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.helm.charts import HADOLINT, ROOT

DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
SERVICE_IMAGES = {"nlu", "asr", "tts", "dialog"}


def stages(path: Path) -> list[list[str]]:
    """Instructions (continuation lines joined, comments dropped) grouped by FROM stage."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append([])
        if out:
            out[-1].append(line)
    return out


def test_every_image_has_a_dockerfile() -> None:
    names = {p.name.removesuffix(".Dockerfile") for p in DOCKERFILES}
    assert {"nlu", "triton", "model-builder"} <= names, names


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    proc = subprocess.run(
        [str(HADOLINT), "--no-color", str(dockerfile.relative_to(ROOT))],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0 and not proc.stdout.strip(), f"hadolint findings:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_runs_as_non_root(dockerfile: Path) -> None:
    final = stages(dockerfile)[-1]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users, f"{dockerfile.name}: the final stage sets no USER"
    assert users[-1].split(":")[0] not in ("root", "0"), f"{dockerfile.name} runs as {users[-1]}"


@pytest.mark.parametrize(
    "name", sorted(SERVICE_IMAGES & {p.name.removesuffix(".Dockerfile") for p in DOCKERFILES})
)
def test_service_image_shape(name: str) -> None:
    path = ROOT / "docker" / f"{name}.Dockerfile"
    all_stages = stages(path)
    assert len(all_stages) >= 2, "protobuf code must be generated in a build stage"
    build, final = "\n".join(all_stages[0]), "\n".join(all_stages[-1])
    assert "scripts/gen_protos.py" in build
    assert "grpcio-tools" not in final and "gen_protos" not in final
    for forbidden in ("build-essential", "gcc", "nemo", "torch", "apt-get install", "pip install"):
        assert forbidden not in final.lower(), f"{name}: final stage has {forbidden!r}"
    assert re.search(r"^FROM \S*python\S*slim", all_stages[-1][0]) or "${PYTHON_IMAGE}" in all_stages[-1][0]
    assert "slim" in path.read_text().split("ARG PYTHON_IMAGE=")[1].split()[0]
    assert re.search(r"^HEALTHCHECK .*rivulet\.core\.healthcheck", final, re.M), (
        f"{name}: no gRPC HEALTHCHECK"
    )
    assert f'ENTRYPOINT ["python", "-m", "rivulet.{name}"]' in final
    # Serving dependencies only: the build installs [project].dependencies, not the extras.
    assert "['project']['dependencies']" in build and "optional-dependencies" not in build


def test_triton_image() -> None:
    text = (ROOT / "docker" / "triton.Dockerfile").read_text()
    assert re.search(r"nvcr\.io/nvidia/tritonserver:\d\d\.\d\d-py3", text)
    reqs = (ROOT / "docker" / "triton-requirements.txt").read_text()
    for pkg in ("numpy", "onnxruntime-gpu", "tokenizers"):
        assert re.search(rf"^{pkg}==\S+", reqs, re.M), f"{pkg} not pinned in triton-requirements.txt"
    assert "HEALTHCHECK" in text and "/v2/health/ready" in text


def test_model_builder_runs_pipelines_with_nemo_and_cpu_torch() -> None:
    text = (ROOT / "docker" / "model-builder.Dockerfile").read_text()
    assert "nemo_toolkit[" in text and "'pipelines'" in text
    assert "download.pytorch.org/whl/cpu" in text
    assert "COPY pipelines/ pipelines/" in text
    # pipelines/ read the training data from RIVULET_DATA_DIR (../shared/data, a named build context).
    assert "COPY --from=data . /data/" in text and "RIVULET_DATA_DIR=/data" in text


# ---- .dockerignore is an allow-list ---------------------------------------------------------------


def _translate(pattern: str) -> str:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def _match(pattern: str, path: str) -> bool:
    """Docker's rule: a pattern matches a path or any of its parent directories."""
    regex = _translate(pattern.rstrip("/"))
    parts = path.split("/")
    return any(re.fullmatch(regex, "/".join(parts[:i])) for i in range(1, len(parts) + 1))


def in_context(path: str, patterns: list[str]) -> bool:
    included = True
    for pat in patterns:
        negated = pat.startswith("!")
        if _match(pat.lstrip("!"), path):
            included = negated
    return included


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_starts_by_excluding_everything() -> None:
    assert dockerignore()[0] == "*", ".dockerignore must be an allow-list: `*` first, then `!` entries"


def test_everything_the_dockerfiles_copy_is_in_the_context() -> None:
    patterns = dockerignore()
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    tracked_files = tracked.split()
    missing = []
    for dockerfile in DOCKERFILES:
        for stage in stages(dockerfile):
            for line in stage:
                if not line.upper().startswith("COPY ") or "--from=" in line:
                    continue
                for src in line.split()[1:-1]:
                    files = [f for f in tracked_files if f == src or f.startswith(src.rstrip("/") + "/")]
                    files = [f for f in files if not f.endswith(".pyc")]
                    if not files and not (ROOT / src).exists():
                        missing.append(f"{dockerfile.name}: {src} does not exist")
                    missing += [
                        f"{dockerfile.name}: {f} excluded" for f in files if not in_context(f, patterns)
                    ]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize(
    "path",
    [".venv/bin/python", ".git/HEAD", "build/requirements.txt", "services/riva/proto/riva_nlp_pb2.py",
     "services/rivulet/nlu/__pycache__/x.cpython-311.pyc", "helm/rivulet/Chart.yaml", "tests/unit/x.py",
     "models/nlu_assistant/1/model.onnx", ".run/report.json"],
)  # fmt: skip
def test_dockerignore_keeps_out(path: str) -> None:
    assert not in_context(path, dockerignore())


def test_dockerignore_matcher_semantics() -> None:
    assert in_context(
        "models/nlu/1/model.py", ["*", "!models/", "models/*/[0-9]*/*", "!models/*/[0-9]*/*.py"]
    )
    assert not in_context(
        "models/nlu/1/w.onnx", ["*", "!models/", "models/*/[0-9]*/*", "!models/*/[0-9]*/*.py"]
    )
