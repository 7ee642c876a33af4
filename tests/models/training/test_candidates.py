"""Tests of models.training.candidates: the search on a stratified sample, one refit, the baseline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models.core.names import POSITIVE_LABEL
from models.data.features import LABEL_COLUMN
from models.training import candidates, estimator
from models.training.candidates import fit_baseline, fit_candidates, sample_rows
from models.training.dataset import Split, split_by_month
from models.training.estimator import build_baseline, build_pipeline
from tests.models.training.trips import build_trips


@pytest.fixture(scope="module")
def split() -> Split:
    """About 4,000 training trips (June and July) and 2,000 validation trips (August)."""
    return split_by_month(build_trips(rows=6000), "synthetic")


def member_share(labels: Any) -> float:
    return float(np.mean(np.asarray(labels) == POSITIVE_LABEL))


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float, dict[str, Any]]]:
    """Every pipeline fit of ``fit_candidates``: rows, member share and hyper-parameters, in order."""
    seen: list[tuple[int, float, dict[str, Any]]] = []

    def recording_pipeline(params: dict[str, Any], seed: int) -> Any:
        pipeline = build_pipeline(params, seed)
        fit = pipeline.fit

        def record(x: Any, y: Any) -> Any:
            seen.append((len(x), member_share(y), dict(params)))
            return fit(x, y)

        pipeline.fit = record
        return pipeline

    monkeypatch.setattr(candidates, "build_pipeline", recording_pipeline)  # the final fit
    monkeypatch.setattr(estimator, "build_pipeline", recording_pipeline)  # the search's trials
    return seen


@pytest.mark.unit
def test_search_runs_on_a_sample_and_the_best_parameters_are_refit_once_on_more_rows(split, fits):
    fitted = fit_candidates(split, max_evals=3, time_budget_s=600, seed=1, search_rows=1000, fit_rows=3000)
    *trials, final = fits
    assert fitted.search_rows == pytest.approx(1000, abs=1) and fitted.fit_rows == pytest.approx(3000, abs=1)
    # Every trial on the search sample less its latest 20% (held out), then one fit on the fit sample.
    assert [rows for rows, _, _ in trials] == [int(fitted.search_rows * 0.8)] * 3
    assert (final[0], final[2]) == (fitted.fit_rows, fitted.search.best_params)
    assert final[1] == pytest.approx(member_share(split.train[LABEL_COLUMN]), abs=1 / 1000)
    booster = fitted.model.named_steps["model"]
    assert booster.do_early_stopping_ and len(booster.validation_score_) == booster.n_iter_ + 1


@pytest.mark.unit
def test_the_final_fit_takes_every_training_row_when_there_are_fewer_than_fit_rows(split, fits):
    fitted = fit_candidates(split, max_evals=1, time_budget_s=600, seed=1, search_rows=1000, fit_rows=10**6)
    assert fits[-1][0] == fitted.fit_rows == len(split.train)


@pytest.mark.unit
def test_samples_keep_the_member_share_and_the_frame_order(split):
    picked, share = sample_rows(split.train, 1000, seed=3), member_share(split.train[LABEL_COLUMN])
    assert len(picked) == pytest.approx(1000, abs=1) and picked.index.is_monotonic_increasing
    assert member_share(picked[LABEL_COLUMN]) == pytest.approx(share, abs=1e-3)
    assert picked.index.equals(sample_rows(split.train, 1000, seed=3).index)
    assert sample_rows(split.train, 10**6, seed=3) is split.train


@pytest.mark.unit
def test_the_baseline_fitted_on_class_counts_is_the_one_fitted_on_every_label(split):
    labels = split.train[LABEL_COLUMN]
    on_counts = fit_baseline(labels)
    on_rows = build_baseline().fit(np.zeros((len(labels), 1)), labels.to_numpy())
    assert list(on_counts.classes_) == list(on_rows.classes_)
    assert on_counts.class_prior_ == pytest.approx(on_rows.class_prior_, abs=1e-12)
    rows = np.zeros((3, 1))
    assert on_counts.predict_proba(rows) == pytest.approx(on_rows.predict_proba(rows), abs=1e-12)
