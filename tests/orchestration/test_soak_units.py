"""The soak's fault schedule (seeded, bounded) and each invariant checker on hand-made inputs."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from models.core.errors import UserError
from orchestration.commands import soak_checks as checks
from orchestration.commands.soak import (
    KINDS,
    MAX_FAULTS_PER_MONTH,
    MAX_MONTHS,
    OUTAGE_S,
    REPUBLISH_SHARE,
    correct_labels,
    draw_schedule,
    find_flow_run_process,
    render_schedule,
    soak_periods,
)
from orchestration.flows.api_loss import ENGINE_FLOW_RUN_ENV

pytestmark = pytest.mark.unit


def test_the_same_seed_draws_the_same_schedule_and_another_seed_another() -> None:
    assert draw_schedule(18, 3, 6) == draw_schedule(18, 3, 6)
    periods = soak_periods(3)
    assert render_schedule(18, draw_schedule(18, 3, 6), periods) == render_schedule(
        18, draw_schedule(18, 3, 6), periods
    )
    assert draw_schedule(18, 3, 6) != draw_schedule(19, 3, 6)


@pytest.mark.parametrize("seed", range(10))
def test_a_schedule_stays_within_its_bounds(seed: int) -> None:
    schedule = draw_schedule(seed, 24 // 2, 40, outage_scale=0.5)
    assert len(schedule) == 40
    assert all(1 <= f.month <= 12 and f.kind in KINDS and 0 <= f.delay_s <= 20 for f in schedule)
    for fault in schedule:
        low, high = OUTAGE_S.get(fault.kind, (0.0, 0.0))
        assert low * 0.5 - 0.1 <= fault.duration_s <= high * 0.5 + 0.1, fault
    assert schedule == sorted(schedule, key=lambda f: (f.month, f.delay_s, f.kind))


@pytest.mark.parametrize(
    ("months", "faults", "scale"),
    [(0, 1, 1.0), (MAX_MONTHS + 1, 1, 1.0), (2, 2 * MAX_FAULTS_PER_MONTH + 1, 1.0), (2, 1, 0.0)],
)
def test_a_schedule_out_of_bounds_is_one_sentence(months: int, faults: int, scale: float) -> None:
    with pytest.raises(UserError, match="out of range"):
        draw_schedule(1, months, faults, scale)


def test_the_soak_publishes_from_a_january_and_ends_in_2025_at_the_latest() -> None:
    assert soak_periods(3) == [(2025, 1), (2025, 2), (2025, 3)]
    assert soak_periods(12)[-1] == (2025, 12)
    assert soak_periods(24)[0] == (2024, 1) and soak_periods(24)[-1] == (2025, 12)
    assert soak_periods(15)[12] == (2025, 1) and len(soak_periods(15)) == 15
    schedule = draw_schedule(30, 24, 40)
    assert "2024-" in render_schedule(30, schedule, soak_periods(24))


def test_a_republication_corrects_one_percent_of_the_labels_and_nothing_else(tmp_path) -> None:
    import random
    import re

    from orchestration.commands.simulate import SAMPLE_ROWS, generate_months

    data = generate_months(tmp_path, 2, 0, SAMPLE_ROWS, 5)[2]
    corrected, flipped = correct_labels(data, REPUBLISH_SHARE, random.Random(1))
    lines, changed = data.splitlines(), corrected.splitlines()
    differ = [(a, b) for a, b in zip(lines, changed, strict=True) if a != b]
    labelled = sum(bool(re.search(rb",(Member|Casual),[^,]*$", line)) for line in lines[1:])
    assert len(differ) == flipped == round(REPUBLISH_SHARE * labelled) >= 2
    for before, after in differ:
        assert (
            before.replace(b",Member,", b",X,").replace(b",Casual,", b",Member,").replace(b",X,", b",Casual,")
            == after
        )
    assert correct_labels(data, REPUBLISH_SHARE, random.Random(1)) == (corrected, flipped)


def test_processed_rows_must_equal_the_oracle() -> None:
    oracle = {"2025-01": (10, "a1"), "2025-02": (7, "b2")}
    assert checks.check_processed_rows(oracle, dict(oracle)).passed
    failed = checks.check_processed_rows(oracle, {"2025-01": (10, "a1"), "2025-02": None})
    assert not failed.passed and "2025-02: nothing on S3 vs oracle 7 rows" in failed.evidence
    fewer = checks.check_processed_rows(oracle, {**oracle, "2025-02": (6, "b2")})
    assert not fewer.passed and "2025-02: S3 6 rows vs oracle 7" in fewer.evidence
    stale = checks.check_processed_rows(oracle, {**oracle, "2025-01": (10, "a0")})
    assert not stale.passed and "2025-01: 10 rows, content differs" in stale.evidence
    assert not checks.check_processed_rows({}, {}).passed


def test_the_content_digest_sees_one_changed_label_and_not_the_row_order(tmp_path) -> None:
    import pandas as pd

    from orchestration.commands.soak_reads import content_digest

    frame = pd.DataFrame({"trip_id": [3, 1, 2], "user_type": ["Member", "Casual", "Member"]})
    frame.to_parquet(tmp_path / "a.parquet")
    frame.iloc[::-1].to_parquet(tmp_path / "b.parquet")
    frame.assign(user_type=["Member", "Member", "Member"]).to_parquet(tmp_path / "c.parquet")
    digest = content_digest(tmp_path / "a.parquet")
    assert digest[0] == 3 and digest == content_digest(tmp_path / "b.parquet")
    assert content_digest(tmp_path / "c.parquet") != digest


def test_each_failed_run_needs_exactly_one_message_and_no_message_may_be_stray() -> None:
    failed = {"id-1": "calm-fox Failed", "id-2": "bold-owl Crashed"}
    one_each = ["to-bikes: flow run calm-fox Failed ... /runs/flow-run/id-1", "... /runs/flow-run/id-2"]
    assert checks.check_one_notice_per_failure(failed, one_each).passed
    assert checks.check_one_notice_per_failure({}, []).passed
    missing = checks.check_one_notice_per_failure(failed, one_each[:1])
    assert not missing.passed and "bold-owl Crashed: 0 message(s)" in missing.evidence
    twice = checks.check_one_notice_per_failure(failed, [*one_each, one_each[1]])
    assert not twice.passed and "bold-owl Crashed: 2 message(s)" in twice.evidence
    stray = checks.check_one_notice_per_failure(failed, [*one_each, "... /runs/flow-run/id-3"])
    assert not stray.passed and "1 message(s) about no failed or crashed run" in stray.evidence


def test_two_versions_of_one_training_input_fail() -> None:
    one = {"data.digest": "abc", "data.train_months": "2024-01..2024-12", "data.valid_month": "2025-01"}
    other = {**one, "data.valid_month": "2025-02"}
    assert checks.check_versions_per_input([{**one, "version": "1"}, {**other, "version": "2"}]).passed
    failed = checks.check_versions_per_input([{**one, "version": "1"}, {**one, "version": "3"}])
    assert not failed.passed and "versions 1, 3" in failed.evidence


def test_the_champion_needs_a_recorded_promotion_on_an_unseen_month() -> None:
    champion = {
        "version": "2",
        "gate.decision": "promoted",
        "gate.compared_on": "2025-02",
        "trained_months": "2025-01",
    }
    assert checks.check_champion(champion, ["1", "2"]).passed
    assert checks.check_champion(None, []).passed
    assert not checks.check_champion({**champion, "gate.decision": "kept-champion"}, ["1"]).passed
    assert not checks.check_champion({**champion, "trained_months": "2025-01,2025-02"}, ["2"]).passed
    assert not checks.check_champion(None, ["1"]).passed


def test_a_champion_promoted_by_another_run_of_its_training_moved_by_gate() -> None:
    # Its first decision kept the champion; a later run of the same training promoted it, recorded on
    # the version as models.registry.versions.record_decision writes it.
    record = "promoted: roc_auc 0.91 beats champion version 3's 0.88 on 2025-04. (flow run f), run r2"
    tags = {
        "gate.rerun.20250501T000000.000000Z": record,
        "gate.rerun.20250401T000000.000000Z": "kept-champion: x",
    }
    assert checks.rerun_promotions(tags) == ["r2"]
    assert checks.rerun_promotions({"gate.rerun.1": "promoted: again (flow run f)"}) == []  # its own run
    champion = {
        "version": "4",
        "gate.decision": "kept-champion",
        "gate.compared_on": "2025-03",
        "trained_months": "2025-01,2025-02",
        **tags,
        checks.RERUN_PROMOTED_ON: "2025-04",
    }
    passed = checks.check_champion(champion, ["2", "4"])
    assert passed.passed and "promoted again by a run of its training, compared on 2025-04" in passed.evidence
    assert not checks.check_champion({**champion, "trained_months": "2025-01,2025-04"}, ["2", "4"]).passed
    assert not checks.check_champion({**champion, checks.RERUN_PROMOTED_ON: ""}, ["2", "4"]).passed


def test_an_mlflow_run_left_running_fails() -> None:
    assert checks.check_no_running_mlflow([("e", "a", "FINISHED"), ("e", "b", "FAILED")]).passed
    failed = checks.check_no_running_mlflow([("e", "a", "FINISHED"), ("e", "b", "RUNNING")])
    assert not failed.passed and failed.evidence == "e/b"


def test_a_flow_run_left_non_final_fails_unless_a_schedule_set_it_for_later() -> None:
    final = [("pipeline/a", "COMPLETED", ""), ("pipeline/b", "CRASHED", "killed")]
    later = checks.check_flow_runs_final([*final, ("ingest/c", "SCHEDULED", "future")])
    assert later.passed and "scheduled for later by a schedule: ingest/c" in later.evidence
    failed = checks.check_flow_runs_final([*final, ("score/d", "RUNNING", "")])
    assert not failed.passed and "score/d RUNNING" in failed.evidence


def test_a_month_monitored_twice_by_one_version_on_one_data_fails() -> None:
    assert checks.check_monitored_once(
        [("2025-01", "1", "x"), ("2025-01", "2", "x"), ("2025-02", "1", "y")]
    ).passed
    failed = checks.check_monitored_once([("2025-01", "1", "x"), ("2025-01", "1", "x")])
    assert not failed.passed and "2025-01 v1 x2" in failed.evidence


def test_a_traceback_in_a_command_output_fails() -> None:
    assert checks.check_no_traceback({"soak": "all fine", "score": "result: Completed"}).passed
    failed = checks.check_no_traceback({"soak": "ok", "score": "Traceback (most recent call last):\n  x"})
    assert not failed.passed and failed.evidence == "score"


def test_the_table_says_pass_or_fail_per_invariant() -> None:
    table = checks.render_checks([checks.Check("a", True, "fine"), checks.Check("bb", False, "why")])
    assert table.splitlines()[1:] == ["a   pass    fine", "bb  FAIL    why"]


# A stand-in worker: two children, only one carrying a flow run's id as the worker sets it; neither has
# prefect.engine on its command line (the deployments' command is to-bikes-engine).
FAKE_WORKER = """
import os, subprocess, sys, time
plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                       env={**os.environ, "%s": "3f1c"})
print(plain.pid, run.pid, flush=True)
time.sleep(60)
"""


def test_the_flow_run_kill_finds_the_process_by_the_run_id_the_worker_gave_it() -> None:
    # The long soak's five flow-run-kill faults found nothing: they looked for prefect.engine.
    worker = subprocess.Popen(
        [sys.executable, "-c", FAKE_WORKER % ENGINE_FLOW_RUN_ENV], stdout=subprocess.PIPE, text=True
    )
    try:
        plain, run = (int(pid) for pid in worker.stdout.readline().split())
        deadline = time.monotonic() + 30  # bounded: both children have started by now
        while time.monotonic() < deadline and len(psutil.Process(worker.pid).children()) < 2:
            time.sleep(0.1)
        found = find_flow_run_process(worker.pid)
        assert found is not None and found.pid == run, (found, plain, run)
    finally:
        for child in psutil.Process(worker.pid).children(recursive=True):
            child.kill()
        worker.kill()
        worker.wait()


def test_the_flow_run_reads_take_every_page_the_server_gives() -> None:
    from types import SimpleNamespace

    from orchestration.commands.soak_reads import PAGE, read_all_flow_runs

    held = list(range(2 * PAGE + 50))  # more failed runs than one call returns

    def read_flow_runs(flow_run_filter: object, limit: int, offset: int = 0) -> list[int]:
        return held[offset : offset + min(limit, PAGE)]

    assert read_all_flow_runs(SimpleNamespace(read_flow_runs=read_flow_runs), None) == held


def test_the_registry_read_gives_the_months_a_champion_s_rerun_promotions_compared_on() -> None:
    from types import SimpleNamespace

    from orchestration.commands.soak_reads import read_registry

    rerun = "gate.rerun.20250501T000000.000000Z"
    versions = [
        SimpleNamespace(version=1, tags={"gate.decision": "promoted", "data.train_months": "2025-01"}),
        SimpleNamespace(  # kept at first, promoted by run r2 of its training (record_decision's record)
            version=2,
            tags={
                "gate.decision": "kept-champion",
                "data.train_months": "2025-01..2025-02",
                rerun: "promoted: beats champion version 1 on 2025-04. (flow run f), run r2",
            },
        ),
    ]
    runs = {"r2": SimpleNamespace(data=SimpleNamespace(tags={"gate.compared_on": "2025-04"}))}
    client = SimpleNamespace(
        search_model_versions=lambda query: versions,
        get_model_version_by_alias=lambda name, alias: versions[1],
        get_run=runs.__getitem__,
    )
    _, champion, promoted = read_registry(client, "m")
    assert promoted == ["1", "2"]
    assert champion[checks.RERUN_PROMOTED_ON] == "2025-04"
    assert champion["trained_months"] == "2025-01,2025-02"
    assert checks.check_champion(champion, promoted).passed
