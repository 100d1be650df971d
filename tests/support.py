"""Helpers for tests that start real servers (shared with bench/: see rivulet.core.processes)."""

import json
import os
import time
from pathlib import Path

from rivulet.core.processes import (
    ROOT,
    ServiceProcess,
    free_port,
    health_status,
    service_env,
    wait_for_health,
)

__all__ = [
    "ROOT",
    "ServiceProcess",
    "fault_figures",
    "free_port",
    "health_status",
    "metric",
    "rss_mib",
    "service_env",
    "wait_for_health",
    "wait_for_metric",
]


def metric(service: ServiceProcess, name: str, **labels: str) -> float:
    """Current value of one sample of the service's Prometheus metrics (0 when absent)."""
    for sample in service.metric_samples():
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return 0.0


def rss_mib(pid: int) -> float:
    """A process's resident memory (VmRSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def wait_for_metric(service: ServiceProcess, name: str, want, timeout_s: float = 15.0, **labels) -> float:
    """Poll until `want(value)` holds (a deadline, not a guess: fails with the last value seen)."""
    deadline = time.monotonic() + timeout_s
    value = metric(service, name, **labels)
    while not want(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} stayed at {value}")
        time.sleep(0.05)
        value = metric(service, name, **labels)
    return value


def fault_figures(name: str, figures: dict) -> None:
    """Print a fault test's figures; with RIVULET_FAULT_REPORT_DIR set, also write them there as
    `<name>.json` (the README's fault figures come from such a run)."""
    text = json.dumps(figures, indent=2)
    print(f"{name}: {text}")
    if directory := os.environ.get("RIVULET_FAULT_REPORT_DIR"):
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / f"{name}.json").write_text(text + "\n")
