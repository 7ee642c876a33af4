"""Unit tests of the orchestration wiring: periods, parameters, artifacts, cache keys, bundles, YAML."""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from models.core.contracts import PreprocessSummary, TrainResult
from models.core.errors import UserError
from models.core.periods import format_period, month_range
from models.core.settings import PROJECT_ROOT
from orchestration.commands import run as trigger
from orchestration.deploy import automations, bundle
from orchestration.deploy import deployments as deploy
from orchestration.flows import caching, reports

pytestmark = pytest.mark.unit


def test_period_is_year_or_year_month_and_rejects_nonsense() -> None:
    assert format_period(2025, None) == "2025"
    assert format_period(2024, 3) == "2024-03"
    with pytest.raises(UserError, match="month=13"):
        format_period(2024, 13)
    with pytest.raises(UserError, match="year=24"):
        format_period(24, None)


def test_backfill_months_span_years_inclusively() -> None:
    assert month_range("2024-11", "2025-02") == ["2024-11", "2024-12", "2025-01", "2025-02"]
    assert month_range("2024-01", "2024-01") == ["2024-01"]
    with pytest.raises(UserError, match="after"):
        month_range("2024-06", "2024-01")
    with pytest.raises(UserError, match="FROM=''"):
        month_range("", "2024-01")


def test_params_are_json_when_they_parse() -> None:
    assert trigger.parse_params(["year=2025", "month=3", "name=x", "margin=0.01"]) == {
        "year": 2025,
        "month": 3,
        "name": "x",
        "margin": 0.01,
    }
    with pytest.raises(UserError, match="key=value"):
        trigger.parse_params(["year"])


def test_quality_table_shows_every_reason_and_era() -> None:
    summary = PreprocessSummary(
        rows_in=10,
        rows_out=7,
        quarantined=3,
        by_reason={"outside_period": 2, "short_trip": 1},
        by_era={"2025": 10},
        by_file={"2025/a.csv": 10},
        kept_with_nulls={"bike_id": 1},
        label_share={"member": 0.7143, "casual": 0.2857},
        label_share_by_month={"2025-03": 0.7143},
        warnings=["odd month"],
        min_duration_s=60,
        input="s3://b/raw/2025/",
        input_digest="sha256:0",
        period="2025",
        output="s3://b/processed/2025/trips.parquet",
        quarantine="q",
        report="r",
        report_md="m",
    )
    rows = {row["measure"]: row["value"] for row in reports.quality_rows(summary)}
    assert rows["quarantined: outside_period"] == 2
    assert rows["quarantined: short_trip"] == 1
    assert rows["rows of era 2025"] == 10
    assert rows["warning"] == "odd month"
    assert (rows["member share"], rows["casual share"]) == (0.7143, 0.2857)  # numbers, not JSON text
    assert reports.artifact_key("data-quality", "2024-03") == "data-quality-2024-03"
    assert reports.artifact_key("To_Bikes.member", "metrics") == "to-bikes-member-metrics"


def test_metrics_sit_next_to_baseline_and_champion() -> None:
    result = TrainResult(
        run_id="r",
        metrics={"roc_auc": 0.91234, "accuracy": 0.8},
        baseline_metrics={"roc_auc": 0.5, "accuracy": 0.6},
        champion_metrics={"roc_auc": 0.9},
        run_url=None,
        valid_month="2025-08",
        champion_version="1",
        compared_on="2025-08",
        compared_metrics={"roc_auc": 0.91234, "accuracy": 0.8},
    )
    rows = {row["metric"]: row for row in reports.metric_rows(result)}
    expected = {"metric": "roc_auc", "model": 0.9123, "baseline": 0.5, "previous champion": 0.9}
    assert rows["roc_auc"] == expected
    assert rows["accuracy"]["previous champion"] == reports.NOT_COMPARED


def test_a_first_run_says_none_and_a_later_month_gets_its_own_columns() -> None:
    first = TrainResult("r", {"roc_auc": 0.9}, {"roc_auc": 0.5}, None, None, valid_month="2025-08")
    assert reports.metric_rows(first)[0]["previous champion"] == "none"
    later = TrainResult(
        "r",
        {"roc_auc": 0.9},
        {"roc_auc": 0.5},
        {"roc_auc": 0.95},
        None,
        valid_month="2025-03",
        champion_version="1",
        compared_on="2025-12",
        compared_metrics={"roc_auc": 0.93},
    )
    row = reports.metric_rows(later)[0]
    assert row == {
        "metric": "roc_auc",
        "model": 0.9,
        "baseline": 0.5,
        "model on 2025-12": 0.93,
        "previous champion on 2025-12": 0.95,
    }


