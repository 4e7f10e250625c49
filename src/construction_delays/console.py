"""One rich console for the project's human-facing output (stderr keeps stdout clean for data)."""

from __future__ import annotations

import sys

from rich.console import Console

# Logs and CI have no terminal width: 120 columns keeps the models table readable there.
console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120)


def stdout_is_terminal() -> bool:
    """Whether a live display on stdout (scikit-learn's progress bars) reaches a person: rich's
    own test, so a pipe or a log says no and TTY_COMPATIBLE / TTY_INTERACTIVE can override it."""
    from rich import get_console

    return get_console().is_interactive
