"""The dialog `Service` for the server host: Redis, the skill registry, the ASR/NLU/TTS clients, the
timer scheduler and the servicer. Ready when Redis answers (ASR, NLU and TTS failures are reported
per turn, so typed turns keep working while e.g. the ASR is down)."""

from __future__ import annotations

import logging

import grpc

from rivulet.core.redis_client import create_redis, redis_ready
from rivulet.core.tls import ChannelSecurity
from rivulet.dialog.clients import AsrClient, NluClient, TtsClient, close_all
from rivulet.dialog.engine import DialogEngine
from rivulet.dialog.scheduler import TimerScheduler
from rivulet.dialog.servicer import DialogServicer, register
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills import build_registry

log = logging.getLogger(__name__)

SERVICE_NAME = "rivulet.dialog.v1.Dialog"


class DialogService:
    service_names = (SERVICE_NAME,)

    def __init__(self, settings: DialogSettings) -> None:
        self.settings = settings
        self.redis = create_redis(settings.redis_url)
        self.registry = build_registry(settings)
        security = ChannelSecurity.from_settings(settings)  # TLS / API key towards ASR, NLU, TTS
        self.nlu = NluClient(
            settings.dialog_nlu_url, settings.dialog_nlu_domain, settings.dialog_rpc_timeout_s, security
        )
        self.asr = AsrClient(
            settings.dialog_asr_url,
            settings.dialog_asr_model,
            security,
            window_s=settings.dialog_asr_second_pass_window_s,
            captions_ms=settings.dialog_asr_whisper_interims_ms,
        )
        self.tts = TtsClient(settings.dialog_tts_url, settings.dialog_rpc_timeout_s, security)
        self.engine = DialogEngine(settings, self.redis, self.registry, self.nlu)
        self.scheduler = TimerScheduler(
            self.redis, settings.dialog_scheduler_interval_s, settings.dialog_session_ttl_s
        )
        self.servicer = DialogServicer(settings, self.engine, self.asr, self.tts, self.redis)

    async def start(self) -> None:
        self.scheduler.start()

    def register(self, server: grpc.aio.Server) -> None:
        register(server, self.servicer)

    async def ready(self) -> bool:
        return await redis_ready(self.redis)

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.registry.close()
        await close_all(self.nlu, self.asr, self.tts)
        await self.redis.aclose()
