"""``make readme-blocks``: rewrite the README's verbatim blocks from a real run on the running stack.

    agent/.venv/bin/python -m orchestration readme-blocks [--readme README.md]

A verbatim block is everything between two marker lines; its commands are run in order, from the
checkout, against the stack the environment names, and the block becomes their output, verbatim, in a
``text`` fence, followed by one stamp line (commit, date, the machine's load average before and after,
the stack's cache state before the first command, each command's seconds and exit code)::

    <!-- verbatim: make run YEAR=2031; make run -->
    (replaced)
    <!-- /verbatim -->

Blocks run in the README's order, so a block's cache state is what the blocks above it left. Only the
commands in ``KNOWN_TARGETS`` are run: a marker naming another one, a malformed marker or one without
its end is one sentence naming the README's line, before anything runs.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from models.core.errors import UserError
from models.core.settings import Settings

OPEN = re.compile(r"^<!-- verbatim: (?P<commands>[^>]+?) -->$")
CLOSE = "<!-- /verbatim -->"
MARKER_START = "<!-- verbatim"
# The make targets a block may run: what a person runs against a running stack.
KNOWN_TARGETS = frozenset(
    {
        "demo",
        "run",
        "backfill",
        "score",
        "months",
        "status",
        "doctor",
        "worker-start",
        "worker-stop",
        "up",
        "down",
    }
)
MAKE_VARIABLES = frozenset({"MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"})
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class Block:
    """One verbatim block: the opening marker's line index, the closing one's, and its commands."""

    open_line: int
    close_line: int
    commands: tuple[str, ...]


@dataclass(frozen=True)
class CommandResult:
    """What one command printed (stdout and stderr, interleaved), its exit code and wall seconds."""

    command: str
    output: str
    exit_code: int
    seconds: float


def parse_commands(spec: str, line_number: int) -> tuple[str, ...]:
    """``make run; make months`` -> the commands; any but ``make <known target>`` is an error."""
    commands = tuple(part.strip() for part in spec.split(";") if part.strip())
    for command in commands:
        words = shlex.split(command)
        if len(words) < 2 or words[0] != "make" or words[1] not in KNOWN_TARGETS:
            raise UserError(
                f"README line {line_number}: unknown verbatim command `{command}`; a block runs "
                f"`make TARGET ...` with TARGET one of {', '.join(sorted(KNOWN_TARGETS))}."
            )
    if not commands:
        raise UserError(f"README line {line_number}: the verbatim marker names no command.")
    return commands


def find_blocks(lines: Sequence[str]) -> list[Block]:
    """Every block, in order; a malformed, unclosed or nested marker is a ``UserError`` naming its line."""
    blocks: list[Block] = []
    opened: tuple[int, tuple[str, ...]] | None = None
    for index, line in enumerate(lines):
        text = line.strip()
        if text == CLOSE:
            if opened is None:
                raise UserError(f"README line {index + 1}: {CLOSE} without an opening verbatim marker.")
            blocks.append(Block(opened[0], index, opened[1]))
            opened = None
        elif text.startswith(MARKER_START):
            match = OPEN.match(text)
            if match is None:
                raise UserError(
                    f"README line {index + 1}: unknown marker {text!r}; "
                    "write <!-- verbatim: make TARGET ... -->."
                )
            if opened is not None:
                raise UserError(
                    f"README line {index + 1}: a verbatim marker inside the block of line {opened[0] + 1}."
                )
            opened = (index, parse_commands(match["commands"], index + 1))
    if opened is not None:
        raise UserError(f"README line {opened[0] + 1}: the verbatim block has no {CLOSE} line.")
    return blocks


def clean_output(output: str) -> str:
    """Colour codes, trailing blanks and blank lines at either end removed."""
    lines = [ANSI.sub("", line).rstrip() for line in output.splitlines()]
    return "\n".join(lines).strip("\n")


def render_block(results: Sequence[CommandResult], stamp: str) -> list[str]:
    """The lines between the markers: a fence of ``$ command`` and its output each, then the stamp."""
    body = ["```text"]
    for result in results:
        body.append(f"$ {result.command}")
        output = clean_output(result.output)
        if output:
            body.extend(output.split("\n"))
    body.append("```")
    body.append(stamp)
    return body


def rewrite(lines: Sequence[str], blocks: Sequence[Block], bodies: Sequence[list[str]]) -> list[str]:
    """``lines`` with each block's content replaced by its body; the markers stay."""
    out: list[str] = []
    position = 0
    for block, body in zip(blocks, bodies, strict=True):
        out.extend(lines[position : block.open_line + 1])
        out.extend(body)
        position = block.close_line
    out.extend(lines[position:])
    return out