def test_the_decision_text_names_the_months_and_the_reason() -> None:
    from models.registry.register import RegistrationResult

    result = TrainResult(
        "r", {}, {}, None, None, valid_month="2025-03", train_months="2025-01..2025-02", champion_version="1"
    )
    reason = (
        "No honest comparison: champion version 1 trained on 2025-03 and ..., so champion version 1 stays."
    )
    kept = RegistrationResult("3", False, reason, "1", name="m", decision="kept-champion")
    text = reports.describe_decision(result, kept)
    assert text.startswith(
        "Trained on 2025-01..2025-02, validated on 2025-03; not compared with the champion."
    )
    assert reason in text
    first = TrainResult("r", {}, {}, None, None, valid_month="2025-12", train_months="2025-01..2025-11")
    promoted = RegistrationResult("1", True, "No champion yet ...", "1", name="m", compared_on="2025-12")
    assert "no previous champion to compare with" in reports.describe_decision(first, promoted)
    assert "previous champion was version none" in reports.describe_decision(first, promoted)
    again = RegistrationResult(
        "1",
        False,
        "Version 1 is already champion ...",
        "1",
        name="m",
        run_id="abc",
        decision="already-champion",
        rerun_record="gate.rerun.20250101T000000.000000Z",
    )
    text = reports.describe_decision(first, again)
    assert "Version 1 of `m`: already champion (no change)." in text and "promoted" not in text
    assert "its outcome is tag `gate.rerun.20250101T000000.000000Z` of run abc" in text


def test_cache_key_parts_follow_file_content(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "2025"
    raw.mkdir(parents=True)
    (raw / "a.csv").write_text("x\n1\n")
    (raw / "notes.txt").write_text("not data")
    first = caching.list_object_checksums(str(raw), None)
    assert [Path(key).name for key, _, _ in first] == ["a.csv"]
    (raw / "a.csv").write_text("x\n2\n")
    assert caching.list_object_checksums(str(raw), None) != first
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "m.py").write_text("A = 1\n")
    before = caching.digest_source(package)
    (package / "m.py").write_text("A = 2\n")
    assert caching.digest_source(package) != before


class _State:
    def __init__(self, error: BaseException) -> None:
        self.data = error


class _Task:
    name = "t"


def test_only_io_errors_are_retried() -> None:
    assert caching.is_transient(_Task(), None, _State(OSError("reset")))
    wrapped = UserError("S3 request failed")
    wrapped.__cause__ = ConnectionError("reset")
    assert caching.is_transient(_Task(), None, _State(wrapped))
    assert not caching.is_transient(_Task(), None, _State(UserError("Period 'x' is not YYYY")))


POOLS = ("to-bikes", "to-bikes-docker", "to-bikes-kubernetes", "to-bikes-ecs")


def test_prefect_yaml_pushes_per_commit_and_pulls_with_the_credentials_block() -> None:
    spec = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    push = spec["push"][0]["orchestration.deploy.bundle.push_code_bundle"]
    pull = spec["pull"][0]["prefect_aws.deployments.steps.pull_from_s3"]
    unpack = spec["pull"][1]["prefect.deployments.steps.run_shell_script"]
    assert push["folder"].endswith("/{{ $TO_BIKES_BUNDLE }}")
    assert push["credentials"] == pull["credentials"] == "{{ prefect.blocks.aws-credentials.to-bikes-aws }}"
    assert pull["folder"] == "{{ push_code.folder }}"
    assert unpack["script"] == f"tar -xzf {bundle.BUNDLE_NAME}"
    names = {d["entrypoint"].rpartition(":")[2]: d for d in spec["deployments"]}
    assert names["pipeline_flow"]["name"] == "on-demand"
    assert names["preprocess_flow"]["name"] == "on-demand"
    assert names["score_flow"]["name"] == "on-demand"
    assert "schedules" not in names["score_flow"]  # started by the score-after-preprocess automation instead
    for deployment in spec["deployments"]:
        for schedule in deployment.get("schedules", []):  # only ingest/scheduled-daily has one
            assert schedule["timezone"] == "America/Toronto"
        env = deployment["work_pool"]["job_variables"]["env"]
        assert deployment["work_pool"]["job_variables"]["command"] == "to-bikes-engine"
        assert env["TO_BIKES_API_WAIT_SECONDS"] == "{{ $TO_BIKES_API_OUTAGE_S }}"  # set by make deploy
        assert automations.RUN_TAG in deployment["tags"]  # the zombie-run automation watches that tag
        assert env["TO_BIKES_GIT_COMMIT"] == "{{ $TO_BIKES_GIT_SHA }}"
    queues = deploy.read_work_queues()  # one pool per work pool type, the same five queues on each
    assert queues == {pool: ["pipeline", "preprocess", "ingest", "score", "backfill"] for pool in POOLS}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / ".gitignore").write_text("data/\n")
    (root / "prefect.yaml").write_text("name: x\n")
    (root / "code.py").write_text("A = 1\n")
    git(root, "add", ".")
    git(root, "-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-q", "-m", "one")
    return root


