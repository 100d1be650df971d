"""The GPU check: each model's GPU path against its CPU path, then measured; a report either way.

    python -m bench.gpu_check prepare [--inputs .gpu_check]      # here: speech clips + the tiny neural voice
    python -m bench.gpu_check stage-wheel WHEEL [--inputs .gpu_check]   # cut onnxruntime-gpu into parts
    python -m bench.gpu_check run [--inputs .gpu_check] [--out DIR]     # on the GPU machine

``run`` exits 0 when every parity check passed, 1 when one failed, 2 when there is no GPU that
onnxruntime can use (it says why, writes a report saying so, and measures nothing). It imports
numpy, onnxruntime(-gpu), tokenizers and this repository's model code; the NLU step also torch and
transformers when no built NLU model is given. No Triton, no virtualenv.

On a remote GPU machine that takes tens of MiB per transfer and has only its own Python (3.12 with
numpy, torch, transformers, tokenizers, onnx and a CPU onnxruntime): onnxruntime-gpu (1.31.1 is a
CUDA 13 build, 244 MiB) travels in parts, one per call to a warm machine, re-joined under /tmp:

    pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \\
        -d /tmp/whl onnxruntime-gpu==1.31.1
    python -m bench.gpu_check prepare && python -m bench.gpu_check stage-wheel /tmp/whl/onnxruntime_gpu-*.whl
    # .gpu_check/ is git-ignored; each call carries one part (calls within 30 s keep the machine warm):
    #   carry [".gpu_check/wheel/part-00"]: cat .gpu_check/wheel/part-00 >> /tmp/ort.whl
    #   ... one call per part ...
    #   carry [".gpu_check/wheel/SHA256", ".gpu_check/wheel/NAME", ".gpu_check/inputs"] (the check):
    #     (cd /tmp && sha256sum -c $OLDPWD/.gpu_check/wheel/SHA256) &&
    #     cp /tmp/ort.whl /tmp/$(cat .gpu_check/wheel/NAME) &&
    #     python3 -m pip install -q --no-deps --target /tmp/site /tmp/$(cat .gpu_check/wheel/NAME) &&
    #     PYTHONPATH=/tmp/site:. python3 -m bench.gpu_check run --inputs .gpu_check/inputs --out $OUT
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.gpu_check import asr, environment, nlu, tts
from pipelines import onnx_device

ROOT = Path(__file__).resolve().parents[2]
ASR_MODEL = ROOT / "models" / "asr_streaming" / "1"
DEFAULT_INPUTS = ROOT / ".gpu_check" / "inputs"
PART_BYTES = 48 * 1024 * 1024
EXIT_PASSED, EXIT_PARITY_FAILED, EXIT_NO_GPU = 0, 1, 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="check and measure every model's GPU path; write the report")
    run.add_argument("--inputs", type=Path, default=DEFAULT_INPUTS, help="what `prepare` made")
    default_out = Path(os.environ.get("OUT") or ROOT / ".gpu_check" / "report")
    run.add_argument("--out", type=Path, default=default_out, help="report folder (default: $OUT if set)")
    run.add_argument("--nlu-model", type=Path, help="a built intent model version directory")
    run.add_argument("--tts-model", type=Path, help="an exported neural voice version directory")
    run.add_argument("--asr-levels", type=int, nargs="+", default=[64, 128, 256, 384, 512, 768, 1024])
    run.add_argument("--seconds", type=float, default=8.0, help="audio per stream at each ASR level")
    run.add_argument("--only", nargs="+", choices=("asr", "nlu", "tts"), default=["asr", "nlu", "tts"])
    run.add_argument(
        "--cpu-dry-run",
        action="store_true",
        help="run every step with the CPU provider in the GPU's place (tests the script; no GPU figures)",
    )
    prepare = commands.add_parser("prepare", help="speech clips and the tiny neural voice, into --inputs")
    prepare.add_argument("--inputs", type=Path, default=DEFAULT_INPUTS)
    prepare.add_argument("--clips", type=int, default=12)
    stage = commands.add_parser("stage-wheel", help="cut a wheel into parts small enough for one transfer")
    stage.add_argument("wheel", type=Path)
    stage.add_argument("--out", type=Path, default=ROOT / ".gpu_check" / "wheel")
    return parser.parse_args(argv)


# ---- run -----------------------------------------------------------------------------------------


def write_report(out: Path, report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    lines = [f"# GPU check: {report['status']}", "", f"- when: {report['when']}"]
    env = report.get("environment", {})
    lines += [f"- GPU: {env.get('gpu') or '-'} (driver {env.get('driver') or '-'})"]
    lines += [f"- onnxruntime {env.get('onnxruntime')}: {env.get('providers')}"]
    if report.get("reason"):
        lines += ["", f"**{report['reason']}**"]
    for name in ("asr", "nlu", "tts"):
        if name in report:
            lines += ["", f"## {name}", "", "```json", json.dumps(report[name], indent=1, default=str), "```"]
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")


def run(args: argparse.Namespace) -> int:
    report: dict = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    env = environment.describe()
    report["environment"] = env.as_dict()
    if args.cpu_dry_run:
        placement = onnx_device.CPU_PLACEMENT
        report["status"] = "CPU DRY RUN (the CPU provider in the GPU's place: no GPU figures)"
    else:
        try:
            environment.require_gpu(env, str(ASR_MODEL / "frontend.onnx"))
        except environment.NoGpuError as error:
            report.update({"status": "NO GPU", "reason": str(error), "environment": env.as_dict()})
            write_report(args.out, report)
            print(f"gpu_check: NO GPU: {error}\nreport: {args.out / 'gpu_check.md'}", file=sys.stderr)
            return EXIT_NO_GPU
        placement = onnx_device.Placement(kind="GPU", device_id=0)
        report["status"] = "GPU"
        report["environment"] = env.as_dict()  # with what the GPU probe noted
    passed = True
    if "asr" in args.only:
        audios, source = asr.test_audio(args.inputs)
        print(f"asr: parity on {source}")
        report["asr"] = {"audio": source, "parity": asr.parity(ASR_MODEL, placement, audios)}
        report["asr"]["capacity"] = asr.capacity(ASR_MODEL, placement, audios, args.asr_levels, args.seconds)
        passed = passed and report["asr"]["parity"]["passed"]
    if "nlu" in args.only:
        print("nlu:")
        with tempfile.TemporaryDirectory(prefix="gpu-check-nlu-") as workdir:  # not into $OUT: 90 MB
            report["nlu"] = nlu.check(args.nlu_model, Path(workdir), placement)
        passed = passed and report["nlu"]["passed"]
    if "tts" in args.only:
        model = args.tts_model or args.inputs / "tts_fastpitch_tiny" / "1"
        if (model / "fastpitch.onnx").is_file():
            print("tts:")
            report["tts"] = tts.check(model, placement)
            passed = passed and report["tts"]["passed"]
        else:
            report["tts"] = {"skipped": f"no neural voice at {model} (run `prepare`, or pass --tts-model)"}
    report["parity_passed"] = passed
    write_report(args.out, report)
    print(f"gpu_check: {report['status']}: parity {'passed' if passed else 'FAILED'}; report {args.out}")
    return EXIT_PASSED if passed else EXIT_PARITY_FAILED


# ---- prepare (on the development machine) -----------------------------------------------------------


def prepare(args: argparse.Namespace) -> int:
    import subprocess

    import numpy as np
    import soundfile
    import soxr

    from pipelines.asr.paths import data_dir

    args.inputs.mkdir(parents=True, exist_ok=True)
    clips = {}
    for folder, pattern in (("an4_train", "*.flac"), ("fsdd_train", "*.wav")):
        for path in sorted((data_dir() / "speech" / folder).rglob(pattern))[: args.clips // 2]:
            audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
            audio = audio.mean(axis=1)
            if rate != asr.SAMPLE_RATE:
                audio = soxr.resample(audio, rate, asr.SAMPLE_RATE)
            clips[f"{folder}_{path.stem}"] = audio
    np.savez_compressed(args.inputs / "asr_audio.npz", **clips)
    command = [sys.executable, "-m", "pipelines.tts", "tiny-model", "--repository", str(args.inputs)]
    cache = Path(os.environ.get("RIVULET_CACHE_DIR") or Path.home() / ".cache" / "rivulet")
    subprocess.run([*command, "--cache-dir", str(cache)], cwd=ROOT, check=True)
    size = sum(p.stat().st_size for p in args.inputs.rglob("*") if p.is_file())
    print(f"{len(clips)} clips and tts_fastpitch_tiny in {args.inputs} ({size / 2**20:.1f} MiB)")
    return 0


def stage_wheel(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.wheel.read_bytes()
    for old in args.out.glob("part-*"):
        old.unlink()
    for index, start in enumerate(range(0, len(data), PART_BYTES)):
        (args.out / f"part-{index:02d}").write_bytes(data[start : start + PART_BYTES])
    (args.out / "SHA256").write_text(f"{hashlib.sha256(data).hexdigest()}  ort.whl\n")
    (args.out / "NAME").write_text(args.wheel.name + "\n")
    print(f"{args.wheel.name}: {len(data) / 2**20:.0f} MiB in {len(list(args.out.glob('part-*')))} parts")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return {"run": run, "prepare": prepare, "stage-wheel": stage_wheel}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
