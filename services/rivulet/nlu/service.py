"""The NLU `Service` for the server host: Triton client, model catalog, servicer, readiness (with the
default model warmed up before the service reports SERVING)."""

from __future__ import annotations

import logging

import grpc

from rivulet.core.aliases import Aliases
from rivulet.core.errors import RivuletError
from rivulet.core.triton import TritonClient, refresh_catalog
from rivulet.nlu.catalog import ModelCatalog
from rivulet.nlu.inference import understand
from rivulet.nlu.servicer import NluServicer, register
from rivulet.nlu.settings import NluSettings

log = logging.getLogger(__name__)

SERVICE_NAME = "nvidia.riva.nlp.RivaLanguageUnderstanding"
# Sent to the default model, one after the other, before the service reports SERVING (at start, and
# again when Triton comes back): the first requests through Triton's python backend cost more
# (measured through riva.client on a fresh stack: 36, 17, then 7-8 ms; the dialog's first turn after
# `make run` waited 63-67 ms for the NLU against 17 ms later), so the first user does not pay for them.
WARM_UP_TEXTS = ("what time is it", "set a timer for ten minutes")


class NluService:
    service_names = (SERVICE_NAME,)

    def __init__(self, settings: NluSettings) -> None:
        self.settings = settings
        self.triton = TritonClient.from_settings(settings)
        self.catalog = ModelCatalog(
            settings.nlu_default_model, settings.triton_url, Aliases(settings.nlu_model_aliases)
        )
        self.servicer = NluServicer(settings, self.triton, self.catalog)
        self.was_ready = False

    async def start(self) -> None:
        await self.ready()  # best effort: Triton may come up later; readiness keeps checking

    def register(self, server: grpc.aio.Server) -> None:
        register(server, self.servicer)

    async def ready(self) -> bool:
        """Serving once Triton is up and the default model is loaded, and warmed up each time it
        becomes ready (at start, after Triton came back); the catalog follows Triton."""
        ready = await refresh_catalog(self.triton, self.catalog)
        warm_up, self.was_ready = ready and not self.was_ready, ready
        if warm_up:
            await self._warm_up()  # a failure is logged, and requests are served all the same
        return ready

    async def _warm_up(self) -> None:
        model = self.catalog.by_name("").name
        try:
            for text in WARM_UP_TEXTS:
                await understand(self.triton, model, [text], request_id="warm-up")
        except RivuletError as exc:
            log.warning("warming up %s failed (%s); serving anyway", model, exc)
        else:
            log.info("warmed up %s with %d requests", model, len(WARM_UP_TEXTS))

    async def stop(self) -> None:
        await self.triton.close()
