"""Triton python model `tts_embedded`: the offline engines of `rivulet.voices`, streamed.

Each subvoice of config.pbtxt's `voices` names an engine voice (flite, espeak-ng, festival). A
piece of text is spoken by one engine call (flite/espeak-ng: a short-lived process; festival: a
long-lived process per worker thread, see rivulet.tts.engines), trimmed of the engine's
lead-in/lead-out silence, and sent. Worker threads never share engine state.
The request/streaming/cancellation logic lives in rivulet.tts.triton_model (PYTHONPATH holds
services/ for Triton's python models).
"""

from __future__ import annotations

import os
import sys

# The python backend stub does not apply PYTHONPATH itself; Rivulet's tritonserver sets it to
# services/ (rivulet.core.tritonserver.server_environment), so put it on sys.path here.
for _path in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    if _path and _path not in sys.path:
        sys.path.append(_path)

import numpy as np  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402

from rivulet import voices  # noqa: E402
from rivulet.core.audio import resample  # noqa: E402
from rivulet.tts.chunking import trim_silence  # noqa: E402
from rivulet.tts.engines import EngineSet  # noqa: E402
from rivulet.tts.streaming import Item, Job  # noqa: E402
from rivulet.tts.triton_model import SynthesizerModel  # noqa: E402


class TritonPythonModel(SynthesizerModel):
    pb_utils = pb_utils

    def load(self, args: dict) -> None:
        self.engine_voices = {
            name: voices.Voice.parse(spec["engine_voice"]) for name, spec in self.voices.items()
        }
        missing = sorted(
            {v.engine for v in self.engine_voices.values() if not voices.engine_available(v.engine)}
        )
        if missing:
            raise RuntimeError(
                f"speech engines not installed: {missing} (run scripts/ensure_speech_tools.sh)"
            )

        self.engines = EngineSet()

    def finalize(self) -> None:
        super().finalize()
        self.engines.close()

    def synthesize(self, item: Item, job: Job) -> np.ndarray:
        audio, rate = self.engines.synthesize(self.engine_voices[job.voice], item.text, item.rate, item.pitch)
        audio = trim_silence(audio, rate)
        return resample(audio, rate, job.sample_rate)
