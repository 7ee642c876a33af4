"""Settings: a bad value is one sentence naming the variable, never echoing the value."""

from __future__ import annotations

import subprocess
import sys

import pytest

from models.core.errors import UserError
from models.core.settings import load_settings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TO_BIKES_S3_PORT", "not-a-port-s3cr3t"), ("TO_BIKES_USE_LOCAL_S3", "perhaps-s3cr3t")],
)
def test_a_bad_setting_names_the_variable_and_hides_the_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(UserError) as caught:
        load_settings()
    message = str(caught.value)
    assert variable in message
    assert "s3cr3t" not in message
    assert "\n" not in message


def test_an_alias_is_reported_by_the_variable_a_user_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # other tests' mlflow.set_tracking_uri sets it
    monkeypatch.setenv("TO_BIKES_MLFLOW_PORT", "5051")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ca-central-1")
    settings = load_settings()
    assert settings.aws_region == "ca-central-1"
    assert settings.mlflow_tracking_uri.endswith(":5051")


def test_a_cli_turns_a_bad_setting_into_exit_2_without_traceback(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "models", "train", "--input", str(tmp_path / "missing.parquet")],
        env={"PATH": "/usr/bin:/bin", "TO_BIKES_USE_LOCAL_S3": "perhaps", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "TO_BIKES_USE_LOCAL_S3" in done.stderr
