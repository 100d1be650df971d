"""Rivulet's shared core: settings, gRPC server bootstrap, metrics, logs, Triton and Redis clients."""
