"""`nvidia.riva.nlp.RivaLanguageUnderstanding` on Triton-hosted intent/slot models.

- AnalyzeIntent: intent + score, slots (text, label, score, character span [start, end)), domain.
  The model is chosen by `options.domain` (a domain such as "assistant", or a model name).
- ClassifyText: intents ranked (top_n, default 1) for each text; ClassifyTokens and AnalyzeEntities:
  the slot/entity spans of each text. The model is chosen by `model.model_name`.
- PunctuateText: each text punctuated (, . ?) and capitalized by a punctuation model
  (rivulet.core.punctuation); `model.model_name` empty: the first one for `model.language_code`.
- GetRivaNLPConfig: every NLU model Triton has ready (intent/slot and punctuation), with its parameters.
- TransformText, NaturalQuery: UNIMPLEMENTED (no such model is deployed).
Empty text or text over `nlu_max_text_chars` → INVALID_ARGUMENT; unknown model/domain → NOT_FOUND;
Triton down → UNAVAILABLE.
"""

from __future__ import annotations

import grpc
from riva.proto import riva_nlp_pb2 as nlp
from riva.proto import riva_nlp_pb2_grpc

from rivulet.core.errors import invalid_argument, not_found, unimplemented
from rivulet.core.logs import request_id_var
from rivulet.core.punctuation import punctuate
from rivulet.core.triton import TritonClient
from rivulet.nlu.catalog import ModelCatalog, NluModel
from rivulet.nlu.inference import Slot, Understanding, understand
from rivulet.nlu.settings import NluSettings


def _token_value(slot: Slot) -> nlp.TokenClassValue:
    return nlp.TokenClassValue(
        token=slot.text,
        label=[nlp.Classification(class_name=slot.label, score=slot.score)],
        span=[nlp.Span(start=slot.start, end=slot.end)],
    )


class NluServicer(riva_nlp_pb2_grpc.RivaLanguageUnderstandingServicer):
    def __init__(self, settings: NluSettings, triton: TritonClient, catalog: ModelCatalog) -> None:
        self.settings = settings
        self.triton = triton
        self.catalog = catalog

    # -- validation -------------------------------------------------------------------------------
    def _check_text(self, text: str, field: str) -> str:
        if not text.strip():
            raise invalid_argument(f"{field} is empty: send the text to analyze")
        if len(text) > self.settings.nlu_max_text_chars:
            raise invalid_argument(
                f"{field} has {len(text)} characters; the limit is {self.settings.nlu_max_text_chars} "
                "(split the text or raise RIVULET_NLU_MAX_TEXT_CHARS)"
            )
        return text

    def _check_texts(self, texts: list[str]) -> list[str]:
        if not texts:
            raise invalid_argument("text is empty: send at least one text to classify")
        if len(texts) > self.settings.nlu_max_texts_per_request:
            raise invalid_argument(
                f"{len(texts)} texts in one request; the limit is {self.settings.nlu_max_texts_per_request}"
            )
        return [self._check_text(t, f"text[{i}]") for i, t in enumerate(texts)]

    async def _run(self, model: NluModel, texts: list[str]) -> list[Understanding]:
        return await understand(self.triton, model.name, texts, request_id=request_id_var.get())

    # -- RPCs -------------------------------------------------------------------------------------
    async def AnalyzeIntent(self, request: nlp.AnalyzeIntentRequest, context) -> nlp.AnalyzeIntentResponse:
        query = self._check_text(request.query, "query")
        model = self.catalog.by_domain(request.options.domain, request.options.lang)
        (result,) = await self._run(model, [query])
        name, score = result.intent
        return nlp.AnalyzeIntentResponse(
            intent=nlp.Classification(class_name=name, score=score),
            slots=[_token_value(s) for s in result.slots],
            domain_str=model.domain,
            domain=nlp.Classification(class_name=model.domain, score=1.0),
        )

    async def ClassifyText(self, request: nlp.TextClassRequest, context) -> nlp.TextClassResponse:
        texts = self._check_texts(list(request.text))
        model = self.catalog.by_name(request.model.model_name, request.model.language_code)
        top_n = request.top_n or 1
        results = await self._run(model, texts)
        return nlp.TextClassResponse(
            results=[
                nlp.ClassificationResult(
                    labels=[nlp.Classification(class_name=n, score=s) for n, s in r.intents[:top_n]]
                )
                for r in results
            ]
        )

    async def ClassifyTokens(self, request: nlp.TokenClassRequest, context) -> nlp.TokenClassResponse:
        texts = self._check_texts(list(request.text))
        model = self.catalog.by_name(request.model.model_name, request.model.language_code)
        results = await self._run(model, texts)
        return nlp.TokenClassResponse(
            results=[nlp.TokenClassSequence(results=[_token_value(s) for s in r.slots]) for r in results]
        )

    async def AnalyzeEntities(self, request: nlp.AnalyzeEntitiesRequest, context) -> nlp.TokenClassResponse:
        query = self._check_text(request.query, "query")
        model = self.catalog.by_name("", request.options.lang)
        (result,) = await self._run(model, [query])
        return nlp.TokenClassResponse(
            results=[nlp.TokenClassSequence(results=[_token_value(s) for s in result.slots])]
        )

    async def GetRivaNLPConfig(self, request: nlp.RivaNLPConfigRequest, context) -> nlp.RivaNLPConfigResponse:
        listed = [
            (name, alias_of, m)
            for m in self.catalog.listed_models
            for name, alias_of in self.catalog.aliases.listing(m.name)
        ]
        if request.model_name:
            listed = [entry for entry in listed if entry[0].lower() == request.model_name.lower()]
            if not listed:
                raise not_found(f"unknown NLU model {request.model_name!r}")
        return nlp.RivaNLPConfigResponse(
            model_config=[
                nlp.RivaNLPConfigResponse.Config(
                    model_name=name,
                    parameters={
                        **m.parameters,
                        **({"alias_of": alias_of} if alias_of else {}),
                        "type": m.task,
                        "domain": m.domain,
                        "language_code": m.language_code,
                        "default": str(name == self.catalog.default_model).lower(),
                    },
                )
                for name, alias_of, m in listed
            ]
        )

    async def TransformText(self, request, context):
        raise unimplemented("TransformText: no text-transform model is deployed in Rivulet")

    async def PunctuateText(self, request: nlp.TextTransformRequest, context) -> nlp.TextTransformResponse:
        texts = self._check_texts(list(request.text))
        model = self.catalog.punctuation(request.model.model_name, request.model.language_code)
        return nlp.TextTransformResponse(
            text=await punctuate(self.triton, texts, model.name, request_id=request_id_var.get())
        )

    async def NaturalQuery(self, request, context):
        raise unimplemented("NaturalQuery: no question-answering model is deployed in Rivulet")


def register(server: grpc.aio.Server, servicer: NluServicer) -> None:
    riva_nlp_pb2_grpc.add_RivaLanguageUnderstandingServicer_to_server(servicer, server)
