"""``python -m orchestration run|backfill|score|champion|months|screenshots|readme-blocks``: user commands.

    agent/.venv/bin/python -m orchestration run [--deployment NAME] [--param key=value ...] [--wait-seconds S]
    agent/.venv/bin/python -m orchestration backfill --from 2024-01 --to 2024-06 [--per-month]
    agent/.venv/bin/python -m orchestration score --year 2025 [--month 12]

The options are those of ``make run``, ``make backfill`` and ``make score``; the work is done by
``orchestration.commands.runs`` (start a deployment run and wait), ``.run`` (parameters),
``.backfill`` (its table) and ``models.scoring.history`` (a period's figures). Exit 0 only when every
run Completed; 2 with one sentence for a mistake the user can fix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from models.core.periods import format_period, month_range
from models.core.settings import load_settings

# orchestration.commands.run (which holds the defaults) imports Prefect; it is imported by the commands
# themselves, so that `--help` and the stack's commands in the same app never load Prefect.
WaitSeconds = Annotated[
    float | None,
    typer.Option(
        "--wait-seconds", "--timeout", help="seconds to wait per run before leaving it running (default 600)"
    ),
]
Deployment = Annotated[str | None, typer.Option(help="flow/deployment (default: the one the command names)")]
Params = Annotated[
    list[str] | None, typer.Option("--param", metavar="KEY=VALUE", help="key=value (JSON value), repeatable")
]


def connect_prefect() -> None:
    """One sentence for a malformed .env or a dead API; Prefect's client then uses the configured API."""
    from stack.prefect_api import require_prefect_api

    settings = load_settings()
    require_prefect_api(settings)
    os.environ.setdefault("PREFECT_API_URL", settings.prefect_api_url)


def run_command(
    deployment: Deployment = None,
    param: Params = None,
    wait_seconds: WaitSeconds = None,
) -> int:
    """One run of a deployment (default to-bikes-pipeline/on-demand); exit 0 only if it Completed."""
    from orchestration.commands.run import DEFAULT_WAIT_S, PIPELINE, parse_params, run_deployment_once
    from orchestration.commands.runs import print_now

    connect_prefect()
    wait_s = DEFAULT_WAIT_S if wait_seconds is None else wait_seconds
    completed, lines = run_deployment_once(deployment or PIPELINE, parse_params(param or []), wait_s)
    for line in lines:
        print_now(line)
    return 0 if completed else 1


def backfill_command(
    first: Annotated[str, typer.Option("--from", help="first month YYYY-MM (or year)")],
    last: Annotated[str, typer.Option("--to", help="last month YYYY-MM (or year)")],
    per_month: Annotated[
        bool, typer.Option("--per-month", help="one run of --deployment per month instead")
    ] = False,
    deployment: Deployment = None,
    param: Params = None,
    wait_seconds: WaitSeconds = None,
) -> int:
    """Periods FROM..TO in one run on Dask (or one preprocess/on-demand run per month), then a table."""
    from orchestration.commands.run import DEFAULT_WAIT_S, PREPROCESS, parse_params, run_deployment_once
    from orchestration.commands.runs import print_now

    connect_prefect()
    extra = parse_params(param or [])
    wait_s = DEFAULT_WAIT_S if wait_seconds is None else wait_seconds
    if not per_month:
        from orchestration.commands.backfill import period_range, run_backfill

        completed, report = run_backfill(period_range(first, last), extra, wait_s)
        print(report)
        return 0 if completed else 1
    months = month_range(first, last)
    failed = 0
    for month in months:
        params = {**extra, "year": int(month[:4]), "month": int(month[5:])}
        completed, lines = run_deployment_once(deployment or PREPROCESS, params, wait_s)
        print_now(f"{month}: {' | '.join(lines)}")
        failed += not completed
    print(f"backfill {first}..{last}: {len(months) - failed} of {len(months)} month(s) Completed")
    return 0 if failed == 0 else 1


