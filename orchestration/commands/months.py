"""``make months``: the months table as plain text (``rich``'s table, rendered without colour)."""

from __future__ import annotations

from typing import Any

HEADERS = {
    "period": "period",
    "raw_files": "files",
    "raw_bytes": "bytes",
    "arrived": "arrived (S3)",
    "rows_in": "rows in",
    "rows_out": "out",
    "quarantined": "quar.",
    "other_period": "other",
    "trained_in": "trained in",
    "validated_in": "validated in",
    "gate": "gate",
    "scored_by": "scored by",
    "verdict": "verdict",
    "state": "last run",
    "link": "link",
}


def render_months(rows: list[dict[str, Any]], width: int = 250) -> str:
    """One line per period; an empty cell is ``-``."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in HEADERS.values():
        table.add_column(column, no_wrap=True)
    for row in rows:
        cells = [row.get(key) for key in HEADERS]
        state = f"{row.get('state')} {row.get('last_run')}" if row.get("state") else None
        cells[list(HEADERS).index("state")] = state
        table.add_row(*("-" if cell is None else str(cell) for cell in cells))
    console = Console(width=width, color_system=None, force_terminal=False)
    with console.capture() as captured:
        console.print(table)
    return captured.get() if rows else "no month yet: ingest or sync data, then run the pipeline."
