"""The NLU `Service` for the server host: Triton client, model catalog, servicer, readiness."""

from __future__ import annotations

import logging

import grpc

from rivulet.core.aliases import Aliases
from rivulet.core.triton import TritonClient, refresh_catalog
from rivulet.nlu.catalog import ModelCatalog
from rivulet.nlu.servicer import NluServicer, register
from rivulet.nlu.settings import NluSettings

log = logging.getLogger(__name__)

SERVICE_NAME = "nvidia.riva.nlp.RivaLanguageUnderstanding"


class NluService:
    service_names = (SERVICE_NAME,)

    def __init__(self, settings: NluSettings) -> None:
        self.settings = settings
        self.triton = TritonClient.from_settings(settings)
        self.catalog = ModelCatalog(
            settings.nlu_default_model, settings.triton_url, Aliases(settings.nlu_model_aliases)
        )
        self.servicer = NluServicer(settings, self.triton, self.catalog)

    async def start(self) -> None:
        await self.ready()  # best effort: Triton may come up later; readiness keeps checking

    def register(self, server: grpc.aio.Server) -> None:
        register(server, self.servicer)

    async def ready(self) -> bool:
        """Serving once Triton is up and the default model is loaded; the catalog follows Triton."""
        return await refresh_catalog(self.triton, self.catalog)

    async def stop(self) -> None:
        await self.triton.close()
