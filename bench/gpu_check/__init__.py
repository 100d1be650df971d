"""The GPU check: each model's GPU path against its CPU path on the same inputs, then measured.

Run it on a machine with a GPU (``python -m bench.gpu_check``; see ``__main__`` for the steps on a
remote GPU machine). It needs only numpy, onnxruntime-gpu and this repository's model code (plus
torch + transformers to make the NLU graph when no built one is given), never a running Triton.
"""
