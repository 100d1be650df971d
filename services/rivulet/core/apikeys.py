"""API keys: made once, stored only as SHA-256 hashes in a YAML file (a Kubernetes Secret in the chart).

    python -m rivulet.core.apikeys new alice --file keys.yaml [--max-streams 8] [--requests-per-s 20]
        [--service nvidia.riva.asr.RivaSpeechRecognition ...]

prints the new key once (give it to the caller) and appends its entry to the file:

    keys:
      - name: alice
        sha256: 3b0c...            # hex SHA-256 of the key; the key itself is never stored
        services: [nvidia.riva.asr.RivaSpeechRecognition]   # optional; absent = every service
        max_streams: 8             # optional; concurrent streaming RPCs (0 = unlimited)
        requests_per_s: 20         # optional; sustained RPC rate, bursts up to 2 s' worth (0 = unlimited)

Keys are random 256-bit tokens, so one unsalted hash suffices (no password stretching needed).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KEY_PREFIX = "rvk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyFileError(ValueError):
    """The keys file is unusable; the message names the file and the entry."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    sha256: str
    services: frozenset[str] = frozenset()
    max_streams: int | None = None
    requests_per_s: float | None = None

    def allows(self, service: str) -> bool:
        return not self.services or service in self.services


def _entry(path: Path, index: int, raw: Any) -> ApiKey:
    where = f"{path}: keys[{index}]"
    if not isinstance(raw, dict):
        raise KeyFileError(f"{where} must be a mapping with name and sha256")
    unknown = set(raw) - {"name", "sha256", "services", "max_streams", "requests_per_s"}
    if unknown:
        raise KeyFileError(f"{where} has unknown fields {sorted(unknown)}")
    name, digest = str(raw.get("name") or ""), str(raw.get("sha256") or "").lower()
    if not name:
        raise KeyFileError(f"{where} has no name")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise KeyFileError(
            f"{where} ({name}): sha256 must be 64 hex digits (python -m rivulet.core.apikeys hash KEY)"
        )
    services = raw.get("services") or []
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        raise KeyFileError(f"{where} ({name}): services must be a list of gRPC service names")
    max_streams, rate = raw.get("max_streams"), raw.get("requests_per_s")
    if max_streams is not None and (not isinstance(max_streams, int) or max_streams < 0):
        raise KeyFileError(f"{where} ({name}): max_streams must be a whole number >= 0")
    if rate is not None and (not isinstance(rate, int | float) or rate < 0):
        raise KeyFileError(f"{where} ({name}): requests_per_s must be a number >= 0")
    return ApiKey(name, digest, frozenset(services), max_streams, None if rate is None else float(rate))


def load_keys(path: Path) -> dict[str, ApiKey]:
    """The keys of `path` by hash. Raises `KeyFileError` naming the problem."""
    try:
        document = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise KeyFileError(f"API keys file {path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise KeyFileError(f"API keys file {path}: not valid YAML ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys", []), list):
        raise KeyFileError(f"API keys file {path}: expected a mapping with a 'keys' list")
    keys: dict[str, ApiKey] = {}
    for index, raw in enumerate(document.get("keys") or []):
        key = _entry(path, index, raw)
        if key.sha256 in keys:
            raise KeyFileError(
                f"{path}: keys[{index}] ({key.name}) repeats the hash of {keys[key.sha256].name}"
            )
        keys[key.sha256] = key
    return keys


class KeyFile:
    """A keys file re-read when it changes (checked at most once a second): a rotated Secret applies
    without a restart. A broken new version is reported and the last good keys stay in force."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.keys = load_keys(self.path)
        self._stamp = self._mtime()
        self._checked = time.monotonic()
        self.last_error = ""
        self.internal: dict[str, ApiKey] = {}  # keys a process mints for its own calls (never on disk)

    def add_internal(self, name: str, key: str) -> None:
        self.internal[hash_key(key)] = ApiKey(name, hash_key(key))

    def _mtime(self) -> int:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return -1

    def lookup(self, key: str) -> ApiKey | None:
        now = time.monotonic()
        if now - self._checked >= 1.0:
            self._checked = now
            stamp = self._mtime()
            if stamp != self._stamp:
                try:
                    self.keys = load_keys(self.path)
                    self._stamp, self.last_error = stamp, ""
                except KeyFileError as exc:
                    self.last_error = str(exc)
        digest = hash_key(key)
        return self.keys.get(digest) or self.internal.get(digest)


def entry_yaml(name: str, key: str, services: list[str], max_streams: int | None, rate: float | None) -> str:
    entry: dict[str, Any] = {"name": name, "sha256": hash_key(key)}
    if services:
        entry["services"] = services
    if max_streams is not None:
        entry["max_streams"] = max_streams
    if rate is not None:
        entry["requests_per_s"] = rate
    return yaml.safe_dump([entry], sort_keys=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="make a key, print it, append its hash to --file")
    new.add_argument("name")
    new.add_argument("--file", type=Path, help="keys file to append to (created if missing)")
    new.add_argument("--service", action="append", default=[], help="limit the key to this gRPC service")
    new.add_argument("--max-streams", type=int)
    new.add_argument("--requests-per-s", type=float)
    hashed = commands.add_parser("hash", help="print the sha256 entry value of an existing key")
    hashed.add_argument("key")
    args = parser.parse_args(argv)
    if args.command == "hash":
        print(hash_key(args.key))
        return
    key = new_key()
    entry = entry_yaml(args.name, key, args.service, args.max_streams, args.requests_per_s)
    if args.file:
        existing = args.file.read_text() if args.file.exists() else ""
        if not existing.strip():
            existing = "keys:\n"
        indented = "".join(f"  {line}\n" for line in entry.splitlines())
        args.file.write_text(existing.rstrip("\n") + "\n" + indented)
        load_keys(args.file)  # the file must still parse
        print(f"added {args.name} to {args.file}")
    else:
        print("keys:\n" + "".join(f"  {line}\n" for line in entry.splitlines()), end="")
    print(f"API key for {args.name} (shown once, store it now): {key}")


if __name__ == "__main__":
    main()
