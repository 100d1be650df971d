"""The dialog manager: full-duplex voice conversations (ASR, NLU, policy and skills, TTS), state in Redis."""
