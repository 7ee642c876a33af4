"""The pandas name Evidently 0.7.23 imports (README, "Private APIs we use"): still needed, still enough."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

README_ENTRY = 'README "Private APIs we use": pandas.core.dtypes.common.infer_dtype_from_object'


def test_evidently_still_needs_the_pandas_name_that_drift_puts_back() -> None:
    """Fails when an Evidently or pandas upgrade makes the shim in models/scoring/drift.py unnecessary."""
    bare = subprocess.run(
        [sys.executable, "-c", "import evidently"], capture_output=True, text=True, timeout=120, check=False
    )
    assert "infer_dtype_from_object" in bare.stderr, (
        f"evidently now imports without the shim: remove it from drift.py and the {README_ENTRY} entry"
    )


def test_the_shim_makes_evidently_import() -> None:
    from models.scoring.drift import import_evidently

    assert import_evidently().Report is not None, README_ENTRY
