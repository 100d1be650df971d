"""Write the values.schema.json files of the Rivulet charts.

The gRPC service charts (nlu, asr, tts, dialog) share one block shape, so they share one schema;
this script is the single source for it and for the shared pieces (image, resources, probes) the
triton and redis schemas use. Run it after changing a schema here:

    .venv/bin/python helm/schemas/gen_schemas.py

tests/helm/test_schema.py fails when a committed schema differs from what this script writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CHARTS = Path(__file__).resolve().parent.parent / "rivulet" / "charts"
SERVICE_CHARTS = ("nlu", "asr", "tts", "dialog")

QUANTITY = {
    "description": "a Kubernetes quantity such as 500m, 2, 1Gi",
    "anyOf": [
        {"type": "string", "pattern": r"^[+]?[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"},
        {"type": "number", "exclusiveMinimum": 0},
    ],
}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
POS_INT = {"type": "integer", "minimum": 1}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# One path segment that does not start with a dot (so neither "." nor ".." nor hidden files).
SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"
DNS_LABEL = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
HOST = {
    "type": "string",
    "pattern": r"^$|^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    "description": "a DNS name such as riva.example.com (no scheme, no port)",
}


def obj(props: dict[str, Any], required: list[str] | None = None, closed: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if closed:
        out["additionalProperties"] = False
    if required:
        out["required"] = required
    return out


def image() -> dict[str, Any]:
    return obj(
        {
            "registry": {"type": "string"},
            "repository": {"type": "string", "minLength": 1},
            "tag": {"type": "string"},
            "digest": {"type": "string", "pattern": r"^$|^sha256:[a-f0-9]{64}$"},
            "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
        },
        ["repository", "pullPolicy"],
    )


def resources(required: list[str] | None = None) -> dict[str, Any]:
    """Requests and limits for cpu and memory, both required: every pod states what it needs."""
    amounts = obj({"cpu": QUANTITY, "memory": QUANTITY}, ["cpu", "memory"], closed=False)
    amounts["additionalProperties"] = QUANTITY
    return obj({"requests": amounts, "limits": amounts}, required or ["requests", "limits"])


def probe(min_failures: int = 1) -> dict[str, Any]:
    return obj(
        {
            "periodSeconds": POS_INT,
            "timeoutSeconds": POS_INT,
            "failureThreshold": {"type": "integer", "minimum": min_failures},
        },
        ["periodSeconds", "timeoutSeconds", "failureThreshold"],
    )


def service_probes() -> dict[str, Any]:
    return obj(
        {"startup": probe(), "readiness": probe(), "liveness": probe(2)},
        ["startup", "readiness", "liveness"],
    )


def cpu_autoscaling(**required_extra: dict[str, Any]) -> dict[str, Any]:
    """An HPA block on CPU; each keyword adds a required metric block (e.g. inFlightStreams)."""
    return obj(
        {
            "enabled": {"type": "boolean"},
            "minReplicas": {"type": "integer", "minimum": 1},
            "maxReplicas": {"type": "integer", "minimum": 1},
            "targetCPUUtilizationPercentage": {"type": "integer", "minimum": 1, "maximum": 100},
            **required_extra,
            "scaleDownStabilizationSeconds": {"type": "integer", "minimum": 0, "maximum": 3600},
        },
        ["enabled", "minReplicas", "maxReplicas", "targetCPUUtilizationPercentage", *required_extra],
    )


def pod_security() -> dict[str, Any]:
    non_root = {"type": "integer", "minimum": 1, "description": "a non-root id (root, 0, is not allowed)"}
    return obj(
        {"runAsUser": non_root, "runAsGroup": non_root, "fsGroup": non_root},
        ["runAsUser", "runAsGroup", "fsGroup"],
    )


def scheduling() -> dict[str, Any]:
    return {
        "podLabels": STRING_MAP,
        "podAnnotations": STRING_MAP,
        "priorityClassName": {"type": "string"},
        "nodeSelector": STRING_MAP,
        "tolerations": {"type": "array", "items": {"type": "object"}},
        "affinity": {"type": "object"},
        "topologySpreadConstraints": {"type": "array", "items": {"type": "object"}},
        "imagePullSecrets": {"type": "array", "items": DNS_LABEL},
    }


def pdb() -> dict[str, Any]:
    return obj(
        {
            "enabled": {"type": "boolean"},
            "maxUnavailable": {
                "description": "pods (integer >= 1) or a percentage such as 25%",
                "anyOf": [POS_INT, {"type": "string", "pattern": r"^[1-9][0-9]?%$|^100%$"}],
            },
        },
        ["enabled", "maxUnavailable"],
    )


def calls() -> dict[str, Any]:
    return {
        "type": "array",
        "description": "gRPC services this one calls: env var, chart name and port (or an address)",
        "items": obj(
            {
                "env": {"type": "string", "pattern": r"^RIVULET_[A-Z0-9_]+$"},
                "service": {"enum": list(SERVICE_CHARTS)},
                "port": PORT,
                "address": {
                    "type": "string",
                    "pattern": r"^$|^[A-Za-z0-9._:\[\]/-]+:[0-9]+$",
                    "description": "host:port of a service outside this release; empty: the release's",
                },
            },
            ["env", "service", "port"],
        ),
    }


def grpc_service_schema() -> dict[str, Any]:
    props: dict[str, Any] = {
        "global": {"type": "object"},
        "enabled": {"type": "boolean"},
        "grpcServiceName": {
            "type": "string",
            "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$",
            "description": "a fully qualified gRPC service name (package.Service)",
        },
        "image": image(),
        "replicaCount": {"type": "integer", "minimum": 1},
        "containerPorts": obj({"grpc": PORT, "metrics": PORT}, ["grpc", "metrics"]),
        "service": obj({"port": PORT}, ["port"]),
        "needs": obj(
            {name: {"type": "boolean"} for name in ("triton", "redis", "grpcServices")},
            ["triton", "redis", "grpcServices"],
        ),
        "calls": calls(),
        "tritonGrpcPort": PORT,
        "redisPort": PORT,
        "redisDatabase": {"type": "integer", "minimum": 0, "maximum": 15},
        "logLevel": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]},
        "shutdownGraceSeconds": {"type": "integer", "minimum": 1, "maximum": 3600},
        "preStopSleepSeconds": {"type": "integer", "minimum": 0, "maximum": 120},
        "extraEnv": {"type": "array", "items": obj({"name": {"type": "string"}}, ["name"], closed=False)},
        # the Triton model repository, read-only (the asr chart mounts it for language models)
        "modelRepository": obj(
            {
                "mount": {"type": "boolean"},
                "mountPath": {"type": "string", "pattern": "^/"},
                "claimName": {"type": "string"},
            },
            ["mount", "mountPath", "claimName"],
        ),
        "resources": resources(),
        "probes": service_probes(),
        "autoscaling": cpu_autoscaling(
            inFlightStreams=obj(
                {
                    "enabled": {"type": "boolean"},
                    "metricName": {"type": "string", "minLength": 1},
                    "averageValue": QUANTITY,
                },
                ["enabled", "metricName", "averageValue"],
            )
        ),
        "pdb": pdb(),
        "podSecurityContext": pod_security(),
        **scheduling(),
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Rivulet gRPC service chart values",
        **obj(props, [k for k in props if k not in ("global", "extraEnv", *scheduling())]),
    }


def gateway_schema() -> dict[str, Any]:
    seconds = {"type": "number", "exclusiveMinimum": 0}
    props: dict[str, Any] = {
        "global": {"type": "object"},
        "enabled": {"type": "boolean"},
        "image": image(),
        "replicaCount": {"type": "integer", "minimum": 1},
        "containerPorts": obj({"http": PORT}, ["http"]),
        "service": obj({"port": PORT}, ["port"]),
        "calls": calls(),
        "settings": obj(
            {
                "allowedOrigins": {
                    "type": "string",
                    "pattern": r"^$|^https?://[^ /]+( https?://[^ /]+)*$",
                    "description": "space-separated origins such as https://app.example.com (no path)",
                },
                "maxConversations": POS_INT,
                "maxFrameBytes": {"type": "integer", "minimum": 640},
                "maxFramesPerSecond": {"type": "integer", "minimum": 50},
                "startTimeoutSeconds": seconds,
                "rpcTimeoutSeconds": seconds,
            },
            [
                "allowedOrigins",
                "maxConversations",
                "maxFrameBytes",
                "maxFramesPerSecond",
                "startTimeoutSeconds",
                "rpcTimeoutSeconds",
            ],
        ),
        "logLevel": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]},
        "tls": {
            **obj({"enabled": {"type": "boolean"}, "secretName": SECRET_NAME}, ["enabled", "secretName"]),
            **required_when_enabled("secretName"),
        },
        "apiKeySecret": SECRET_NAME,
        "apiKeySecretKey": {"type": "string", "minLength": 1},
        "ingress": obj(
            {
                "enabled": {"type": "boolean"},
                "className": {"type": "string", "minLength": 1},
                "host": HOST,
                "tls": obj({"enabled": {"type": "boolean"}, "secretName": {"type": "string"}}, ["enabled"]),
                "timeoutSeconds": POS_INT,
                "annotations": STRING_MAP,
            },
            ["enabled", "className", "tls"],
        ),
        "preStopSleepSeconds": {"type": "integer", "minimum": 0, "maximum": 120},
        "extraEnv": {"type": "array", "items": obj({"name": {"type": "string"}}, ["name"], closed=False)},
        "resources": resources(),
        "probes": service_probes(),
        "autoscaling": cpu_autoscaling(),
        "pdb": pdb(),
        "podSecurityContext": pod_security(),
        **scheduling(),
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Rivulet gateway chart values",
        **obj(props, [k for k in props if k not in ("global", "extraEnv", *scheduling())]),
    }


def triton_schema() -> dict[str, Any]:
    sched = scheduling()
    props: dict[str, Any] = {
        "global": {"type": "object"},
        "enabled": {"type": "boolean"},
        "image": image(),
        "replicaCount": {"type": "integer", "minimum": 1},
        "gpu": obj(
            {
                "resourceName": {"type": "string", "pattern": r"^[a-z0-9.-]+/[a-z0-9.-]+$"},
                "count": {"type": "integer", "minimum": 1, "description": "GPUs per Triton pod (at least 1)"},
            },
            ["resourceName", "count"],
        ),
        "resources": resources(),
        "service": obj(
            {"httpPort": PORT, "grpcPort": PORT, "metricsPort": PORT}, ["httpPort", "grpcPort", "metricsPort"]
        ),
        "extraArgs": {"type": "array", "items": {"type": "string", "pattern": "^--"}},
        "shmSize": QUANTITY,
        "modelRepository": obj(
            {
                "mountPath": {"type": "string", "pattern": "^/[^ ]*$"},
                "existingClaim": {"type": "string"},
                "storageClass": {"type": "string"},
                "accessModes": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"enum": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]},
                },
                "size": QUANTITY,
                "keep": {"type": "boolean"},
            },
            ["mountPath", "existingClaim", "storageClass", "accessModes", "size", "keep"],
        ),
        "modelBuilder": obj(
            {
                "enabled": {"type": "boolean"},
                "image": image(),
                "models": {
                    "type": "array",
                    "minItems": 1,
                    "uniqueItems": True,
                    "description": "model directory names under the builder image's models/",
                    "items": {"type": "string", "pattern": r"^[A-Za-z0-9_-]+$"},
                },
                "builds": {
                    "type": "array",
                    "items": obj(
                        {
                            "module": {"type": "string", "pattern": r"^pipelines(\.[a-z_][a-z0-9_]*)+$"},
                            "args": {
                                "type": "array",
                                "items": {"type": "string", "pattern": "^[^']*$"},
                            },
                            "skipIfPresent": {
                                "type": "string",
                                "pattern": rf"^$|^{SEGMENT}(/{SEGMENT})*$",
                                "description": "a path in the model repository; no segment starts with a dot",
                            },
                        },
                        ["module", "args"],
                    ),
                },
                "revision": {"type": ["string", "integer"]},
                "resources": resources(),
                "activeDeadlineSeconds": POS_INT,
                "backoffLimit": {"type": "integer", "minimum": 0},
                "ttlSecondsAfterFinished": {"type": "integer", "minimum": 0},
                "nodeSelector": STRING_MAP,
                "tolerations": sched["tolerations"],
            },
            ["enabled", "image", "models", "builds", "revision", "resources"],
        ),
        "probes": service_probes(),
        "terminationGracePeriodSeconds": {"type": "integer", "minimum": 1},
        "autoscaling": obj(
            {
                "enabled": {"type": "boolean"},
                "minReplicas": {"type": "integer", "minimum": 1},
                "maxReplicas": {"type": "integer", "minimum": 1},
                "queueTime": obj(
                    {"metricName": {"type": "string", "minLength": 1}, "averageValue": QUANTITY},
                    ["metricName", "averageValue"],
                ),
                "scaleDownStabilizationSeconds": {"type": "integer", "minimum": 0, "maximum": 3600},
            },
            ["enabled", "minReplicas", "maxReplicas", "queueTime"],
        ),
        "pdb": pdb(),
        "podSecurityContext": pod_security(),
        **sched,
    }
    # Triton must land on GPU nodes: a node selector is required (the default selects nvidia.com/gpu.present).
    props["nodeSelector"] = {
        **STRING_MAP,
        "minProperties": 1,
        "description": "GPU node labels; Triton must not land on CPU nodes",
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Rivulet Triton chart values",
        **obj(
            props,
            [
                "enabled",
                "image",
                "gpu",
                "resources",
                "service",
                "modelRepository",
                "modelBuilder",
                "probes",
                "autoscaling",
                "pdb",
                "podSecurityContext",
                "nodeSelector",
            ],
        ),
    }


def redis_schema() -> dict[str, Any]:
    sched = scheduling()
    props: dict[str, Any] = {
        "global": {"type": "object"},
        "enabled": {"type": "boolean"},
        "image": image(),
        "auth": obj(
            {
                "password": {
                    "type": "string",
                    "pattern": "^[A-Za-z0-9._~-]*$",
                    "description": "URL-safe characters only (it goes into redis:// URLs)",
                }
            },
            ["password"],
        ),
        "service": obj({"port": PORT}, ["port"]),
        "persistence": obj(
            {
                "enabled": {"type": "boolean"},
                "storageClass": {"type": "string"},
                "accessModes": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"enum": ["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"]},
                },
                "size": QUANTITY,
            },
            ["enabled", "accessModes", "size"],
        ),
        "config": obj(
            {
                "appendfsync": {"enum": ["always", "everysec", "no"]},
                "maxmemory": {"type": "string", "pattern": r"^[0-9]+([kmg]b?)?$"},
                "maxmemoryPolicy": {
                    "enum": [
                        "noeviction",
                        "allkeys-lru",
                        "allkeys-lfu",
                        "allkeys-random",
                        "volatile-lru",
                        "volatile-lfu",
                        "volatile-random",
                        "volatile-ttl",
                    ]
                },
                "extra": {"type": "string"},
            },
            ["appendfsync", "maxmemory", "maxmemoryPolicy"],
        ),
        "resources": resources(),
        "podSecurityContext": pod_security(),
        "terminationGracePeriodSeconds": {"type": "integer", "minimum": 1},
        **{k: v for k, v in sched.items() if k != "topologySpreadConstraints"},
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Rivulet Redis chart values",
        **obj(
            props,
            [
                "enabled",
                "image",
                "auth",
                "service",
                "persistence",
                "config",
                "resources",
                "podSecurityContext",
            ],
        ),
    }


SECRET_NAME = {
    "type": "string",
    "pattern": r"^$|^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    "maxLength": 253,
    "description": "the name of a Secret in the release namespace",
}


def required_when_enabled(field: str) -> dict[str, Any]:
    """`field` must be non-empty when the block's `enabled` is true."""
    return {
        "if": {"properties": {"enabled": {"const": True}}, "required": ["enabled"]},
        "then": {"properties": {field: {"minLength": 1}}},
    }


