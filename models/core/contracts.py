"""What a training run produced, in a module of its own that imports nothing heavy.

``orchestration`` caches a training run's result as JSON and rebuilds it from here on a cached rerun,
without importing ``models.training.train`` (scikit-learn, MLflow, pandas: about 2 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainResult:
    """What a training run produced; ``champion_metrics`` is None when there was no champion.

    ``inputs`` are the URIs read, in order (their digests are in the run's ``inputs.json``).
    """

    run_id: str
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    run_url: str | None
    valid_month: str = ""
    champion_version: str | None = None
    seconds: float = 0.0
    inputs: list[str] = field(default_factory=list)
