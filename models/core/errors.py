"""User-facing errors and the command-line edge that reports them.

A mistake a user can make (a missing file, an unknown header, a bad setting, a server that is
down) raises ``UserError`` with one sentence that names what and where. The CLI edge
(``models.core.cli``) prints that sentence to stderr and exits with code 2; no traceback reaches the user.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

log = logging.getLogger(__name__)

EXIT_USER_ERROR = 2


class UserError(Exception):
    """An error the user can fix; its message is one sentence naming the file, row or setting."""


def describe_settings_error(exc: ValidationError) -> str:
    """One sentence for a settings model that refused a value, without echoing the value."""
    first = exc.errors()[0] if exc.errors() else {}
    field = ".".join(str(part) for part in first.get("loc", ())) or "?"
    return (
        f"{exc.title} setting {field!r} is invalid ({first.get('msg', 'rejected')}); "
        "fix the variable in the environment or .env."
    )


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a CLI ``main``; turn ``UserError`` into one line on stderr and exit code 2.

    Only the argparse mains of ``orchestration/commands/run.py`` and ``score.py`` still use it, until
    they are folded into ``python -m orchestration``; every other command runs through
    ``models.core.cli.run_app``.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(main(argv) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except ValidationError as exc:  # a library's settings (e.g. PREFECT_*) rejected the environment
        print(f"error: {describe_settings_error(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
