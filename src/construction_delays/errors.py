"""Errors caused by the user's input (config, data, model files), reported without a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
EXIT_USER_ERROR = 2


class ProjectError(Exception):
    """Base class: the message alone tells the user what to fix and where."""


def reported(func: F) -> F:
    """Run ``func``; a :class:`ProjectError` becomes a red message on stderr and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ProjectError as error:
            from construction_delays.console import console

            console.print(f"[bold red]error:[/] {error}", soft_wrap=True)
            sys.exit(EXIT_USER_ERROR)

    return wrapper  # type: ignore[return-value]
