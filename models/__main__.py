"""``python -m models COMMAND``: see ``models.cli``."""

from models.cli import main

raise SystemExit(main())
