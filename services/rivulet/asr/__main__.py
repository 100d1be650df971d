"""`python -m rivulet.asr`: the ASR service on its own (settings from RIVULET_* variables)."""

import asyncio

from rivulet.asr.service import AsrService
from rivulet.asr.settings import AsrSettings
from rivulet.core.logs import configure_logging
from rivulet.core.server import serve


def main() -> None:
    settings = AsrSettings()
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings, [AsrService(settings)]))


if __name__ == "__main__":
    main()
