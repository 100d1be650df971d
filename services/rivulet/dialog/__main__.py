"""`python -m rivulet.dialog`: the dialog service on its own (settings from RIVULET_* variables)."""

import asyncio

from rivulet.core.logs import configure_logging
from rivulet.core.server import serve
from rivulet.dialog.service import DialogService
from rivulet.dialog.settings import DialogSettings


def main() -> None:
    settings = DialogSettings()
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings, [DialogService(settings)]))


if __name__ == "__main__":
    main()
