"""Every Dockerfile under docker/ passes hadolint and keeps the image rules of the deploy design.

No image is built here (no Docker daemon); these checks read the Dockerfiles and .dockerignore.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.helm.charts import HADOLINT, ROOT

DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
SERVICE_IMAGES = {"nlu", "asr", "tts", "dialog", "gateway"}
# How each service image's container health check asks: gRPC health, or the gateway's HTTP /healthz.
HEALTHCHECK = {name: r"rivulet\.core\.healthcheck" for name in SERVICE_IMAGES} | {
    "gateway": r"rivulet\.gateway\.healthcheck"
}
# The module holding each service's server (imported with __main__ to list what the image needs).
SERVER_MODULE = {name: "service" for name in SERVICE_IMAGES} | {"gateway": "app"}


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
    assert SERVICE_IMAGES | {"triton", "model-builder"} <= names, names


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
    assert re.search(rf"^HEALTHCHECK .*{HEALTHCHECK[name]}", final, re.M), f"{name}: no HEALTHCHECK"
    assert f'ENTRYPOINT ["python", "-m", "rivulet.{name}"]' in final
    # Serving dependencies only: the build installs [project].dependencies, not the extras.
    assert "['project']['dependencies']" in build and "optional-dependencies" not in build


# ---- what the images carry is what the code imports ----------------------------------------------

SPEECH_ENGINE_PACKAGES = ("espeak-ng", "flite", "festival", "festvox-kallpc16k", "festvox-kdlpc16k",
                          "festvox-us-slt-hts")  # fmt: skip


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def apt_packages(text: str) -> set[str]:
    joined = re.sub(r"\\\n", " ", text)
    found: set[str] = set()
    for m in re.finditer(r"apt-get install ([^&\n]*)", joined):
        found |= {w for w in m.group(1).split() if not w.startswith("-")}
    return found


def third_party_imports(files: set[Path]) -> dict[str, str]:
    """Top-level names of the non-stdlib, non-Rivulet modules the files import -> a file importing it."""
    names: dict[str, str] = {}
    for f in sorted(files):
        for node in ast.walk(ast.parse(f.read_text())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            for mod in mods:
                top = mod.split(".")[0]
                local = (f.parent / f"{top}.py").exists()  # a sibling in the model's own directory
                ours = top in ("rivulet", "riva", "__future__")
                if top not in sys.stdlib_module_names and not ours and not local:
                    names.setdefault(top, str(f.relative_to(ROOT)))
    return names


def rivulet_closure(files: set[Path]) -> set[Path]:
    """The files plus every rivulet module (and its packages' __init__) they import, transitively."""
    base, todo, seen = ROOT / "services", list(files), set(files)
    while todo:
        tree = ast.parse(todo.pop().read_text())
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for mod in (m for m in mods if m.split(".")[0] == "rivulet"):
                parts = mod.split(".")
                for i in range(1, len(parts) + 1):
                    for cand in (
                        base.joinpath(*parts[:i]).with_suffix(".py"),
                        base.joinpath(*parts[:i], "__init__.py"),
                    ):
                        if cand.is_file() and cand not in seen:
                            seen.add(cand)
                            todo.append(cand)
    return seen


@functools.cache
def installed_closure(requirements: tuple[str, ...]) -> frozenset[str]:
    """Distributions pip installs for these requirements (resolved through the venv's metadata)."""
    out: set[str] = set()
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, _ = todo.pop()
        name = _norm(req.name)
        if name in out:
            continue
        out.add(name)
        try:
            requires = md.requires(req.name) or []
        except md.PackageNotFoundError:
            continue
        for spec in requires:
            sub = Requirement(spec)
            extras = req.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append((sub, ""))
    return frozenset(out)


def distributions_of(top: str) -> set[str]:
    return {_norm(d) for d in md.packages_distributions().get(top, [])}


def extra_requirements(name: str) -> list[str]:
    m = re.search(
        r'^ARG EXTRA_REQUIREMENTS="([^"]*)"', (ROOT / "docker" / f"{name}.Dockerfile").read_text(), re.M
    )
    assert m, f"{name}.Dockerfile has no ARG EXTRA_REQUIREMENTS"
    return m.group(1).split()


def service_files(name: str) -> set[Path]:
    """The Rivulet modules `python -m rivulet.<name>` loads, and every module of its package."""
    code = (
        f"import importlib, json, sys; importlib.import_module('rivulet.{name}.{SERVER_MODULE[name]}');"
        f" importlib.import_module('rivulet.{name}.__main__');"
        " print(json.dumps([m.__file__ for m in list(sys.modules.values()) if getattr(m, '__file__', None)]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": "services:.", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    package = ROOT / "services" / "rivulet"
    loaded = {Path(f) for f in json.loads(proc.stdout) if Path(f).is_relative_to(package)}
    return loaded | set((package / name).rglob("*.py"))


@pytest.mark.parametrize("name", sorted(SERVICE_IMAGES))
def test_service_image_installs_what_the_service_imports(name: str) -> None:
    """[project].dependencies + the Dockerfile's EXTRA_REQUIREMENTS cover every package it imports."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    installed = installed_closure(tuple(deps + extra_requirements(name)))
    missing = {
        top: where
        for top, where in third_party_imports(service_files(name)).items()
        if not distributions_of(top) & installed
    }
    assert not missing, (
        f"the {name} image lacks (add to [project].dependencies or EXTRA_REQUIREMENTS): {missing}"
    )


def test_triton_image() -> None:
    text = (ROOT / "docker" / "triton.Dockerfile").read_text()
    assert re.search(r"nvcr\.io/nvidia/tritonserver:\d\d\.\d\d-py3", text)
    reqs = (ROOT / "docker" / "triton-requirements.txt").read_text()
    pinned = {_norm(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==\S+$", reqs, re.M)}
    assert {"numpy", "onnxruntime-gpu", "tokenizers", "soundfile", "soxr"} <= pinned, pinned
    assert "HEALTHCHECK" in text and "/v2/health/ready" in text
    # tts_embedded runs the offline engines through rivulet.voices inside Triton.
    assert set(SPEECH_ENGINE_PACKAGES) | {"libsndfile1"} <= apt_packages(text)
    assert "COPY services/rivulet/ /opt/rivulet/services/rivulet/" in text
    assert re.search(r"^ENV .*PYTHONPATH=/opt/rivulet/services\b", text, re.M)


def test_triton_image_has_every_package_the_models_import() -> None:
    """models/*/1/*.py and the rivulet modules they import (tts_embedded: rivulet.voices, ...) need
    nothing beyond triton-requirements.txt and what the python backend provides."""
    model_files = set((ROOT / "models").glob("*/[0-9]*/*.py"))
    assert {f.parent.parent.name for f in model_files} >= {
        "intent_assistant",
        "asr_streaming",
        "tts_embedded",
    }
    # the optional neural voice: `pipelines.tts export` copies these two into its model directory
    neural = {ROOT / "pipelines" / "tts" / "triton" / "model.py", ROOT / "pipelines" / "tts" / "runtime.py"}
    files = rivulet_closure(model_files | {f for f in neural if f.exists()})
    assert ROOT / "services" / "rivulet" / "voices.py" in files, "tts_embedded imports rivulet.voices"
    reqs = (ROOT / "docker" / "triton-requirements.txt").read_text()
    pinned = tuple(m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+==\S+)$", reqs, re.M))
    # onnxruntime-gpu installs the `onnxruntime` module (the venv has the CPU build of the same module).
    provided = {_norm(r.split("==")[0]).removesuffix("-gpu") for r in pinned}
    missing = {
        top: where
        for top, where in third_party_imports(files).items()
        if top != "triton_python_backend_utils" and not distributions_of(top) & provided
    }
    assert not missing, f"triton-requirements.txt lacks: {missing}"


def test_model_builder_runs_pipelines_with_nemo_and_cpu_torch() -> None:
    text = (ROOT / "docker" / "model-builder.Dockerfile").read_text()
    assert "nemo_toolkit[" in text and "'pipelines'" in text
    assert "download.pytorch.org/whl/cpu" in text
    assert "COPY pipelines/ pipelines/" in text and "COPY models/ models/" in text
    # pipelines/ read the training data from RIVULET_DATA_DIR (../shared/data, a named build context).
    assert "COPY --from=data . /data/" in text and "RIVULET_DATA_DIR=/data" in text
    # The ASR speech data is made with the offline engines (rivulet.voices) and sox.
    assert set(SPEECH_ENGINE_PACKAGES) | {"sox", "libsndfile1"} <= apt_packages(text)
    assert re.search(r"RIVULET_CACHE_DIR=/tmp/\S+", text), "caches on the Job's tmp emptyDir"
    # The Job copies models/ from WORKDIR /app (helm/rivulet/charts/triton/templates/model-builder-job.yaml).
    assert re.search(r"^WORKDIR /app$", text, re.M)
    job = (ROOT / "helm/rivulet/charts/triton/templates/model-builder-job.yaml").read_text()
    assert '{{- $src := "/app/models" }}' in job


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


def dockerignore(dockerfile: Path | None = None) -> list[str]:
    """The ignore patterns BuildKit applies for a Dockerfile: <Dockerfile>.dockerignore beside it
    when there is one, else the root .dockerignore."""
    own = dockerfile.with_name(dockerfile.name + ".dockerignore") if dockerfile else None
    path = own if own is not None and own.exists() else ROOT / ".dockerignore"
    lines = path.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("dockerfile", [None, *DOCKERFILES], ids=lambda p: p.name if p else "root")
def test_dockerignore_starts_by_excluding_everything(dockerfile: Path | None) -> None:
    assert dockerignore(dockerfile)[0] == "*", (
        "a .dockerignore must be an allow-list: `*` first, then `!` entries"
    )


def test_model_builder_context_carries_the_committed_asr_weights_only() -> None:
    builder = dockerignore(ROOT / "docker" / "model-builder.Dockerfile")
    assert in_context("models/asr_streaming/1/encoder.onnx", builder)
    assert in_context("models/asr_streaming/config.pbtxt", builder)
    assert not in_context("models/intent_assistant/1/model.onnx", builder), (
        "NLU weights are built, not copied"
    )
    assert not in_context("models/asr_streaming/1/__pycache__/model.cpython-311.pyc", builder)
    assert not in_context(".venv/bin/python", builder) and not in_context("tests/unit/x.py", builder)
    # every other image keeps all weights out
    assert not in_context(
        "models/asr_streaming/1/encoder.onnx", dockerignore(ROOT / "docker" / "triton.Dockerfile")
    )


def test_everything_the_dockerfiles_copy_is_in_the_context() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    tracked_files = tracked.split()
    missing = []
    for dockerfile in DOCKERFILES:
        patterns = dockerignore(dockerfile)
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
