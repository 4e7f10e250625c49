"""Errors caused by the user's input (config, data, model files), reported without a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
EXIT_USER_ERROR = 2


EXIT_CHECK_FAILED = 1  # a check ran and said no (quality gates), as `mlops monitor` on drift


class ProjectError(Exception):
    """Base class: the message alone tells the user what to fix and where."""

    exit_code = EXIT_USER_ERROR


def reported(func: F) -> F:
    """Run ``func``; a :class:`ProjectError` becomes a red message on stderr and its exit code
    (2, a user's mistake, unless the error class says otherwise)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ProjectError as error:
            from construction_delays.console import console

            console.print(f"[bold red]error:[/] {error}", soft_wrap=True)
            sys.exit(error.exit_code)

    return wrapper  # type: ignore[return-value]
