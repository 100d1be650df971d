"""The ASR `Service` for the server host: Triton client, model catalog, servicer, readiness."""

from __future__ import annotations

import logging

import grpc

from rivulet.asr.catalog import ModelCatalog
from rivulet.asr.sequence import SequenceReleaser
from rivulet.asr.servicer import AsrServicer, register
from rivulet.asr.settings import AsrSettings
from rivulet.core.aliases import Aliases
from rivulet.core.triton import TritonClient, refresh_catalog

log = logging.getLogger(__name__)

SERVICE_NAME = "nvidia.riva.asr.RivaSpeechRecognition"


class AsrService:
    service_names = (SERVICE_NAME,)

    def __init__(self, settings: AsrSettings) -> None:
        self.settings = settings
        self.triton = TritonClient.from_settings(settings)
        self.catalog = ModelCatalog(
            settings.asr_default_model,
            settings.triton_url,
            settings.asr_model_repository if settings.asr_language_models else None,
            Aliases(settings.asr_model_aliases),
        )
        self.releaser = SequenceReleaser(self.triton)
        self.servicer = AsrServicer(settings, self.triton, self.catalog, self.releaser)

    async def start(self) -> None:
        await self.ready()  # best effort: Triton may come up later; readiness keeps checking

    def register(self, server: grpc.aio.Server) -> None:
        register(server, self.servicer)

    async def ready(self) -> bool:
        """Serving once Triton is up and the default model is loaded; the catalog follows Triton."""
        return await refresh_catalog(self.triton, self.catalog)

    async def stop(self) -> None:
        await self.releaser.close()  # abandoned sequences still get their END
        await self.triton.close()
