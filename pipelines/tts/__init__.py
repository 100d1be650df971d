"""TTS model pipeline: NeMo FastPitch + HiFi-GAN → ONNX → a decoupled Triton model (riva-build's role)."""
