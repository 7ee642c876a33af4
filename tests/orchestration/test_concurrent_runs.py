"""Ten pipeline flow runs at once, on a Prefect server backed by PostgreSQL and by SQLite (issue 18).

``bench.concurrent_runs`` starts a stack of its own on the database under test, deploys the project,
runs one process worker with ``--limit 10`` and submits ten pipeline runs (tiny sample, one search
trial each) from ten threads at once. Each measurement is written to
``<pytest tmp>/concurrent-<db>.json`` and printed, so the SQLite behaviour is on record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.concurrent_runs import measure

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUNS = 10


def record(db: str, folder: Path) -> dict[str, Any]:
    result = measure(db, RUNS, rows=3000)
    (folder / f"concurrent-{db}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return result


def test_ten_runs_at_once_all_complete_on_postgres(tmp_path: Path) -> None:
    result = record("postgres", tmp_path)
    assert (result["lost"], result["duplicated"], result["runs_on_server"]) == (0, 0, RUNS)
    assert result["states"] == {"Completed": RUNS}, result
    # The PostgreSQL server's own log, not SQLite's "database is locked" (which PostgreSQL never says).
    assert result["postgres_errors"] == 0, result["postgres_error_examples"]
    # A task-run upsert race Prefect could not recover from (the one PostgreSQL error left out above).
    assert result["task_run_events_discarded"] == 0, result["discarded_examples"]


def test_ten_runs_at_once_on_sqlite_none_lost_or_duplicated(tmp_path: Path) -> None:
    """SQLite stays usable at this load on this machine: every run reaches a final state, none is
    lost or created twice. Whether all complete, and how often the server logged "database is
    locked", is what the printed record shows (see the README's figures)."""
    result = record("sqlite", tmp_path)
    assert (result["lost"], result["duplicated"], result["runs_on_server"]) == (0, 0, RUNS)
    assert sum(result["states"].values()) == RUNS and not any(
        s.startswith("not final") for s in result["states"]
    )
