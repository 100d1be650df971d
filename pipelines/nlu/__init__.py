"""NLU pipeline: trains the joint intent + slot model, exports ONNX, writes the Triton model.

Run as `python -m pipelines.nlu build|evaluate ...` (see `__main__.py`).
"""
