"""The TTS `Service` for the server host: Triton clients, voice catalog, servicer, readiness."""

from __future__ import annotations

import grpc

from rivulet.core.aliases import Aliases
from rivulet.core.tls import triton_tls_options
from rivulet.core.triton import TritonClient, refresh_catalog
from rivulet.tts.catalog import VoiceCatalog
from rivulet.tts.servicer import TtsServicer, register
from rivulet.tts.settings import TtsSettings
from rivulet.tts.synthesis import TritonSynthesizer

SERVICE_NAME = "nvidia.riva.tts.RivaSpeechSynthesis"


class TtsService:
    service_names = (SERVICE_NAME,)

    def __init__(self, settings: TtsSettings) -> None:
        self.settings = settings
        self.triton = TritonClient.from_settings(settings)
        self.synthesizer = TritonSynthesizer(
            settings.triton_url, timeout_s=settings.triton_timeout_s, tls_options=triton_tls_options(settings)
        )
        self.catalog = VoiceCatalog(
            settings.tts_default_voice, settings.triton_url, Aliases(settings.tts_voice_aliases)
        )
        self.servicer = TtsServicer(settings, self.synthesizer, self.catalog)

    async def start(self) -> None:
        await self.ready()  # best effort: Triton may come up later; readiness keeps checking

    def register(self, server: grpc.aio.Server) -> None:
        register(server, self.servicer)

    async def ready(self) -> bool:
        """Serving once Triton is up and the default voice's model is loaded."""
        return await refresh_catalog(self.triton, self.catalog)

    async def stop(self) -> None:
        await self.synthesizer.close()
        await self.triton.close()
