"""`python -m rivulet.dialog.replay SESSION`: print a conversation from its event log in Redis, or
replay it (`--rerun HOST:PORT`): send the user's turns again, in order, as text turns to a dialog
service under a fresh session id, and show each original reply beside the new one.

    python -m rivulet.dialog.replay kitchen-1                       # the log, one line per event
    python -m rivulet.dialog.replay kitchen-1 --json                # the raw events, JSON lines
    python -m rivulet.dialog.replay kitchen-1 --rerun localhost:50051
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time

import grpc

from rivulet.core.redis_client import create_redis
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.store import SessionStore


def describe(event: dict) -> str:
    data, kind = event["data"], event["type"]
    if kind == "user":
        return f"USER{' (typed)' if data.get('typed') else ''}: {data.get('text', '')}"
    if kind == "nlu":
        slots = ", ".join(f"{k}={v}" for k, v in data.get("slots", []))
        return f"  nlu: {data.get('intent')} ({data.get('score', 0):.2f}) {slots}".rstrip()
    if kind == "reply":
        slots = " ".join(f"{k}={v}" for k, v in sorted(data.get("slots", {}).items()))
        return f"ASSISTANT: {data.get('text', '')}   [{data.get('action')}{' ' + slots if slots else ''}]"
    if kind == "announcement":
        return f"ASSISTANT (announcement): {data.get('text', '')}"
    if kind in ("barge_in", "played"):
        verb = "interrupted after" if kind == "barge_in" else "played"
        return f"  reply {verb} {data.get('played_ms', 0)} ms"
    return f"  {kind}: {json.dumps(data, ensure_ascii=False)}"


async def load(session_id: str, redis_url: str) -> list[dict]:
    redis = create_redis(redis_url)
    try:
        return await SessionStore(redis, ttl_s=1).read_log(session_id)
    finally:
        await redis.aclose()


def rerun(events: list[dict], address: str, session_id: str) -> int:
    from rivulet.dialog.v1 import dialog_pb2 as pb
    from rivulet.dialog.v1 import dialog_pb2_grpc

    new_session = f"{session_id}-replay-{int(time.time())}"[:128]
    replies = {e["turn"]: e["data"] for e in events if e["type"] == "reply"}
    changed = 0
    with grpc.insecure_channel(address) as channel:
        stub = dialog_pb2_grpc.DialogStub(channel)
        for event in events:
            if event["type"] != "user":
                continue
            text = event["data"]["text"]
            answer = stub.TextTurn(pb.TextTurnRequest(session_id=new_session, text=text), timeout=30)
            before = replies.get(event["turn"], {})
            same = before.get("action") == answer.reply.action
            changed += not same
            print(f"USER: {text}")
            print(f"  was: {before.get('text', '?')}   [{before.get('action', '?')}]")
            print(f"  now: {answer.reply.text}   [{answer.reply.action}]{'' if same else '   <- differs'}")
    print(f"replayed into session {new_session}: {changed} turn(s) ended differently")
    return 1 if changed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("session_id")
    parser.add_argument("--redis-url", default=DialogSettings().redis_url)
    parser.add_argument("--json", action="store_true", help="print raw events as JSON lines")
    parser.add_argument("--rerun", metavar="HOST:PORT", help="send the user turns again to this service")
    args = parser.parse_args(argv)
    events = asyncio.run(load(args.session_id, args.redis_url))
    if not events:
        print(f"no events for session {args.session_id!r} at {args.redis_url}", file=sys.stderr)
        return 2
    if args.rerun:
        return rerun(events, args.rerun, args.session_id)
    for event in events:
        if args.json:
            print(json.dumps(event, ensure_ascii=False))
        else:
            stamp = dt.datetime.fromtimestamp(event["t"]).strftime("%H:%M:%S.%f")[:-3]
            print(f"{stamp}  {describe(event)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
