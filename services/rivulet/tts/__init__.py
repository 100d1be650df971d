"""Riva TTS service: streaming speech synthesis on Triton-hosted synthesizer models.

Light on purpose: Triton's python models import rivulet.tts.chunking/streaming/triton_model.
"""
