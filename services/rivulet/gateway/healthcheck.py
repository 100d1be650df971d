"""`python -m rivulet.gateway.healthcheck [--path /healthz]`: exit 0 iff this container's gateway
answers 200 on its own port (RIVULET_GATEWAY_PORT), over HTTPS when it serves TLS.

The container health check of docker/gateway.Dockerfile. It checks the local process, so the
certificate (often self-signed, or for a public name) is not verified.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import urllib.error
import urllib.request

from rivulet.gateway.settings import GatewaySettings


def local_url(settings: GatewaySettings, path: str) -> str:
    tls = settings.gateway_tls_cert or settings.gateway_tls_self_signed
    return f"{'https' if tls else 'http'}://127.0.0.1:{settings.gateway_port}{path}"


def check(url: str, timeout_s: float = 3.0) -> int:
    """The HTTP status `url` answers (0 when nothing answers)."""
    context = ssl._create_unverified_context() if url.startswith("https") else None
    try:
        with urllib.request.urlopen(url, timeout=timeout_s, context=context) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", default="/healthz", help="/healthz (alive) or /readyz (dialog SERVING)")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    url = local_url(GatewaySettings(), args.path)
    status = check(url, args.timeout)
    print(f"{url}: {status or 'no answer'}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
