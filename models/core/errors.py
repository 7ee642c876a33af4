"""User-facing errors and the command-line edge that reports them.

A mistake a user can make (a missing file, an unknown header, a bad setting, a server that is
down) raises ``UserError`` with one sentence that names what and where. The CLI edge
(``models.core.cli``) prints that sentence to stderr and exits with code 2; no traceback reaches the user.
"""

from __future__ import annotations

import logging

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
