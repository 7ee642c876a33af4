"""Every case of the bad-input corpus gives its recorded outcome, never a traceback or a silent drop.

A ``quarantine`` case must complete with exactly the expected rows in, kept, quarantined (by
reason) and skipped as another period's, and the Parquet files must agree with the summary. An
``error`` case must raise a ``UserError`` whose one-line message names the file, publish nothing,
and through the CLI exit 2 with that line on stderr and no traceback.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from models.core.errors import UserError
from models.core.settings import PROJECT_ROOT as ROOT
from models.data.outputs import output_paths
from models.data.preprocess import preprocess
from tests.models.data.bad_inputs import BadInput, build_cases, write_corpus

CASES = build_cases()
ERRORS = [case for case in CASES if case.outcome == "error"]
CLI_TIMEOUT_S = 300

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad-inputs")
    write_corpus(folder)
    return folder


def test_corpus_covers_at_least_thirty_cases_of_both_outcomes() -> None:
    names = [case.name for case in CASES]
    assert len(names) >= 30
    assert len(set(names)) == len(names)
    assert {case.outcome for case in CASES} == {"error", "quarantine"}


def check_error(case: BadInput, source: Path, output: Path) -> None:
    try:
        summary = preprocess(str(source), str(output), period=case.period)
    except UserError as exc:
        message = str(exc)
    else:
        counts = {k: getattr(summary, k) for k in ("rows_in", "rows_out", "quarantined", "by_reason")}
        pytest.fail(f"{case.name} ({case.note}) must be a UserError naming {case.named}; got {counts}")
    assert case.named in message, f"the error does not name {case.named}: {message}"
    assert "\n" not in message and message.endswith("."), f"not one sentence: {message!r}"
    published = [p.name for p in output.parent.glob("*")] if output.parent.exists() else []
    assert published == [], f"an error run published {published}"


def check_quarantine(case: BadInput, source: Path, output: Path) -> None:
    summary = preprocess(str(source), str(output), period=case.period)
    counts = (summary.rows_in, summary.rows_out, summary.quarantined, summary.other_period)
    assert summary.rows_in == summary.rows_out + summary.quarantined + summary.other_period, counts
    assert summary.by_reason == case.by_reason
    quarantined = sum(case.by_reason.values())
    expected = (case.rows_in, case.rows_out, quarantined, case.other_period)
    assert counts == expected, "rows lost or invented"
    paths = output_paths(str(output))
    assert pq.read_metadata(paths["output"]).num_rows == case.rows_out
    quarantine = pq.read_table(paths["quarantine"])
    assert dict(collections.Counter(quarantine["reason"].to_pylist())) == case.by_reason
    assert all(name.startswith(case.filename) for name in quarantine["source_file"].to_pylist())
    assert json.loads(Path(paths["report"]).read_text())["rows_in"] == case.rows_in


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_input_gives_its_recorded_outcome(case: BadInput, corpus: Path, tmp_path: Path) -> None:
    source = corpus / case.name / case.filename
    output = tmp_path / "out" / "trips.parquet"
    if case.outcome == "error":
        check_error(case, source, output)
    else:
        check_quarantine(case, source, output)


def test_zip_entry_names_never_choose_where_files_are_written(corpus: Path, tmp_path: Path) -> None:
    scratch = Path(tempfile.gettempdir())
    before = {p for p in (scratch, scratch.parent) if (p / "escape.csv").exists()}
    summary = preprocess(str(corpus / "zip_path_traversal" / "2025.zip"), str(tmp_path / "t.parquet"))
    after = {p for p in (scratch, scratch.parent, tmp_path) if (p / "escape.csv").exists()}
    assert summary.rows_out == summary.rows_in > 0
    assert after == before


@pytest.mark.parametrize("case", ERRORS, ids=lambda case: case.name)
def test_cli_reports_a_bad_input_in_one_line_without_traceback(
    case: BadInput, corpus: Path, tmp_path: Path
) -> None:
    source = corpus / case.name / case.filename
    command = [sys.executable, "-m", "models", "preprocess", "--input", str(source)]
    command += ["--output", str(tmp_path / "trips.parquet")]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert len(errors) == 1 and case.named in errors[0], result.stderr[-2000:]
    assert list(tmp_path.glob("trips*")) == []
