"""ASR model pipeline: speech data, streaming Conformer-CTC training, ONNX export, Triton model."""
