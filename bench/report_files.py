"""A bench report's three files under bench/reports: `<name>.md`, `<name>.json` and `<name>.png`."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

REPORTS = Path(__file__).parent / "reports"


def write_report_files(
    name: str,
    lines: list[str],
    data: object,
    plot: Callable[[Path], None],
    reports: Path = REPORTS,
) -> Path:
    """Write the markdown `lines`, the JSON `data` and the figure `plot` draws; returns the markdown's
    path (the markdown links the figure as `<name>.png`, beside it)."""
    reports.mkdir(parents=True, exist_ok=True)
    markdown = reports / f"{name}.md"
    markdown.write_text("\n".join(lines))
    plot(reports / f"{name}.png")
    (reports / f"{name}.json").write_text(json.dumps(data, indent=1))
    return markdown


def command_line(module: str, argv: list[str] | None) -> str:
    """The command a report says it was made by: `python -m <module>` with the bench's arguments
    (`argv` as its `main` got them; None: the process's own)."""
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])
