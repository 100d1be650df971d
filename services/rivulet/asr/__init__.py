"""Riva ASR service: streaming and offline speech recognition on a Triton-hosted streaming CTC model."""
