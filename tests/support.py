"""Helpers for tests that start real servers (shared with bench/: see rivulet.core.processes)."""

from rivulet.core.processes import (
    ROOT,
    ServiceProcess,
    free_port,
    health_status,
    service_env,
    wait_for_health,
)

__all__ = ["ROOT", "ServiceProcess", "free_port", "health_status", "service_env", "wait_for_health"]