def umbrella_schema() -> dict[str, Any]:
    selector = obj(
        {
            "matchLabels": STRING_MAP,
            "matchExpressions": {"type": "array", "items": {"type": "object"}},
        }
    )
    toggle = {"type": "object", "properties": {"enabled": {"type": "boolean"}}, "required": ["enabled"]}
    props: dict[str, Any] = {
        "global": obj(
            {
                "imageRegistry": {"type": "string"},
                "imagePullSecrets": {"type": "array", "items": DNS_LABEL},
                "redis": obj(
                    {
                        "existingSecret": {"type": "string"},
                        "existingSecretPasswordKey": {"type": "string", "minLength": 1},
                    },
                    ["existingSecret", "existingSecretPasswordKey"],
                ),
                "networkPolicy": obj(
                    {
                        "enabled": {"type": "boolean"},
                        "ingressControllerNamespaceSelector": selector,
                        "ingressControllerPodSelector": selector,
                        "monitoringNamespaceSelector": selector,
                    },
                    ["enabled", "ingressControllerNamespaceSelector", "monitoringNamespaceSelector"],
                ),
                "tls": {
                    **obj(
                        {
                            "enabled": {"type": "boolean"},
                            "secretName": SECRET_NAME,
                            "mutual": {"type": "boolean"},
                            "backendName": {"type": "string"},
                            "redis": {"type": "boolean"},
                            "triton": {"type": "boolean"},
                            "healthPort": PORT,
                        },
                        ["enabled", "secretName", "mutual", "healthPort"],
                    ),
                    **required_when_enabled("secretName"),
                },
                "auth": {
                    **obj(
                        {
                            "enabled": {"type": "boolean"},
                            "existingSecret": SECRET_NAME,
                            "secretKey": {"type": "string", "minLength": 1},
                            "openHealth": {"type": "boolean"},
                            "openReflection": {"type": "boolean"},
                            "defaultMaxStreams": {"type": "integer", "minimum": 0},
                            "defaultRequestsPerSecond": {"type": "number", "minimum": 0},
                            "internalKeySecret": SECRET_NAME,
                            "internalKeySecretKey": {"type": "string", "minLength": 1},
                        },
                        ["enabled", "existingSecret", "secretKey", "openHealth", "openReflection"],
                    ),
                    **required_when_enabled("existingSecret"),
                },
                "serviceMonitor": obj(
                    {
                        "enabled": {"type": "boolean"},
                        "namespace": {"type": "string"},
                        "labels": STRING_MAP,
                        "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                    },
                    ["enabled", "interval", "scrapeTimeout"],
                ),
            },
            ["imageRegistry", "imagePullSecrets", "redis", "tls", "auth", "networkPolicy", "serviceMonitor"],
        ),
        "ingress": obj(
            {
                "enabled": {"type": "boolean"},
                "className": {"type": "string", "minLength": 1},
                "host": HOST,
                "tls": obj({"enabled": {"type": "boolean"}, "secretName": {"type": "string"}}, ["enabled"]),
                "streamTimeoutSeconds": {"type": "integer", "minimum": 1},
                "maxBodySize": {"type": "string", "pattern": "^[0-9]+[kmg]?$"},
                "annotations": STRING_MAP,
            },
            ["enabled", "className", "tls"],
        ),
        **{name: toggle for name in ("nlu", "asr", "tts", "dialog", "gateway", "triton", "redis", "common")},
    }
    props["common"] = {"type": "object", "description": "values of the common library chart (none)"}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Rivulet umbrella chart values",
        **obj(props, ["global", "ingress", "nlu", "asr", "tts", "dialog", "gateway", "triton", "redis"]),
    }


def write(path: Path, schema: dict[str, Any]) -> bool:
    text = json.dumps(schema, indent=2) + "\n"
    changed = not path.exists() or path.read_text() != text
    path.write_text(text)
    return changed


def schemas() -> dict[Path, dict[str, Any]]:
    out = {CHARTS / name / "values.schema.json": grpc_service_schema() for name in SERVICE_CHARTS}
    out[CHARTS / "gateway" / "values.schema.json"] = gateway_schema()
    out[CHARTS / "triton" / "values.schema.json"] = triton_schema()
    out[CHARTS / "redis" / "values.schema.json"] = redis_schema()
    out[CHARTS.parent / "values.schema.json"] = umbrella_schema()
    return out


def main() -> int:
    for path, schema in schemas().items():
        if path.parent.exists():
            print(("wrote " if write(path, schema) else "unchanged ") + str(path.relative_to(CHARTS.parent)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
