"""The command-line edge shared by both venvs' apps: one Typer app, set up and guarded in one place.

``python -m models`` (.venv) and ``python -m orchestration`` (agent/.venv) build their apps with
``build_app`` and run them with ``run_app``, which sets logging once, keeps httpx's per-request
lines out of the output, and turns a mistake the user can fix (``UserError``, a settings model
that refused the environment) into one ``error: ...`` line on stderr and exit code 2; Ctrl-C is
``error: interrupted`` and 130. No traceback reaches the user, and Typer's rich output is off so
the help and the errors are plain text. Prefect-free: the model venv imports it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import typer
from pydantic import ValidationError

from models.core.errors import EXIT_USER_ERROR, UserError, describe_settings_error

EXIT_INTERRUPTED = 130
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build_app(help_text: str, **options: object) -> typer.Typer:
    """A Typer app (or sub-app) with plain help, no pretty tracebacks and ``-h`` as ``--help``.

    ``options`` override those defaults (``no_args_is_help=False`` for an app whose bare run means something).
    """
    settings: dict[str, object] = {
        "rich_markup_mode": None,
        "pretty_exceptions_enable": False,
        "add_completion": False,
        "no_args_is_help": True,
        "context_settings": {"help_option_names": ["-h", "--help"]},
    }
    return typer.Typer(help=help_text, **(settings | options))  # type: ignore[arg-type]


def set_up_logging() -> None:
    """INFO to stderr in the project's format; httpx's line per request only at WARNING."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def report_error(message: str, code: int) -> int:
    """One line on stderr; the exit code to return."""
    print(f"error: {message}", file=sys.stderr)
    return code


def run_app(app: typer.Typer, argv: Sequence[str] | None = None, *, prog_name: str) -> int:
    """Run ``app`` on ``argv`` (default ``sys.argv[1:]``) and return the exit code, never raising.

    A command returns its exit code (``None`` is 0) or raises ``typer.Exit``; a usage mistake is
    click's own two lines (usage and ``Error: ...``) and exit code 2.
    """
    set_up_logging()
    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with command.make_context(prog_name, args) as ctx:
            return int(command.invoke(ctx) or 0)
    except typer.Exit as exc:  # --help, or a command's own typer.Exit
        return exc.exit_code
    except typer.TyperException as exc:  # a usage mistake: the usage line and ``Error: ...``, exit 2
        show = getattr(exc, "show", None)
        if show is None:
            return report_error(exc.format_message(), exc.exit_code)
        show()
        return exc.exit_code
    except UserError as exc:
        return report_error(str(exc), EXIT_USER_ERROR)
    except ValidationError as exc:  # a settings model (ours or PREFECT_*) rejected the environment
        return report_error(describe_settings_error(exc), EXIT_USER_ERROR)
    except (KeyboardInterrupt, typer.Abort):
        return report_error("interrupted", EXIT_INTERRUPTED)
