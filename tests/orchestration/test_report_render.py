"""The Evidently report opens in headless Chromium (the browser of `make screenshots`) and renders."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from models.scoring.drift import build_report
from models.scoring.reference import label_predictions
from models.training.dataset import select_features
from orchestration.commands.screenshots import run_chromium, take_screenshot
from tests.models.training.trips import build_trips

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def scored(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Features, label and a noisy P(member) that follows the label."""
    noise = np.random.default_rng(seed).normal(0, 0.25, len(frame))
    p_member = np.clip((frame["user_type"] == "member").to_numpy() * 0.6 + 0.2 + noise, 0, 1)
    features = select_features(frame).assign(user_type=frame["user_type"].to_numpy())
    return features.assign(p_member=p_member, predicted_user_type=label_predictions(p_member))


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory):
    html = tmp_path_factory.mktemp("report") / "monitoring.html"
    reference = scored(build_trips(rows=1500, seed=1), 1)
    current = scored(build_trips(rows=1500, months=("2025-09",), seed=2), 2)
    build_report(current, reference, 0.5).report.save_html(str(html))
    return html


@pytest.mark.integration
@pytest.mark.slow
def test_evidently_report_renders_its_widgets_in_chromium(report_file):
    source = report_file.read_text()
    assert not re.search(r'<div id="root_metric_[0-9a-f]+"><div', source)  # empty before its scripts run
    dom = run_chromium("--dump-dom", report_file.as_uri())
    rendered = re.findall(r'<div id="root_metric_[0-9a-f]+"><div', dom)
    assert len(rendered) == 1  # the report root was drawn by its own JS
    assert dom.count('class="main-svg"') >= 2  # plotly charts
    assert "MuiTableCell-root" in dom and "duration_s" in dom


@pytest.mark.integration
@pytest.mark.slow
def test_screenshot_of_the_report_is_a_png(report_file, tmp_path):
    png = take_screenshot(report_file.as_uri(), tmp_path / "report.png")
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 20_000
