"""``python -m models COMMAND``: the model venv's one command line (no Prefect), one command per stage.

    python -m models sample --dest data/sample --seed 7 [--rows 40000]
    python -m models fetch --years 2024 2025 --dest data/raw [--api-url URL]
    python -m models preprocess --input data/sample --output data/processed/trips.parquet [--period 2025]
    python -m models train --input FEATURES.parquet [--input MORE.parquet ...]
    python -m models register --run-id RUN [--margin 0.002]
    python -m models predict [--input URI] [--output URI] [--model URI]
    python -m models score --period 2025-12
    python -m models monitor --period 2025-12
    python -m models serve [--port 5100] [--dry-run]

The commands live in each stage's ``cli.py``; each parses its options, calls the stage's own function
and prints that stage's one-line JSON summary as the last stdout line. Stage modules are imported only
by the command that needs them, so ``preprocess`` never loads MLflow. Errors: ``models.core.cli``.
"""

from __future__ import annotations

from models.core.cli import build_app, run_app
from models.data import cli as data
from models.registry import cli as registry
from models.sample import cli as sample
from models.scoring import cli as scoring
from models.training import cli as training

app = build_app("to-bikes model commands (.venv, no Prefect): data, training, registry, scoring.")
app.command("sample")(sample.sample_command)
app.command("fetch")(data.fetch_command)
app.command("ingest")(data.ingest_command)
app.command("preprocess")(data.preprocess_command)
app.command("train")(training.train_command)
app.command("register")(registry.register_command)
app.command("predict")(scoring.predict_command)
app.command("score")(scoring.score_command)
app.command("monitor")(scoring.monitor_command)
app.command("serve")(scoring.serve_command)


def main(argv: list[str] | None = None) -> int:
    """Run the app on ``argv`` (default: the command line) and return its exit code."""
    return run_app(app, argv, prog_name="python -m models")
