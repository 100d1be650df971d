"""Riva NLU service: intent + slot understanding on Triton-hosted models."""
