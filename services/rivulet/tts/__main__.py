"""`python -m rivulet.tts`: the TTS service on its own (settings from RIVULET_* variables)."""

import asyncio

from rivulet.core.logs import configure_logging
from rivulet.core.server import serve
from rivulet.tts.service import TtsService
from rivulet.tts.settings import TtsSettings


def main() -> None:
    settings = TtsSettings()
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings, [TtsService(settings)]))


if __name__ == "__main__":
    main()
