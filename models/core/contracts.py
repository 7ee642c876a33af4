"""The contracts between stages: what preprocessing and training hand on, typed, importing nothing heavy.

``orchestration`` caches both as JSON and rebuilds them from here on a cached rerun, without importing
``models.data.preprocess`` or ``models.training.train`` (scikit-learn, MLflow, pandas: about 2 s).
Both are pydantic dataclasses: checked when built, and when read back from a cache (``from_dict``).
Their JSON forms (``to_dict``) are what the command lines print and the quality reports start with.
"""

from __future__ import annotations

import functools
from dataclasses import field
from typing import Any, TypeVar

from pydantic import TypeAdapter
from pydantic.dataclasses import dataclass

Contract = TypeVar("Contract", bound="JsonForm")


@functools.cache
def adapter_of(cls: type) -> TypeAdapter[Any]:
    """Pydantic's validator and serializer of one contract class (built once)."""
    return TypeAdapter(cls)


class JsonForm:
    """``to_dict``/``from_dict`` for a contract (a pydantic dataclass): its JSON form and back."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what the command lines print and the flows cache), fields in their order."""
        return adapter_of(type(self)).dump_python(self)

    @classmethod
    def from_dict(cls: type[Contract], data: dict[str, Any]) -> Contract:
        """Rebuilt and type-checked from the JSON form; keys this version does not know are ignored."""
        return adapter_of(cls).validate_python(data)


@dataclass
class PreprocessSummary(JsonForm):
    """What one preprocessing run read, kept, quarantined and skipped, and where it wrote it.

    ``rows_in == rows_out + quarantined + other_period`` always holds: ``other_period`` counts the
    rows that start outside the run's period (skipped, not bad; 0 without a period, and in JSON
    written before the count existed). ``label_share`` is the kept rows' share per
    label, ``label_share_by_month`` the member share per ``YYYY-MM`` (None for a month too small).
    """

    rows_in: int
    rows_out: int
    quarantined: int
    by_reason: dict[str, int]
    by_era: dict[str, int]
    by_file: dict[str, int]
    kept_with_nulls: dict[str, int]
    label_share: dict[str, float]
    label_share_by_month: dict[str, float | None]
    warnings: list[str]
    min_duration_s: int
    input: str
    input_digest: str
    period: str | None
    output: str
    quarantine: str
    report: str
    report_md: str
    other_period: int = 0


@dataclass
class TrainResult(JsonForm):
    """What a training run produced; ``champion_metrics`` is None when no champion was scored.

    ``inputs`` are the URIs read, in order (their digests are in the run's ``inputs.json``).
    ``train_months`` are compact month ranges; the champion and the model are compared on
    ``compared_on`` (None: no month neither trained on, ``comparison`` says why), where the model
    scored ``compared_metrics`` and the champion ``champion_metrics``.
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
    train_months: str = ""
    compared_on: str | None = None
    comparison: str = ""
    compared_metrics: dict[str, float] | None = None
