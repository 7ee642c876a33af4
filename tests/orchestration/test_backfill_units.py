"""Units of the Dask backfill: its period range, its table, its deployment and its task runner choice."""

from __future__ import annotations

import pytest
import yaml

from models.core.errors import UserError
from models.core.settings import PROJECT_ROOT, Settings
from orchestration.commands.backfill import format_table, period_range

pytestmark = pytest.mark.unit


def test_period_range_takes_years_or_months() -> None:
    assert period_range("2023", "2025") == ["2023", "2024", "2025"]
    assert period_range("2024-11", "2025-02") == ["2024-11", "2024-12", "2025-01", "2025-02"]
    with pytest.raises(UserError, match="after"):
        period_range("2025", "2023")
    with pytest.raises(UserError, match="not a month"):
        period_range("2024", "2025-01")


def test_the_table_has_one_line_per_period(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "30")  # a narrow terminal: the table still never wraps
    rows = [
        {
            "period": "2024-01",
            "rows_in": 10,
            "rows_out": 8,
            "quarantined": 2,
            "other_period": 30,
            "seconds": 1.25,
            "cached": False,
        },
        {"period": "2024-02", "rows_in": 5, "rows_out": 5, "quarantined": 0, "seconds": 0.0, "cached": True},
    ]
    rows[1]["rows_in"] = 123_456_789_012
    lines = format_table(rows).splitlines()
    assert len(lines) == 3, lines
    header = "period   rows in  rows out  quarantined  other period  seconds  cached"
    assert lines[0].split() == header.split()
    assert lines[1].split() == ["2024-01", "10", "8", "2", "30", "1.2", "no"]
    assert lines[2].split() == ["2024-02", "123456789012", "5", "0", "0", "0.0", "yes"]  # older: no other
    for column, cells in (("rows in", (" 10 ", " 123456789012 ")), ("seconds", (" 1.2 ", " 0.0 "))):
        end = lines[0].index(column) + len(column)  # numbers right-aligned under their header
        ends = [line.index(cell) + len(cell) - 1 for line, cell in zip(lines[1:], cells, strict=True)]
        assert ends == [end, end], (column, lines)
    assert "\x1b" not in "".join(lines)  # no colour codes


def test_the_backfill_deployment_runs_the_dask_flow_on_its_own_queue() -> None:
    spec = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    dask = {d["entrypoint"]: d for d in spec["deployments"]}["orchestration/flows/backfill.py:backfill_flow"]
    assert dask["name"] == "on-demand"
    assert dask["work_pool"]["work_queue_name"] == "backfill"


def test_the_task_runner_is_a_local_cluster_unless_an_address_is_set() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from orchestration.flows.backfill import build_task_runner

    local = build_task_runner(Settings(_env_file=None, dask_workers=2))
    assert isinstance(local, DaskTaskRunner) and local.address is None
    assert local.cluster_kwargs["n_workers"] == 2 and local.cluster_kwargs["host"] == "127.0.0.1"
    assert local.cluster_kwargs["preload"] == ["orchestration.flows.dask_workers"]  # warm workers (issue 29)
    assert (
        "n_workers" not in build_task_runner(Settings(_env_file=None)).cluster_kwargs
    )  # sized to the machine
    remote = build_task_runner(Settings(_env_file=None, dask_address="tcp://10.0.0.5:8786"))
    assert remote.address == "tcp://10.0.0.5:8786"
    assert isinstance(build_task_runner(Settings(_env_file=None), sequential=True), ThreadPoolTaskRunner)


def test_the_code_bundle_holds_the_preprocessing_package_but_not_the_data_folder() -> None:
    from orchestration.deploy.bundle import bundle_files

    files = bundle_files(PROJECT_ROOT, ".prefectignore")
    assert "models/data/preprocess.py" in files and "orchestration/flows/backfill.py" in files
    assert not [name for name in files if name.startswith(("data/", ".stack/"))]


def test_the_largest_period_is_submitted_first_and_states_come_back_in_period_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A year holding half the rows submitted last would run alone at the end (issue 29)."""
    from orchestration.flows import backfill

    sizes = {"s3://b/raw/2023/": [10], "s3://b/raw/2024/": [5, 5, 30], "s3://b/raw/2025/": [25]}
    monkeypatch.setattr(
        backfill, "list_object_checksums", lambda uri, settings: [("k", "e", n) for n in sizes[uri]]
    )
    monkeypatch.setattr(backfill, "results_storage", lambda: None)
    submitted: list[str] = []

    class Future:
        def __init__(self, period: str) -> None:
            self.state = f"state of {period}"

        def wait(self) -> None:
            return None

    class Runner:
        def submit(self, task: object, params: dict[str, str]) -> Future:
            submitted.append(params["period"])
            return Future(params["period"])

    periods = ("2023", "2024", "2025")
    parameters = [{"period": p, "input_uri": f"s3://b/raw/{p}/", "settings": None} for p in periods]
    parameters.append({"period": "2023-06", "input_uri": "s3://b/raw/2023/", "settings": None})
    assert backfill.largest_first(parameters) == [1, 2, 0, 3]  # 40, 25, 10 and 10 bytes: ties keep order
    states = backfill.submit_periods(Runner(), parameters)
    assert submitted == ["2024", "2025", "2023", "2023-06"]
    assert states == ["state of 2023", "state of 2024", "state of 2025", "state of 2023-06"]
