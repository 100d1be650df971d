"""`python -m rivulet.gateway`: the voice-assistant web app against any dialog service
(`RIVULET_GATEWAY_DIALOG_URL`; settings from RIVULET_* variables)."""

import asyncio

from rivulet.core.logs import configure_logging
from rivulet.gateway.server import serve
from rivulet.gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
