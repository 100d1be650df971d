"""python -m rivulet.clustercheck --namespace NS --release NAME [--address host:port] ..."""

from __future__ import annotations

import argparse
import sys

from rivulet.clustercheck.report import exit_code, render
from rivulet.clustercheck.smoke import Endpoint, TurnOptions


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m rivulet.clustercheck",
        description="Check a Rivulet Helm release: rollout, Triton models, gRPC health, smoke turns.",
    )
    p.add_argument("--namespace", "-n", required=True, help="namespace of the release")
    p.add_argument("--release", "-r", required=True, help="Helm release name")
    p.add_argument("--address", help="client address host:port (default: the gRPC ingress's load balancer)")
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--tls", dest="tls", action="store_true", default=None, help="use TLS to --address")
    tls.add_argument("--plaintext", dest="tls", action="store_false", help="no TLS to --address")
    p.add_argument("--ca-cert", help="CA certificate (PEM) that signed the ingress certificate")
    p.add_argument("--server-name", help="TLS server name when --address is an IP")
    p.add_argument("--text", default="what time is it", help="smoke turn text for NLU AnalyzeIntent")
    p.add_argument("--expect-intent", help="intent the NLU smoke turn must return")
    p.add_argument("--asr-model", help="ASR model GetRivaSpeechRecognitionConfig must list")
    p.add_argument("--tts-text", default="Rivulet is ready.", help="smoke text for TTS Synthesize")
    p.add_argument("--voice", help="TTS voice for the smoke synthesis (default: the service's default)")
    p.add_argument("--dialog-text", default="what time is it", help="smoke text for Dialog TextTurn")
    p.add_argument("--skip-smoke", action="store_true", help="do not run the smoke turns (reported as SKIP)")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        help="a Triton model that must be READY (repeatable; default: triton.modelBuilder.models)",
    )
    p.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds to wait for the rollout (default 1800)"
    )
    p.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)"
    )
    p.add_argument("--context", help="kubeconfig context")
    return p.parse_args(argv)


def turn_options(args: argparse.Namespace) -> TurnOptions:
    """What the smoke turns (one per deployed API) say and expect."""
    return TurnOptions(
        nlu_text=args.text, expect_intent=args.expect_intent, asr_model=args.asr_model,
        tts_text=args.tts_text, tts_voice=args.voice, dialog_text=args.dialog_text,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from kubernetes import config

    from rivulet.clustercheck.cluster import Cluster, Options, run

    try:
        config.load_kube_config(config_file=args.kubeconfig, context=args.context)
    except config.ConfigException:
        config.load_incluster_config()
    endpoint = None
    if args.address:
        use_tls = args.tls if args.tls is not None else args.address.endswith(":443")
        endpoint = Endpoint(args.address, tls=use_tls, ca_cert=args.ca_cert, server_name=args.server_name)
    opts = Options(
        namespace=args.namespace,
        release=args.release,
        timeout_s=args.timeout,
        expected_models=frozenset(args.model),
        endpoint=endpoint,
        ca_cert=args.ca_cert,
        skip_smoke=args.skip_smoke,
        turn_options=turn_options(args),
    )
    report = run(Cluster(), opts, progress=lambda line: print(f"... {line}", file=sys.stderr, flush=True))
    print(render(report))
    return exit_code(report)


if __name__ == "__main__":
    sys.exit(main())
