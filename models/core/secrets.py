"""Masking secrets in anything shown to a person: a URL's password, a ``--secret=...`` argument.

Every error, log line, MLflow tag and report that may hold a URI or a command line passes through
here, so a tracking URI with ``user:password@`` or an ``--api-token`` never reaches a screen or a file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_URL_PASSWORD = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@:\s]*):[^/@\s]*@")
_SECRET_FLAG = re.compile(r"(?i)^(--?[\w-]*(secret|password|token|key)[\w-]*=).+$")
_SECRET_OPTION = re.compile(r"(?i)^--?[\w-]*(secret|password|token|key)[\w-]*$")


def mask_secrets(arg: str) -> str:
    """One command-line argument with a URL password or a ``--secret=...`` value replaced by ***."""
    arg = _URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", arg)
    return _SECRET_FLAG.sub(r"\g<1>***", arg)


def mask_arguments(argv: Sequence[str]) -> list[str]:
    """Every argument masked, and the value after a bare ``--api-token``-like option replaced by ***."""
    masked: list[str] = []
    for previous, arg in zip(["", *argv], argv, strict=False):
        masked.append("***" if _SECRET_OPTION.match(str(previous)) else mask_secrets(str(arg)))
    return masked
