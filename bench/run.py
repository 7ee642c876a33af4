"""``python -m bench``: measure preprocessing, memory, training and orchestration side by side.

    python -m bench --rows 2000000 [--repeats 3] [--sections preprocess,memory,peers,training,orchestration]

Writes ``bench/results.md`` (the table) and ``bench/results.json`` (every run's figures); inputs,
outputs, logs and the throw-away MLflow store live in ``bench/work/`` (git-ignored). The machine
is shared, so every figure comes with a reference measured in the same run.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import logging
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from bench import orchestration, peer_runs, scale, sections
from bench.measure import ROOT, median_of
from bench.report import write_results
from models.core.cli import build_app, run_app

log = logging.getLogger("bench")

SECTIONS = ("preprocess", "memory", "peers", "training", "orchestration", "scale")
PACKAGES = ("pandas", "pyarrow", "numpy", "scikit-learn", "mlflow")
PEER_PACKAGES = ("polars", "duckdb")  # requirements/bench.txt, installed by `make bench`


def git(*args: str) -> str:
    """Output of a git command in the repository (empty when git is not there)."""
    found = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return found.stdout.strip()


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def describe_environment() -> dict[str, Any]:
    """Cores, load, Python and package versions, and the commit measured."""
    versions = {"python": platform.python_version()}
    versions.update({name: importlib.metadata.version(name) for name in PACKAGES})
    for name in PEER_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed (make bench installs requirements/bench.txt)"
    prefect = orchestration.prefect_version()
    if prefect:
        versions["prefect (agent/.venv)"] = prefect
    changed = git("status", "--porcelain", "--", "models", "orchestration")
    dirty = " (+ uncommitted changes)" if changed else ""
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu": platform.processor() or platform.machine(),
        "load_start": load_average(),
        "versions": versions,
        "git_commit": git("rev-parse", "--short", "HEAD") + dirty,
    }


@dataclass(frozen=True)
class BenchOptions:
    """The command line's options (see the module docstring)."""

    rows: int
    seed: int
    repeats: int
    subset_rows: int
    rss_rows: int
    peer_full_repeats: int
    train_repeats: int
    sections: str
    work: Path
    out: Path


def bench_command(
    rows: Annotated[int, typer.Option(help="rows in the generated input")] = 2_000_000,
    seed: Annotated[int, typer.Option(help="seed of the generated input")] = 7,
    repeats: Annotated[int, typer.Option(help="timed runs per contender (median)")] = 3,
    subset_rows: Annotated[int, typer.Option(help="rows for the pandas notebook")] = 200_000,
    rss_rows: Annotated[int, typer.Option(help="rows for peak RSS (0: --rows)")] = 7_800_000,
    peer_full_repeats: Annotated[int, typer.Option(help="runs per contender at --rss-rows (peers)")] = 1,
    train_repeats: Annotated[int, typer.Option(help="timed training runs (median)")] = 3,
    sections: Annotated[str, typer.Option(help="comma-separated subset to run")] = ",".join(SECTIONS),
    work: Annotated[Path, typer.Option(help="scratch folder")] = ROOT / "bench" / "work",
    out: Annotated[Path, typer.Option(help="folder for results.md/.json")] = ROOT / "bench",
) -> int:
    """Measure preprocessing, memory, training and orchestration side by side."""
    options = BenchOptions(
        rows, seed, repeats, subset_rows, rss_rows, peer_full_repeats, train_repeats, sections, work, out
    )
    return run_bench(options, sys.argv[1:])


