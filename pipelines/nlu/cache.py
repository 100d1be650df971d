"""The NLU build key: what decides an intent model's weights (the cache itself: pipelines.build_cache)."""

from __future__ import annotations

from pathlib import Path

from pipelines.build_cache import file_identity, fingerprint
from pipelines.nlu.paths import RUNTIME_DIR

# The modules whose code decides the weights (the CLI, reports and Triton files do not). The recipe
# enters the key as its values, so tuning one model's recipe leaves the other models' builds valid.
KEY_SOURCES = (
    "assistant_domain.py",
    "calibrate.py",
    "corpus.py",
    "datasets.py",
    "encoder.py",
    "export.py",
    "joint_model.py",
    "slurp.py",
    "train.py",
)


def build_key(
    dataset: str, profile: str, recipe: dict, encoder_files: list[Path], data_files: list[Path]
) -> str:
    source_dir = Path(__file__).parent
    parts = {
        "dataset": dataset,
        "profile": profile,
        "recipe": recipe,
        "sources": {name: file_identity(source_dir / name) for name in KEY_SOURCES},
        "runtime": file_identity(RUNTIME_DIR / "intent_slot.py"),
        "encoder": {p.name: file_identity(p) for p in encoder_files},
        "data": {str(p): file_identity(p) for p in data_files},
    }
    return fingerprint(parts)
