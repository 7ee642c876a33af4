"""The soak's invariants (``make soak``): pure checks on what was read from S3, MLflow and Prefect.

Each checker takes plain values (so the unit tests give hand-made ones) and returns a ``Check``: its
name, pass or fail, and the evidence a reader needs to believe it. ``soak_reads`` gathers the values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from models.registry.gate import PROMOTED, RERUN_RUN_SUFFIX, RERUN_TAG_PREFIX

RERUN_PROMOTED_ON = "rerun.promoted_on"  # read_registry: months the champion's rerun promotions compared on

TRAINING_INPUT_TAGS = ("data.digest", "data.train_months", "data.valid_month")
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    evidence: str


def check_processed_rows(
    oracle: Mapping[str, tuple[int, str]], processed: Mapping[str, tuple[int, str] | None]
) -> Check:
    """Every month's processed trips on S3 equal the oracle's from the final raw files: the same number
    of rows and the same content (a digest of the rows in trip-id order, every column)."""
    wrong = []
    for period, (rows, digest) in sorted(oracle.items()):
        found = processed.get(period)
        if found is None:
            wrong.append(f"{period}: nothing on S3 vs oracle {rows} rows")
        elif found[0] != rows:
            wrong.append(f"{period}: S3 {found[0]} rows vs oracle {rows}")
        elif found[1] != digest:
            wrong.append(f"{period}: {rows} rows, content differs from the oracle's")
    shown = ", ".join(f"{p} {rows}" for p, (rows, _) in sorted(oracle.items()))
    return Check(
        "processed data = oracle", bool(oracle) and not wrong, "; ".join(wrong) or shown or "no month"
    )


def check_versions_per_input(versions: Iterable[Mapping[str, str]]) -> Check:
    """One registered version per distinct training input set (data digest, train months, valid month)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for tags in versions:
        key = tuple(tags.get(tag, "") for tag in TRAINING_INPUT_TAGS)
        groups.setdefault(key, []).append(tags.get("version", "?"))
    twice = [
        f"versions {', '.join(v)} share {k[1]}->{k[2]} digest {k[0][:12]}"
        for k, v in groups.items()
        if len(v) > 1
    ]
    evidence = "; ".join(twice) or f"{sum(map(len, groups.values()))} version(s), {len(groups)} input set(s)"
    return Check("one version per training input", not twice, evidence)


def rerun_promotions(tags: Mapping[str, str]) -> list[str]:
    """The runs whose rerun promoted this version: its ``gate.rerun.*`` records that say ``promoted``
    and name another run of the version's training (``models.registry.versions.record_decision``)."""
    return [
        value.rsplit(RERUN_RUN_SUFFIX, 1)[1]
        for key, value in sorted(tags.items())
        if key.startswith(RERUN_TAG_PREFIX) and value.startswith(f"{PROMOTED}:") and RERUN_RUN_SUFFIX in value
    ]


def check_champion(champion: Mapping[str, str] | None, promoted: Iterable[str]) -> Check:
    """The champion holds a recorded ``promoted`` gate decision, compared on a month it did not train on.

    The decision is the version's first (``gate.decision``) or a later run's of the same training,
    recorded on the version (``RERUN_PROMOTED_ON``: the months those runs compared on).
    """
    promoted = sorted(promoted, key=int)
    if champion is None:
        return Check(
            "champion moved by gate", not promoted, f"no champion; promoted versions: {promoted or 'none'}"
        )
    version, decision = champion.get("version", "?"), champion.get("gate.decision", "none")
    compared = champion.get("gate.compared_on", "none")
    trained = set(champion.get("trained_months", "").split(","))
    again = [m for m in champion.get(RERUN_PROMOTED_ON, "").split(",") if m]
    honest = (decision == PROMOTED and compared not in trained) or any(m not in trained for m in again)
    ok = honest and version in promoted
    evidence = (
        f"version {version}: decision {decision}, compared on {compared}; promoted: {', '.join(promoted)}"
    )
    if again:
        evidence += f"; promoted again by a run of its training, compared on {', '.join(again)}"
    return Check("champion moved by gate", ok, evidence)


def check_no_running_mlflow(runs: Iterable[tuple[str, str, str]]) -> Check:
    """No MLflow run (experiment, run id, status) left RUNNING."""
    runs = list(runs)
    running = [f"{exp}/{run_id}" for exp, run_id, status in runs if status == "RUNNING"]
    return Check(
        "no MLflow run RUNNING", not running, ", ".join(running) or f"{len(runs)} run(s), none RUNNING"
    )


def check_flow_runs_final(runs: Iterable[tuple[str, str, str]]) -> Check:
    """No Prefect flow run (name, state type, why) left non-final; a schedule's future run is named."""
    runs = list(runs)
    later = [name for name, state, why in runs if state == "SCHEDULED" and why == "future"]
    stuck = [
        f"{name} {state} ({why})"
        for name, state, why in runs
        if state not in FINAL_STATES and why != "future"
    ]
    counts = Counter(state for _, state, _ in runs)
    evidence = "; ".join(stuck) or ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    if later:
        evidence += f"; scheduled for later by a schedule: {', '.join(later)}"
    return Check("no flow run non-final", not stuck, evidence)


def check_monitored_once(monitorings: Iterable[tuple[str, str, str]]) -> Check:
    """Each (period, champion version, data checksum) monitored by one finished run."""
    counts = Counter(monitorings)
    twice = [f"{p} v{v} x{n}" for (p, v, _), n in sorted(counts.items()) if n > 1]
    shown = ", ".join(f"{p} v{v}" for p, v, _ in sorted(counts))
    return Check("each month monitored once per version", not twice, "; ".join(twice) or shown or "none")


def check_one_notice_per_failure(failed: Mapping[str, str], notices: Iterable[str]) -> Check:
    """Each project flow run that ended Failed or Crashed (id -> name and state) got exactly one
    failed-run message, and no such message is about a run that did not fail."""
    notices = list(notices)
    counts = {run_id: sum(run_id in notice for notice in notices) for run_id in failed}
    wrong = [f"{failed[run_id]}: {n} message(s)" for run_id, n in sorted(counts.items()) if n != 1]
    stray = len(notices) - sum(counts.values())
    if stray:
        wrong.append(f"{stray} message(s) about no failed or crashed run")
    evidence = f"{len(failed)} failed or crashed run(s), {len(notices)} message(s)"
    return Check("one notification per failed run", not wrong, "; ".join(wrong) or evidence)


def check_no_traceback(outputs: Mapping[str, str]) -> Check:
    """Nothing a command printed holds a Python traceback."""
    found = [name for name, text in outputs.items() if "Traceback (most recent call last)" in text]
    return Check(
        "no traceback in command output", not found, ", ".join(found) or f"{len(outputs)} output(s) clean"
    )


def render_checks(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'invariant':{width}}  result  evidence"]
    lines += [f"{c.name:{width}}  {'pass' if c.passed else 'FAIL':6}  {c.evidence}" for c in checks]
    return "\n".join(lines)
