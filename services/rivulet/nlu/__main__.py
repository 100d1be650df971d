"""`python -m rivulet.nlu`: the NLU service on its own (settings from RIVULET_* variables)."""

import asyncio

from rivulet.core.logs import configure_logging
from rivulet.core.server import serve
from rivulet.nlu.service import NluService
from rivulet.nlu.settings import NluSettings


def main() -> None:
    settings = NluSettings()
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings, [NluService(settings)]))


if __name__ == "__main__":
    main()
