"""One rich console for the project's human-facing output (stderr keeps stdout clean for data)."""

from __future__ import annotations

from rich.console import Console

console = Console(stderr=True, highlight=False)
