"""A trainable NeMo model back from a built Triton model's ONNX graphs (weights and feature statistics).

The embedded model's weights are committed only as ONNX (`models/asr_streaming/1`); its `.nemo` lived
in the cache of the machine that trained it. To fine-tune it elsewhere (`pipelines.asr finetune`),
this rebuilds the `.nemo`: a fresh model of the same size is exported the same way, every
initializer of that export (its parameters drawn at random first, so that no two are equal and
merged) is matched to the parameter it came from (by name, or for the unnamed
`MatMul` weights by value, transposed), and the built model's initializers are loaded through that
map. The feature statistics come from `frontend.onnx` (`mean`, `inv_std`). The result is checked
by exporting it again: every initializer must equal the built model's.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np


def _initializers(path: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}


def _without_identities(graph) -> tuple[list, dict[str, str]]:
    """The graph's nodes less its Identity nodes, and what each Identity's output stands for (the
    exporter writes one per merged initializer)."""
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    for name in list(alias):
        while alias[name] in alias:
            alias[name] = alias[alias[name]]
    return [n for n in graph.node if n.op_type != "Identity"], alias


def _weights_by_position(reference: Path, other: Path) -> dict[str, np.ndarray]:
    """`other`'s initializer values under the names `reference` gives them, matched by where the
    graphs use them (node by node, input by input): exports of the same model code have the same
    nodes, but an export merges initializers of equal value (an untrained model's norms), so names
    alone do not match."""
    import onnx
    from onnx import numpy_helper

    ref, oth = onnx.load(str(reference)).graph, onnx.load(str(other)).graph
    ref_inits = {i.name for i in ref.initializer}
    oth_inits = {i.name: i for i in oth.initializer}
    ref_nodes, ref_alias = _without_identities(ref)
    oth_nodes, oth_alias = _without_identities(oth)
    if [n.op_type for n in ref_nodes] != [n.op_type for n in oth_nodes]:
        raise ValueError(f"{other} is not an export of the same model code as {reference}")
    values: dict[str, np.ndarray] = {}
    for ref_node, oth_node in zip(ref_nodes, oth_nodes, strict=True):
        for ref_input, oth_input in zip(ref_node.input, oth_node.input, strict=True):
            ref_input, oth_input = ref_alias.get(ref_input, ref_input), oth_alias.get(oth_input, oth_input)
            if ref_input in ref_inits:
                if oth_input not in oth_inits:
                    raise ValueError(f"{other} computes {ref_input} instead of holding it")
                values[ref_input] = numpy_helper.to_array(oth_inits[oth_input])
    return values


def feature_stats(version_dir: Path) -> dict:
    """The constant per-band normalization the front-end applies (as `measure_feature_stats` gives it)."""
    inits = _initializers(version_dir / "frontend.onnx")
    mean, inv_std = inits["mean"][:, 0].astype(np.float64), inits["inv_std"][:, 0].astype(np.float64)
    return {"fixed_mean": [float(v) for v in mean], "fixed_std": [float(v) for v in 1.0 / inv_std]}


def _fresh_model(size: str, stats: dict):
    from nemo.collections.asr.models import EncDecCTCModel

    from pipelines.asr.model_config import SIZES, model_config, patch_fixed_normalization

    patch_fixed_normalization()
    cfg = model_config(SIZES[size], "unused", "unused", 8, 1e-3, 10, 100, feature_stats=stats)
    del cfg.train_ds, cfg.validation_ds  # training attaches its own manifests
    return EncDecCTCModel(cfg=cfg)


def _parameter_map(model, exported: dict[str, np.ndarray]) -> dict[str, tuple[str, bool]]:
    """initializer name → (state-dict key, transposed) for every initializer a parameter became."""
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    mapping: dict[str, tuple[str, bool]] = {}
    for name, value in exported.items():
        if name in state and state[name].shape == value.shape:
            mapping[name] = (name, False)
            continue
        for key, param in state.items():
            if param.shape == value.shape and np.array_equal(param, value):
                mapping[name] = (key, False)
                break
            if param.ndim == 2 and param.T.shape == value.shape and np.array_equal(param.T, value):
                mapping[name] = (key, True)
                break
    return mapping


def recover(version_dir: Path, size: str = "full"):
    """The NeMo EncDecCTCModel whose export is `version_dir`'s `encoder.onnx` (eval mode, CPU)."""
    import torch

    from pipelines.asr.export import export_encoder

    stats = feature_stats(version_dir)
    with tempfile.TemporaryDirectory() as tmp:
        model = _fresh_model(size, stats)
        with torch.no_grad():  # distinct values everywhere: the export merges equal initializers
            for param in model.parameters():
                param.normal_()
        export_encoder(model, Path(tmp) / "fresh.onnx")
        fresh = _initializers(Path(tmp) / "fresh.onnx")
        mapping = _parameter_map(model, fresh)
        try:
            built = _weights_by_position(Path(tmp) / "fresh.onnx", version_dir / "encoder.onnx")
        except ValueError as error:
            raise ValueError(
                f"{version_dir} was not exported from a {size!r} model of this architecture"
            ) from error
        if set(built) != set(fresh) or any(built[n].shape != fresh[n].shape for n in fresh):
            raise ValueError(f"{version_dir} was not exported from a {size!r} model of this architecture")
        unmapped = sorted(set(fresh) - set(mapping))
        if unmapped:
            raise ValueError(f"initializers with no parameter: {unmapped[:5]}")
        state = model.state_dict()
        covered = set()
        for name, (key, transposed) in mapping.items():
            value = built[name].T if transposed else built[name]
            state[key] = torch.from_numpy(np.array(value)).to(state[key].dtype)  # a writable copy
            covered.add(key)
        trainable = {k for k, _ in model.named_parameters()}
        missing = sorted(trainable - covered)
        if missing:
            raise ValueError(f"parameters the export does not hold: {missing[:5]}")
        model.load_state_dict(state)
        export_encoder(model, Path(tmp) / "again.onnx")
        again = _weights_by_position(Path(tmp) / "fresh.onnx", Path(tmp) / "again.onnx")
        differ = [n for n in built if not np.array_equal(again[n], built[n])]
        if differ:
            raise ValueError(f"the recovered model exports different weights: {differ[:5]}")
    model.eval()
    return model


def write_nemo(version_dir: Path, out: Path, size: str = "full") -> Path:
    """Recover `version_dir`'s model and save it as `out` (`.nemo`) with its `feature_stats.json`."""
    model = recover(version_dir, size)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_to(str(out))
    (out.parent / "feature_stats.json").write_text(json.dumps(feature_stats(version_dir)))
    return out