def format_stamp(
    commit: str,
    when: datetime,
    load_before: tuple[float, ...],
    load_after: tuple[float, ...],
    cache: str,
    results: Sequence[CommandResult],
) -> str:
    """One line under the fence: where, when, how busy the machine was, what was cached, and the seconds."""
    times = "; ".join(f"`{r.command}` {r.seconds:.1f} s (exit {r.exit_code})" for r in results)
    return (
        f"<sub>Regenerated by `make readme-blocks` at commit {commit} on {when:%Y-%m-%d %H:%M} UTC on "
        f"{os.cpu_count()} cores; load average (1, 5, 15 min) {_load(load_before)} before, "
        f"{_load(load_after)} after; cache state before: {cache}. Wall time: {times}.</sub>"
    )


def _load(load: tuple[float, ...]) -> str:
    return "/".join(f"{value:.1f}" for value in load)


def run_command(command: str, cwd: Path) -> CommandResult:
    """Run one command as a person would type it, from ``cwd``; never raises on a non-zero exit."""
    # A top-level make, as typed (under `make readme-blocks` it would print `make[1]: ***`).
    env = {key: value for key, value in os.environ.items() if key not in MAKE_VARIABLES}
    started = time.monotonic()
    done = subprocess.run(
        shlex.split(command),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    return CommandResult(command, done.stdout, done.returncode, time.monotonic() - started)


def current_commit(cwd: Path) -> str:
    """HEAD's short sha, with ``-dirty`` when tracked files differ from it (the README itself excepted)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!README.md"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"{sha}-dirty" if changed else sha


def regenerate(
    readme: Path,
    cache_state: Callable[[], str],
    runner: Callable[[str, Path], CommandResult] = run_command,
) -> list[tuple[Block, list[CommandResult]]]:
    """Run every block's commands and rewrite ``readme``; the blocks and their results, in order."""
    lines = readme.read_text(encoding="utf-8").split("\n")
    blocks = find_blocks(lines)
    if not blocks:
        raise UserError(f"{readme} has no <!-- verbatim: ... --> block.")
    cwd = readme.resolve().parent
    commit = current_commit(cwd)
    done: list[tuple[Block, list[CommandResult]]] = []
    bodies = []
    for block in blocks:
        cache, load_before, when = cache_state(), os.getloadavg(), datetime.now(UTC)
        results = [runner(command, cwd) for command in block.commands]
        stamp = format_stamp(commit, when, load_before, os.getloadavg(), cache, results)
        bodies.append(render_block(results, stamp))
        done.append((block, results))
    readme.write_text("\n".join(rewrite(lines, blocks, bodies)), encoding="utf-8")
    return done


def describe_cache(settings: Settings) -> str:
    """The stack's state a command can reuse: processed periods and reports on S3, flow runs in Prefect."""
    from prefect.client.orchestration import get_client

    from models.core import s3

    def folders(prefix: str) -> int:
        return len(s3.list_folders(settings.s3_uri(prefix) + "/", settings))

    with get_client(sync_client=True) as client:
        runs = client.count_flow_runs()
    return (
        f"{folders(settings.processed_prefix)} processed period(s) and {folders(settings.reports_prefix)} "
        f"monitoring report period(s) on S3, {runs} flow run(s) in Prefect"
    )
