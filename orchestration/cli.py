"""``python -m orchestration COMMAND``: the agent venv's one command line (Prefect 3 and the local stack).

Every orchestration make target calls one of these commands. The command functions live beside what
they drive (``orchestration.deploy.cli``, ``orchestration.commands.cli``, ``stack.cli``); this module
only puts them in one app. Errors, logging and the one-sentence failure: ``models.core.cli``.
"""

from __future__ import annotations

from models.core.cli import build_app, run_app
from orchestration.commands import cli as commands
from orchestration.deploy import cli as deploy
from stack.cli import stack_app, worker_app

app = build_app("to-bikes orchestration (agent/.venv): the local stack, deploy, worker, runs.")
app.add_typer(stack_app, name="stack")
app.command("blocks")(deploy.blocks_command)
app.command("deploy")(deploy.deploy_command)
app.command("automations")(deploy.automations_command)
app.command("loop-automations")(deploy.loop_automations_command)
app.command("notifications")(deploy.notifications_command)
app.add_typer(worker_app, name="worker")
app.command("run")(commands.run_command)
app.command("backfill")(commands.backfill_command)
app.command("score")(commands.score_command)
app.command("champion")(commands.champion_command)
app.command("months")(commands.months_command)
app.command("screenshots")(commands.screenshots_command)
app.command("readme-blocks")(commands.readme_blocks_command)
app.command("simulate-year")(commands.simulate_year_command)
app.command("soak")(commands.soak_command)


def main(argv: list[str] | None = None) -> int:
    """Run the app on ``argv`` (default: the command line) and return its exit code."""
    return run_app(app, argv, prog_name="python -m orchestration")
