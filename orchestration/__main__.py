"""``python -m orchestration COMMAND``: see ``orchestration.cli``."""

from orchestration.cli import main

raise SystemExit(main())
