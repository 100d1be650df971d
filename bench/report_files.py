"""A bench report's three files under bench/reports: `<name>.md`, `<name>.json` and `<name>.png`."""

from __future__ import annotations

import json
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
