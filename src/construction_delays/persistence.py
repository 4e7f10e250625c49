"""Saving and loading models with skops, which rebuilds objects without running pickled code.

Loading trusts only *classes* defined by the numerical stack the project depends on (see
``TRUSTED_MODULE_ROOTS``); anything else in a file (a function, a type from another package) is
refused with the list of offending types, so a tampered model file cannot execute code.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from construction_delays.errors import ProjectError

TRUSTED_MODULE_ROOTS = ("sklearn", "numpy", "scipy")


class UntrustedModelError(ProjectError, ValueError):
    pass


def _is_trusted_class(type_name: str) -> bool:
    module_name, _, attribute = type_name.rpartition(".")
    if module_name.split(".")[0] not in TRUSTED_MODULE_ROOTS:
        return False
    try:
        candidate = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):
        return False
    return isinstance(candidate, type)


def trusted_types_for(untrusted: list[str], source: str) -> list[str]:
    """Return ``untrusted`` if every entry is an allowed class, else raise naming the rest."""
    refused = [name for name in untrusted if not _is_trusted_class(name)]
    if refused:
        raise UntrustedModelError(
            f"{source}: refusing to load types outside {TRUSTED_MODULE_ROOTS}: {refused}"
        )
    return untrusted


def save_model(model: Any, path: Path) -> Path:
    import skops.io as sio

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sio.dump(model, tmp)
    tmp.replace(path)  # atomic: a crash never leaves a half-written model behind
    return path


def load_model(path: Path) -> Any:
    import skops.io as sio

    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found (run `dvc repro` or `mlops run`)")
    trusted = trusted_types_for(sio.get_untrusted_types(file=path), str(path))
    return sio.load(path, trusted=trusted)


def model_trusted_types(model: Any) -> list[str]:
    """Types MLflow must be told to trust when it saves ``model`` with skops."""
    import skops.io as sio

    return trusted_types_for(sio.get_untrusted_types(data=sio.dumps(model)), "model")
