"""``python -m models sample``: the synthetic sample's command (``models.cli`` mounts it)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from models.core.names import DEFAULT_SEED
from models.sample.generate import DEFAULT_ROWS


def sample_command(
    dest: Annotated[str, typer.Option(help="folder to write")] = "data/sample",
    seed: Annotated[int, typer.Option(help="random seed")] = DEFAULT_SEED,
    rows: Annotated[int, typer.Option(help="rows in all")] = DEFAULT_ROWS,
) -> int:
    """Write the deterministic synthetic sample (all six eras' formats) and its manifest."""
    from models.sample.generate import generate_sample

    manifest = generate_sample(dest, seed=seed, rows=rows)
    brief = {k: manifest[k] for k in ("rows", "quarantined", "by_era", "seed")}
    print(json.dumps({"dest": dest, **brief}, sort_keys=True))
    return 0
