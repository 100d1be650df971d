"""Read and write a CTranslate2 `model.bin` (binary format version 6) as named numpy arrays.

CTranslate2 ships a writer only inside its converters; Rivulet needs both directions to fine-tune
Whisper here (the pretrained weights come only in CTranslate2's format) and to write the adapted
weights back. The layout is CTranslate2's `ModelSpec._serialize`: a header (version, spec name,
revision), then each variable (name, shape, dtype id, byte size, bytes), then aliases.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

VERSION = 6
# CTranslate2's DataType enum, in order; bfloat16 has no numpy type and is kept as raw uint16.
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.uint16}
DTYPE_IDS = {np.dtype(v): k for k, v in DTYPES.items() if k != 5}


@dataclass
class ModelFile:
    """The contents of one `model.bin`: spec name, revision, variables (in file order), aliases."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> np.ndarray:
        return self.variables[self.aliases.get(name, name)]


def _read(f: BinaryIO, fmt: str) -> int:
    size = struct.calcsize(fmt)
    return struct.unpack(fmt, f.read(size))[0]


def _read_string(f: BinaryIO) -> str:
    length = _read(f, "H")
    return f.read(length)[:-1].decode("utf-8")


def _write_string(f: BinaryIO, text: str) -> None:
    data = text.encode("utf-8")
    f.write(struct.pack("H", len(data) + 1))
    f.write(data + b"\0")


def read(path: Path) -> ModelFile:
    with open(path, "rb") as f:
        version = _read(f, "I")
        if version != VERSION:
            raise ValueError(f"{path}: CTranslate2 model format version {version}, expected {VERSION}")
        model = ModelFile(_read_string(f), _read(f, "I"))
        for _ in range(_read(f, "I")):
            name = _read_string(f)
            shape = tuple(_read(f, "I") for _ in range(_read(f, "B")))
            dtype_id = _read(f, "B")
            nbytes = _read(f, "I")
            if dtype_id not in DTYPES:
                raise ValueError(f"{path}: variable {name} has unknown CTranslate2 dtype {dtype_id}")
            data = np.frombuffer(f.read(nbytes), dtype=DTYPES[dtype_id])
            model.variables[name] = data.reshape(shape) if shape else data.reshape(())
        for _ in range(_read(f, "I")):
            alias = _read_string(f)
            model.aliases[alias] = _read_string(f)
    return model


def write(model: ModelFile, path: Path) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("I", VERSION))
        _write_string(f, model.spec)
        f.write(struct.pack("I", model.revision))
        f.write(struct.pack("I", len(model.variables)))
        for name, value in model.variables.items():
            _write_string(f, name)
            f.write(struct.pack("B", value.ndim))
            for dim in value.shape:
                f.write(struct.pack("I", dim))
            f.write(struct.pack("B", DTYPE_IDS[value.dtype]))
            data = np.ascontiguousarray(value).tobytes()
            f.write(struct.pack("I", len(data)))
            f.write(data)
        f.write(struct.pack("I", len(model.aliases)))
        for alias, name in model.aliases.items():
            _write_string(f, alias)
            _write_string(f, name)
