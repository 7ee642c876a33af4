"""Which processed files a training run reads.

A run for a month validates on that month, so it must also read earlier months to train on: the
pipeline for ``2025-03`` preprocesses only March, and training on that file alone has nothing to
learn from. ``select_training_inputs`` picks, from what preprocessing has already written under
``processed/<period>/trips.parquet``, the outputs a user would expect; ``plan_training_periods`` is
the same rule without S3, so it can be read and tested on its own.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence

from models.core import s3
from models.core.errors import UserError
from models.core.periods import PERIOD_PATTERN, check_period, months_before
from models.core.settings import Settings

OUTPUT_NAME = "trips.parquet"
WINDOW_MONTHS = 12  # a monthly run trains on at most the 11 months before its own


def list_input_uris(features_uri: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """One URI or several as a list of strings; none at all, or one given twice, is a UserError."""
    if isinstance(features_uri, str | os.PathLike):
        return [os.fspath(features_uri)]
    uris = [os.fspath(uri) for uri in features_uri]
    if not uris:
        raise UserError("No training input given; pass at least one processed Parquet file (--input).")
    repeated = next((uri for index, uri in enumerate(uris) if uri in uris[:index]), None)
    if repeated is not None:
        raise UserError(f"Training input {repeated} is given twice; give each processed file once.")
    return uris


def plan_training_periods(period: str, available: Collection[str], where: str) -> list[str]:
    """The processed periods a run for ``period`` reads, oldest first (``where`` names them in errors).

    A year reads its own output. A month reads its own output (the validation month) and the monthly
    outputs of the 11 months before it that exist. When any of those 11 months has no monthly output
    and the previous year's output (``processed/<year-1>/``) exists, that yearly output is read instead
    of the previous year's monthly ones, so no trip is read twice; training may then reach back to
    January of the previous year. The month's own year's output is never read: it may hold the month
    itself and later ones. Fewer than two months to read is a UserError saying what to run.
    """
    check_period(period)
    if period not in available:
        raise UserError(
            f"No processed output for {period} under {where}; run the pipeline for {period} first."
        )
    if len(period) == 4:
        return [period]
    window = months_before(period, WINDOW_MONTHS - 1)
    previous_year = str(int(period[:4]) - 1)
    chosen = [month for month in window if month in available]
    if len(chosen) < len(window) and previous_year in available:
        chosen = [previous_year] + [month for month in chosen if not month.startswith(previous_year)]
    if not chosen:
        raise UserError(
            f"Training for {period} needs at least two months of processed data under {where} but only "
            f"{period} is there; run the pipeline for {window[-1]} (or for the year {previous_year}) first."
        )
    return [*chosen, period]


def list_processed_periods(settings: Settings) -> set[str]:
    """Every period with a ``<processed_prefix>/<period>/trips.parquet`` object on S3."""
    uri = settings.s3_uri(settings.processed_prefix) + "/"
    _, prefix = s3.split_s3_uri(uri)
    periods: set[str] = set()
    for entry in s3.list_objects(uri, settings):
        period, _, name = entry["Key"][len(prefix) :].partition("/")
        if name == OUTPUT_NAME and PERIOD_PATTERN.match(period):
            periods.add(period)
    return periods


def select_training_inputs(settings: Settings, period: str) -> list[str]:
    """The ``s3://`` URIs of the processed outputs a run for ``period`` trains and validates on.

    ``period`` is ``YYYY`` or ``YYYY-MM``; the rule is ``plan_training_periods``'s. Pass the result
    to ``models.training.train.train_model``.
    """
    where = settings.s3_uri(settings.processed_prefix) + "/"
    periods = plan_training_periods(period, list_processed_periods(settings), where)
    return [settings.s3_uri(settings.processed_prefix, p, OUTPUT_NAME) for p in periods]
