"""``make backfill`` end to end: the backfill/on-demand deployment on a worker, its table printed by the
trigger.

Reuses the pipeline end-to-end module's ``deployed`` project (blocks, code bundle on S3, a worker
outside the checkout; 2024 and 2025 of a small sample). The flow run pulls its code, starts a
LocalCluster of two workers on the worker's machine and preprocesses three months there.
"""

from __future__ import annotations

import re

import pytest

from tests.orchestration.e2e import Deployed, run_module

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROW = re.compile(r"^(2025-0[1-3])\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(yes|no)$")


def backfill(deployed: Deployed) -> list[tuple[str, ...]]:
    done = run_module("orchestration", deployed.env, "backfill", "--from", "2025-01", "--to", "2025-03")
    print(done.stdout)
    assert "Completed" in done.stdout and "3 of 3 period(s)" in done.stdout
    return [match.groups() for line in done.stdout.splitlines() if (match := ROW.match(line.strip()))]


def test_make_backfill_prints_one_line_per_month_then_caches(deployed: Deployed) -> None:
    first = backfill(deployed)
    assert [row[0] for row in first] == ["2025-01", "2025-02", "2025-03"]
    assert all(int(row[2]) > 0 and int(row[1]) == int(row[2]) + int(row[3]) + int(row[4]) for row in first)
    again = backfill(deployed)
    assert [row[6] for row in again] == ["yes", "yes", "yes"]
    assert [row[1:5] for row in again] == [row[1:5] for row in first]
