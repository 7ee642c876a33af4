"""``python -m models``: one app lists every stage command and reports a user's mistake in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.cli import main

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = (
    "sample",
    "fetch",
    "ingest",
    "preprocess",
    "train",
    "register",
    "predict",
    "score",
    "monitor",
    "serve",
)


def run_models(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m models ARGS`` from the project root, as make runs it."""
    return subprocess.run(
        [sys.executable, "-m", "models", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_lists_every_stage_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out.split("Commands:", 1)[1]
    assert [line.split()[0] for line in listed.splitlines() if line.startswith("  ")] == list(COMMANDS)


def test_a_missing_input_is_one_error_line_and_exit_2() -> None:
    done = run_models("preprocess", "--input", "/nonexistent", "--output", "/tmp/never.parquet")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == ["error: Input /nonexistent does not exist."]


def test_a_bad_setting_is_one_error_line_and_exit_2() -> None:
    done = run_models("predict", TO_BIKES_S3_PORT="notaport")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "TO_BIKES_S3_PORT" in lines[0], lines
    assert "notaport" not in lines[0]  # the value is never echoed


def test_a_usage_mistake_exits_2_with_the_usage_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preprocess", "--output", "x.parquet"]) == 2
    err = capsys.readouterr().err
    assert "Usage: python -m models preprocess" in err and "Missing option '--input'" in err


def test_fetch_keeps_its_space_separated_years(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[list[int]] = []
    monkeypatch.setattr(
        "models.data.fetch.fetch_years", lambda years, *a, **k: seen.append(years) or {"years": {}}
    )
    assert main(["fetch", "--dest", str(tmp_path), "--api-url", "http://x", "--years", "2024", "2025"]) == 0
    assert seen == [[2024, 2025]]


def test_ctrl_c_is_one_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("models.data.preprocess.preprocess", interrupted)
    assert main(["preprocess", "--input", "a", "--output", "b"]) == 130
    assert capsys.readouterr().err.splitlines() == ["error: interrupted"]
