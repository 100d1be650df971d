"""Proactive messages on an open Converse stream: a timer or alarm fired (the scheduler queues the
announcement in Redis and publishes on the session's channel), announced and spoken in turn."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError

from rivulet.core.errors import RivuletError
from rivulet.dialog.converse_turns import ANNOUNCE
from rivulet.dialog.engine import new_turn_id
from rivulet.dialog.reply_speech import ReplySpeech
from rivulet.dialog.state import Keys
from rivulet.dialog.v1 import dialog_pb2 as pb

log = logging.getLogger(__name__)


class Announcements(ReplySpeech):
    """Announcements waiting for the session, delivered (and spoken) when the worker gets to them."""

    async def _announce(self) -> None:
        try:
            items = await self.engine.store.take_announcements(self.sid)
        except RivuletError as exc:
            log.warning("announcements of %s not read: %s", self.sid, exc.message)
            return
        for item in items:
            turn_id = f"announce-{item.get('timer_id', new_turn_id())}"
            self.event(turn_id, pb.TurnEvent.ANNOUNCEMENT, detail=item.get("label", ""))
            self.send(turn_id, reply=pb.Reply(text=item["text"], action=f"{item.get('kind', 'timer')}.fired"))
            if self.cfg.voice:
                await self._speak(turn_id, item["text"])

    async def _listen_announcements(self) -> None:
        channel = Keys(self.sid).channel
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self.work.put_nowait(ANNOUNCE)
            except (RedisError, OSError) as exc:
                log.warning("announcement channel of %s lost (%s); resubscribing", self.sid, exc)
                await asyncio.sleep(1.0)
                self.work.put_nowait(ANNOUNCE)  # catch up on anything published meanwhile
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