def test_clean_tree_bundle_is_exactly_the_commit(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A deployed run's commit (what models.training.lineage.read_git_state prefers) must not name the bundle.
    monkeypatch.setenv("TO_BIKES_GIT_COMMIT", "feedbeef")
    monkeypatch.setenv("TO_BIKES_GIT_DIRTY", "true")
    state = deploy.read_checkout_state(repo)
    assert not state.dirty
    assert state.bundle == state.sha == git(repo, "rev-parse", "HEAD")
    dest = tmp_path / "staged"
    dest.mkdir()
    assert bundle.stage_bundle(repo, state.sha, state.dirty, dest) == 3
    assert (dest / "code.py").read_text() == "A = 1\n"


def test_dirty_tree_is_refused_unless_allowed_and_gets_its_own_folder(repo: Path, tmp_path: Path) -> None:
    (repo / "code.py").write_text("A = 2\n")
    (repo / "new.py").write_text("B = 1\n")
    (repo / "data").mkdir()
    (repo / "data" / "big.csv").write_text("ignored\n")
    state = deploy.read_checkout_state(repo)
    assert state.dirty
    assert state.bundle.startswith(f"{state.sha}-dirty-")
    with pytest.raises(UserError, match="ALLOW_DIRTY=1"):
        deploy.check_clean(state, allow_dirty=False)
    deploy.check_clean(state, allow_dirty=True)
    dest = tmp_path / "staged"
    dest.mkdir()
    bundle.stage_bundle(repo, state.sha, state.dirty, dest)
    assert (dest / "code.py").read_text() == "A = 2\n"
    assert (dest / "new.py").is_file()
    assert not (dest / "data").exists()


def test_no_git_checkout_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a git checkout"):
        deploy.read_checkout_state(tmp_path)


def test_the_code_bundle_is_one_archive_of_the_files_prefectignore_lets_through(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "a.py").write_text("A = 1\n")
    (tmp_path / "models" / "__pycache__").mkdir()
    (tmp_path / "models" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / ".env").write_text("AWS_SECRET_ACCESS_KEY=x\n")
    (tmp_path / ".prefectignore").write_text(".env\n**/__pycache__/\n")
    body, count = bundle.build_bundle(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert count == 2 and sorted(members) == [".prefectignore", "models/a.py"]
    assert members["models/a.py"].uid == 0 and members["models/a.py"].uname == ""
    time.sleep(1.1)  # gzip would otherwise stamp the time of packing
    assert bundle.build_bundle(tmp_path)[0] == body  # same files, same bytes


def test_the_projects_prefectignore_keeps_every_stage_package_and_drops_data(tmp_path: Path) -> None:
    """The project's own .prefectignore: an unanchored ``data/`` once dropped ``models/data/``."""
    kept = ["models/data/preprocess.py", "models/core/s3.py", "orchestration/flows/monthly.py"]
    kept.append("prefect.yaml")
    dropped = ["data/sample/2025/a.csv", ".stack/run/worker.pid", ".env", "tests/t.py"]
    for name in kept + dropped:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    (tmp_path / ".prefectignore").write_text((PROJECT_ROOT / ".prefectignore").read_text())
    files = bundle.bundle_files(tmp_path, ".prefectignore")
    assert sorted(files) == sorted([".prefectignore", *kept])