def run_sections(args: BenchOptions, wanted: list[str]) -> dict[str, Any]:
    """Measure the wanted sections in order; each section's figures under its name."""
    ctx = sections.Context(
        work=args.work.resolve(),
        rows=args.rows,
        seed=args.seed,
        repeats=args.repeats,
        subset_rows=min(args.subset_rows, args.rows),
        rss_rows=args.rss_rows,
        train_repeats=args.train_repeats,
    )
    results: dict[str, Any] = {}
    if "preprocess" in wanted or "memory" in wanted:
        results["preprocess"] = sections.measure_preprocess(ctx)
    if "memory" in wanted:
        results["memory"] = sections.measure_memory(ctx, results["preprocess"])
    if "peers" in wanted:
        results["peers"] = peer_runs.measure_peers(ctx, args.peer_full_repeats)
    if "training" in wanted:
        results["training"] = sections.measure_training(ctx)
    if "orchestration" in wanted:
        results["orchestration"] = orchestration.measure_orchestration(ctx)
    if "scale" in wanted:
        results["scale"] = scale.measure_scale(ctx)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the app on ``argv`` (default: the command line): errors and Ctrl-C as in ``models.core.cli``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    app = build_app(__doc__.splitlines()[0].split(": ", 1)[1], no_args_is_help=False)
    app.command()(bench_command)
    return run_app(app, argv, prog_name="python -m bench")


def run_bench(args: BenchOptions, argv: list[str]) -> int:
    """Run the bench, write the results, print the table."""
    wanted = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        print(f"Unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}.", file=sys.stderr)
        return 2
    environment = describe_environment()
    log.info("%s cores, load %s", environment["cores"], environment["load_start"])
    log.info("versions %s", environment["versions"])
    started = dt.datetime.now(dt.UTC)
    results = run_sections(args, wanted)
    environment["load_end"] = load_average()
    results.update(
        command=shlex.join(["python", "-m", "bench", *argv]),
        environment=environment,
        repeats=args.repeats,
        train_repeats=args.train_repeats,
        started=started.isoformat(timespec="seconds"),
        finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        notes=collect_notes(results, args),
    )
    rows = write_results(results, args.out)
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        print(f"{row['measure']}: {row['value']} | ref {row['reference']} | {ratio} | goal {row['goal']}")
    return 0


def collect_notes(results: dict[str, Any], args: BenchOptions) -> list[str]:
    """Short facts a reader of the table needs: semantic check, training repeats, unmeasured parts."""
    notes = []
    pre = results.get("preprocess")
    if pre:
        same = "the same" if pre["same_counts_as_notebook"] else "DIFFERENT"
        notes.append(
            f"The pandas notebook reference kept and quarantined {same} rows (per reason) as "
            f"models.data.preprocess on its {pre['subset_rows']:,}-row sample; models.data.preprocess took "
            f"{pre['subset_preprocess_seconds']:.1f} s there."
        )
    if pre:
        cpu = {name: median_of(runs, "cpu_seconds") for name, runs in pre["runs"].items()}
        notes.append(
            "CPU seconds (all threads, medians): models.data.preprocess "
            f"{cpu['preprocess']:.2f}, pyarrow reader {cpu['pyarrow']:.2f} (same {pre['rows']:,} rows), "
            f"pandas notebook {cpu['notebook']:.2f} ({pre['subset_rows']:,} rows)."
        )
    for size in results.get("peers", {}).values():
        notes.append(
            f"Peers at {size['rows']:,} rows: median of {size['repeats']} interleaved run(s) per contender "
            "(models, polars, duckdb, pandas); a peer counts only if its kept and quarantined rows per "
            "reason equal models' on that input."
        )
    memory = results.get("memory")
    if memory and "seconds" in memory:
        notes.append(
            f"The peak-RSS run preprocessed {memory['rows']:,} rows in {memory['seconds']:.1f} s "
            f"({memory['rows_per_s']:,.0f} rows/s, not comparable with the same-run ratios above)."
        )
    if results.get("training"):
        notes.append(
            f"Training: median of {args.train_repeats} run(s) of train_model (search, final fit, evaluation, "
            "plots, MLflow logging to a throw-away SQLite store); interpreter start and imports not included."
            f" Training before: the same child task with models/ at {results['training']['reference_commit']}"
            " (bench/training_reference.py), interleaved with it, on the same file and split."
        )
    notes += results.get("orchestration", {}).get("notes", [])
    notes += results.get("scale", {}).get("notes", [])
    return notes
