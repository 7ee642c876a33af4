"""The embedded synthetic data set: every header era, date format, label spelling and dirty-row kind.

    python -m models sample --dest data/sample --seed 7 [--rows 40000]

Writes ``<dest>/<year>/<file>.csv|.zip`` like the City's files (real header lines, a BOM file, a
cp1252 file, a ZIP with a sub-folder, ``__MACOSX`` junk and a nested ZIP) and ``<dest>/manifest.json``
with the exact number of rows of each dirty kind injected per file, so tests can check that
preprocessing quarantines exactly those. 2025 is the largest year with all twelve months. The same
seed and row count give byte-identical files.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from models.core.errors import UserError
from models.core.names import DEFAULT_SEED
from models.sample.files import PLAN, FileSpec, allocate_rows, render_file, write_outputs
from models.sample.trips import make_stations

log = logging.getLogger(__name__)

DEFAULT_ROWS = 40_000
MIN_ROWS = 2_000


def generate_sample(dest: str | Path, *, seed: int = DEFAULT_SEED, rows: int = DEFAULT_ROWS) -> dict:
    """Write the sample under ``dest``; returns the manifest (also written as ``manifest.json``)."""
    if rows < MIN_ROWS:
        raise UserError(f"--rows {rows} is too small; the sample needs at least {MIN_ROWS} rows.")
    dest = Path(dest)
    rng = np.random.default_rng(seed)
    stations = make_stations(rng)
    files: dict[str, dict] = {}
    rendered: dict[FileSpec, bytes] = {}
    for spec, size in zip(PLAN, allocate_rows(rows), strict=True):
        content, counts = render_file(rng, stations, spec, size)
        rendered[spec] = content
        files[spec.source] = counts
    write_outputs(dest, rendered)
    manifest = summarise(files, seed, rows)
    (dest / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return manifest


def summarise(files: dict[str, dict], seed: int, rows: int) -> dict:
    """Totals over files: rows, expected quarantine reasons and rows kept with nulls."""
    reasons: Counter = Counter()
    kept_nulls: Counter = Counter()
    eras: Counter = Counter()
    for counts in files.values():
        reasons.update(counts["reasons"])
        kept_nulls.update(counts["kept_with_nulls"])
        eras[counts["era"]] += counts["rows"]
    total = sum(c["rows"] for c in files.values())
    return {
        "seed": seed,
        "rows_requested": rows,
        "rows": total,
        "quarantined": sum(reasons.values()),
        "by_reason": dict(sorted(reasons.items())),
        "kept_with_nulls": dict(sorted(kept_nulls.items())),
        "by_era": dict(sorted(eras.items())),
        "files": files,
    }
