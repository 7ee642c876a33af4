"""One line of ``make doctor``: what was checked, whether it passed, and how to fix it (shared by
``stack.doctor`` and ``stack.doctor_prefect``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """The outcome of one check: what was looked at, whether it passed, and how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"ok    {self.name:36} {self.detail}"
        return f"FAIL  {self.name:36} {self.detail} -> fix: {self.fix}"
