"""End to end: ``make soak``'s command on a stack of this module's own, a short seed (3 months, 6 faults).

Deployed as ``make deploy`` does (deployments, the zombie, loop and notification automations), with the
background worker; the command publishes 2025-01..03 under the seed's faults (server outages scaled to
a fifth of their drawn length) and checks the invariants. Every invariant passes; the same seed printed
the same schedule as ``draw_schedule`` draws in this process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orchestration.commands.soak import draw_schedule, render_schedule, soak_periods
from tests.orchestration.e2e import clean_env, deploy_project, run_module, worker_running

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODEL = "to-bikes-soak-e2e"
SEED, MONTHS, FAULTS, SCALE = 2257, 3, 6, 0.2  # six kinds; no prefect-outage, garbage-raw, republish: README


@pytest.fixture(scope="module")
def soaked(module_stack: Any) -> Iterator[Any]:
    # The stack's own bucket: the soak starts a stopped server again with the settings it runs with, and
    # MLflow's artifact root is in the bucket (another one would hide the models registered before).
    env = clean_env(module_stack, TO_BIKES_MODEL_NAME=MODEL)
    deploy_project(env)
    for command in ("automations", "loop-automations"):  # what `make deploy` runs
        print(run_module("orchestration", env, command).stdout)
    with worker_running(env, module_stack):
        args = ("--seed", str(SEED), "--months", str(MONTHS), "--faults", str(FAULTS))
        done = run_module(
            "orchestration", env, "soak", *args, "--outage-scale", str(SCALE), "--quiet-seconds", "20",
            check=False, timeout=3600,
        )  # fmt: skip
        print(done.stdout, done.stderr)
        yield done


def test_the_seed_prints_its_schedule_first(soaked) -> None:
    expected = render_schedule(SEED, draw_schedule(SEED, MONTHS, FAULTS, SCALE), soak_periods(MONTHS))
    assert soaked.stdout.startswith(expected), soaked.stdout[:2000]
    assert len({f.kind for f in draw_schedule(SEED, MONTHS, FAULTS, SCALE)}) >= 5


def test_every_invariant_holds_after_the_faults(soaked) -> None:
    table = soaked.stdout.split("\ninvariant ", 1)[1]
    rows = [line for line in table.splitlines()[1:9]]
    print("\n".join(rows))
    assert len(rows) == 8 and all("  pass  " in row for row in rows), table
    assert soaked.returncode == 0, soaked.stderr[-3000:]
    assert "Traceback" not in soaked.stderr, soaked.stderr[-3000:]
