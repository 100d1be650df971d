"""The Triton `config.pbtxt` of the punctuation model (the I/O contract rivulet.nlu.punctuation uses)."""

from __future__ import annotations

from pipelines.nlu.triton_config import text_model_pbtxt

MODEL_NAME = "punct_capit_en"
TASK = "punctuation"


def config_pbtxt(model_name: str = MODEL_NAME) -> str:
    parameters = {
        "language_code": "en-US",
        "rivulet_task": TASK,
        "intra_op_num_threads": "1",
        "description": "Punctuation (, . ?) and capitalization per word: all-MiniLM-L6-v2 fine-tuned on "
        "the FreeBSD fortune files",
    }
    header = """# Written by `python -m pipelines.punct build`; do not edit: a unit test compares it with
# pipelines/punct/triton_config.py.
# One UTF-8 TEXT per request; PUNCTUATED is the same text, punctuated and capitalized.
"""
    outputs = '  { name: "PUNCTUATED", data_type: TYPE_STRING, dims: [ 1 ] }\n'
    return text_model_pbtxt(header, model_name, outputs, parameters)
