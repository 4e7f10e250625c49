"""One rich console for the project's human-facing output (stderr keeps stdout clean for data)."""

from __future__ import annotations

import sys

from rich.console import Console

# Logs and CI have no terminal width: 120 columns keeps the models table readable there.
console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120)
