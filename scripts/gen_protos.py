"""Generate Python code for the .proto sources under protos/ into services/.

The Riva protos keep their upstream file names (riva/proto/riva_*.proto), so the generated
descriptors are byte-identical to nvidia-riva-client's and both can live in one process. The
output lands in services/riva/proto (a namespace package beside riva.client) and, for Rivulet's
own APIs, services/rivulet/<api>/. grpc.health.v1 is not generated: grpcio-health-checking serves it.
"""

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "services"


def main() -> int:
    sources = sorted(
        str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto") if "grpc/health" not in str(p)
    )
    include = str(Path(protoc.__file__).parent / "_proto")
    args = ["protoc", f"-I{PROTOS}", f"-I{include}", f"--python_out={OUT}", f"--pyi_out={OUT}"]
    args += [f"--grpc_python_out={OUT}", *sources]
    rc = protoc.main(args)
    if rc != 0:
        print("protoc failed", file=sys.stderr)
        return rc
    print(f"==> generated Python for {len(sources)} proto files into {OUT.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
