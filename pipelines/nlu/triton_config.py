"""The Triton `config.pbtxt` of an intent_* model (the I/O contract the NLU service is written against)."""

from __future__ import annotations

from pipelines.nlu.runtime import intent_slot
from pipelines.nlu.slurp import load_mapping

DESCRIPTIONS = {
    "assistant": (
        "Joint intent + slot model (all-MiniLM-L6-v2 fine-tuned on SNIPS, the assistant domain and SLURP "
        "real phrasings; OutOfScope for what the assistant cannot do)"
    ),
    "atis": "Joint intent + slot model (all-MiniLM-L6-v2 fine-tuned on ATIS)",
}

# Domains whose model has an out-of-scope intent (named in pipelines/nlu/data/slurp_mapping.toml).
OUT_OF_SCOPE_DOMAINS = ("assistant",)


def parameters_pbtxt(parameters: dict[str, str]) -> str:
    """The `parameters { ... }` lines of a config.pbtxt (string values), one per key."""
    return "".join(
        f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}\n'
        for key, value in parameters.items()
    )


def text_model_pbtxt(header: str, model_name: str, outputs: str, parameters: dict[str, str]) -> str:
    """The config.pbtxt of a python-backend text model: one UTF-8 `TEXT` per request, dynamic
    batching, one CPU instance; `outputs` the lines inside `output [ ]`, `header` the comment on top."""
    return f"""{header}name: "{model_name}"
backend: "python"
max_batch_size: 64
dynamic_batching {{ }}
instance_group [ {{ kind: KIND_CPU, count: 1 }} ]
input [
  {{ name: "TEXT", data_type: TYPE_STRING, dims: [ 1 ] }}
]
output [
{outputs}]
{parameters_pbtxt(parameters)}"""


def config_pbtxt(model_name: str, domain: str, description: str | None = None) -> str:
    parameters = {
        "domain": domain,
        "language_code": "en-US",
        "rivulet_task": "intent_slot",
        "intra_op_num_threads": "1",
        "cpu_graph": intent_slot().INT8_GRAPH,  # the file the build writes and the runtime looks for
        "description": description or DESCRIPTIONS.get(domain, "Joint intent + slot model"),
    }
    if domain in OUT_OF_SCOPE_DOMAINS:
        # The intent the model answers for a request outside every intent (GetRivaNLPConfig lists it).
        parameters["out_of_scope_intent"] = load_mapping().out_of_scope_intent
    header = """# Written by `python -m pipelines.nlu build`; do not edit: a unit test compares it with
# pipelines/nlu/triton_config.py.
# One UTF-8 TEXT per request; every output carries a leading batch dim of 1 and may be empty.
# cpu_graph: the ONNX file a CPU instance runs where the build wrote it (model.int8.onnx: int8 weights,
# about 40 % less time a query; model.onnx: the float graph); a GPU instance runs model.onnx.
"""
    outputs = (
        "  # every intent, sorted by probability, descending (a model with an out_of_scope_intent may put\n"
    )
    outputs += """  # that intent first when it rejects the text: intent_slot.IntentSlotRuntime.rank_intents)
  { name: "INTENT_LABELS", data_type: TYPE_STRING, dims: [ -1 ] },
  # softmax probabilities, same order (a rejecting out-of-scope intent: 1 - the best in-scope one)
  { name: "INTENT_SCORES", data_type: TYPE_FP32, dims: [ -1 ] },
  # one entity type per slot span (no B-/I- prefix)
  { name: "SLOT_LABELS", data_type: TYPE_STRING, dims: [ -1 ] },
  # confidence per span: mean over its words of the top tag probability
  { name: "SLOT_SCORES", data_type: TYPE_FP32, dims: [ -1 ] },
  # [start, end) character offsets of each span in TEXT
  { name: "SLOT_SPANS", data_type: TYPE_INT32, dims: [ -1, 2 ] }
"""
    return text_model_pbtxt(header, model_name, outputs, parameters)
