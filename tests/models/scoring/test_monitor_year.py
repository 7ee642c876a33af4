"""The simulated year's months monitored as ``make simulate-year`` monitors them (issue 27).

The generated sample's 2025 at the simulation's size and seed (about 250 trips a month, December's labels
collapsed to 6% members), each month monitored by a champion trained on the months before the previous
one and validated on it: its validation ROC AUC and its held-out reference sample built as training builds
it (``models.scoring.reference``). No normal month may breach; the collapsed one must.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pandas as pd
import pytest

from models.core.names import DEFAULT_SEED
from models.core.settings import Settings
from models.data.features import FEATURE_COLUMNS, LABEL_COLUMN
from models.data.preprocess import preprocess
from models.scoring.drift import build_report
from models.scoring.monitor import BREACH, OK, decide, measure_month
from models.scoring.reference import PREDICTED_COLUMN, PROBABILITY_COLUMN, label_predictions, sample_reference
from models.training.dataset import select_features
from models.training.estimator import DEFAULT_PARAMS, build_pipeline
from models.training.metrics import compute_metrics, member_probability
from orchestration.commands.simulate import SAMPLE_ROWS, YEAR, generate_months, month_file, simulate_year

pytestmark = pytest.mark.integration

COLLAPSED = 12  # simulate-year collapses the last month


def scored_month(frame: pd.DataFrame, model) -> pd.DataFrame:
    """A scored month as monitoring reads it: the features, the label, P(member) and the prediction."""
    p_member = member_probability(model, select_features(frame))
    return frame[[*FEATURE_COLUMNS, LABEL_COLUMN]].assign(
        **{PROBABILITY_COLUMN: p_member, PREDICTED_COLUMN: label_predictions(p_member)}
    )


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """2025's months preprocessed one by one, and 2024 (the year before, which January trains on)."""
    folder = tmp_path_factory.mktemp("year")
    seed = inspect.signature(simulate_year).parameters["seed"].default
    data = generate_months(folder / "raw", 12, COLLAPSED, SAMPLE_ROWS, seed)
    months = {}
    for month, content in data.items():
        raw = folder / "published" / month_file(month)
        raw.parent.mkdir(exist_ok=True)
        raw.write_bytes(content)
        out = folder / f"{YEAR}-{month:02d}.parquet"
        preprocess(str(raw), str(out), period=f"{YEAR}-{month:02d}")
        months[month] = pd.read_parquet(out)
    preprocess(str(folder / "raw" / str(YEAR - 1)), str(folder / "previous.parquet"), period=str(YEAR - 1))
    return SimpleNamespace(months=months, previous=pd.read_parquet(folder / "previous.parquet"))


def train_champion(year: SimpleNamespace, valid_month: int):
    """A model trained on every month before ``valid_month``, which it is validated on (held out)."""
    train = pd.concat([year.previous, *(year.months[m] for m in range(1, valid_month))])
    return build_pipeline(DEFAULT_PARAMS, DEFAULT_SEED).fit(select_features(train), train[LABEL_COLUMN])


def monitor_month(year: SimpleNamespace, month: int) -> tuple[str, list[str], dict]:
    """Month ``month`` against a champion validated on the month before: verdict, reasons, drift fields."""
    model = train_champion(year, month - 1)
    reference = sample_reference(year.months[month - 1], model, DEFAULT_SEED)
    labels, p_member = reference[LABEL_COLUMN].to_numpy(), reference[PROBABILITY_COLUMN].to_numpy()
    validation_auc = compute_metrics(labels, p_member)["roc_auc"]  # the whole month: under 5,000 trips
    current = scored_month(year.months[month], model)
    drift = build_report(current, reference, 0.5)
    settings = Settings(monitor_max_drift_share=0.5, monitor_max_auc_drop=0.05)
    verdict, reasons = decide(measure_month(current), validation_auc, drift.drift_share, settings)
    return verdict, reasons, drift.summarise()


def test_no_normal_month_of_the_simulated_year_breaches(year: SimpleNamespace):
    monitored = {month: monitor_month(year, month) for month in range(2, COLLAPSED)}
    breaches = {month: reasons for month, (verdict, reasons, _) in monitored.items() if verdict != OK}
    assert breaches == {}
    left_out = {"month", "is_holiday", "start_station_id", "end_station_id"}  # ~250 trips, ~100 stations
    assert {
        month: set(drift["drift_not_judged"]) for month, (*_, drift) in monitored.items()
    } == dict.fromkeys(monitored, left_out)


def test_the_collapsed_month_still_breaches_on_roc_auc(year: SimpleNamespace):
    assert len(year.months[COLLAPSED]) > 250
    assert (year.months[COLLAPSED][LABEL_COLUMN] == "member").mean() == pytest.approx(0.06, abs=0.005)
    verdict, reasons, drift = monitor_month(year, COLLAPSED)
    assert verdict == BREACH and reasons[0].startswith("ROC AUC "), (reasons, drift)