def score_command(
    year: Annotated[int, typer.Option(help="year of the period (YEAR=)")],
    month: Annotated[
        int | None, typer.Option(help="month of the period (MONTH=); none scores the year")
    ] = None,
    deployment: Deployment = None,
    wait_seconds: WaitSeconds = None,
) -> int:
    """Score and monitor a period through the score/on-demand deployment, then print its figures.

    Its ``result:`` line is the run's state message: whether it monitored the month itself or found it
    "already scored by" an earlier run (the automation's, say), and whether the predictions were cached.
    """
    from models.scoring.history import describe_summary, read_summary
    from models.scoring.monitor import report_link
    from models.scoring.score import predictions_uri
    from orchestration.commands.run import DEFAULT_WAIT_S
    from orchestration.commands.runs import print_now, start_and_wait
    from orchestration.deploy.loop_automations import SCORE

    connect_prefect()
    settings = load_settings()
    period = format_period(year, month)
    params = {"year": year, **({"month": month} if month else {})}
    wait_s = DEFAULT_WAIT_S if wait_seconds is None else wait_seconds
    completed, lines = start_and_wait(deployment or SCORE, params, wait_s)
    for line in lines:
        print_now(line)
    if not completed:
        return 1
    summary = read_summary(settings, period)
    link = report_link(settings, summary["report"])
    for line in describe_summary(summary, predictions_uri(settings, period), link):
        print(line)
    return 0


def champion_command() -> int:
    """The champion model's metrics, lineage and links, then the UI addresses (make demo's last lines)."""
    from orchestration.commands.champion import describe_addresses, describe_champion

    settings = load_settings()
    for line in [*describe_champion(settings), *describe_addresses(settings)]:
        print(line)
    return 0


def months_command() -> int:
    """One row per month: raw files, rows, models, gate, scoring, verdict and the last flow run."""
    from orchestration.commands.months import render_months
    from orchestration.flows.months import build_months_table

    connect_prefect()
    print(render_months(build_months_table(load_settings())))
    return 0


def screenshots_command(
    dest: Annotated[Path, typer.Option(help="folder for the PNGs")] = Path("docs/images"),
) -> int:
    """PNGs of the running stack's pages (headless Chromium) for the README."""
    from orchestration.commands.screenshots import take_all

    for png in take_all(load_settings(), dest):
        print(f"{png} ({png.stat().st_size} bytes)")
    return 0


def simulate_year_command(
    months: Annotated[int, typer.Option(help="months of 2025 to publish, one at a time")] = 12,
    collapse: Annotated[
        int | None, typer.Option(help="the month whose labels collapse to ~6% members (default: the last)")
    ] = None,
    receiver: Annotated[
        bool, typer.Option("--receiver", help="start a local notification receiver and print what it got")
    ] = False,
    rows: Annotated[int, typer.Option(help="rows of the generated sample (all eras)")] = 6000,
    quiet_seconds: Annotated[
        float, typer.Option(help="a month is done when its runs are final and nothing started for this long")
    ] = 30.0,
) -> int:
    """A time-compressed 2025: a fake portal publishes one month at a time; the automations do the rest."""
    from orchestration.commands.simulate import simulate_year

    if not 1 <= months <= 12 or not 1 <= (collapse or months) <= months:
        raise typer.BadParameter("--months is 1..12 and --collapse one of those months")
    connect_prefect()
    return 0 if simulate_year(months, collapse, receiver, rows, quiet_s=quiet_seconds, say=print_flush) else 1


def print_flush(line: str) -> None:
    print(line, flush=True)


def readme_blocks_command(
    readme: Annotated[
        Path, typer.Option(help="the Markdown file whose verbatim blocks are regenerated")
    ] = Path("README.md"),
) -> int:
    """Run each verbatim block's commands on the running stack and rewrite the block with their output."""
    from orchestration.commands.readme_blocks import describe_cache, regenerate

    connect_prefect()
    settings = load_settings()
    for block, results in regenerate(readme, lambda: describe_cache(settings)):
        codes = ", ".join(f"{r.command}: exit {r.exit_code}, {r.seconds:.1f} s" for r in results)
        print(f"{readme}:{block.open_line + 1}: {codes}")
    return 0


def soak_command(
    seed: Annotated[int, typer.Option(help="seed of the fault schedule (SEED=)")] = 30,
    months: Annotated[
        int, typer.Option(help="months to publish, from January, ending 2025 at the latest: 1..24 (MONTHS=)")
    ] = 12,
    faults: Annotated[int, typer.Option(help="faults to inject over those months (FAULTS=)")] = 20,
    outage_scale: Annotated[
        float, typer.Option(help="server outages last this fraction of their drawn length (0..1]")
    ] = 1.0,
    quiet_seconds: Annotated[
        float, typer.Option(help="a month is done when its runs are final and nothing started for this long")
    ] = 30.0,
) -> int:
    """The simulated publication under a seeded fault schedule, then the invariants; exit 1 if one fails."""
    from orchestration.commands.soak import run_soak

    connect_prefect()
    ok = run_soak(seed, months, faults, outage_scale, quiet_s=quiet_seconds, say=print_flush)
    return 0 if ok else 1
