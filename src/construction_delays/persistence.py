"""Saving and loading models with skops, which rebuilds objects without running pickled code.

Loading trusts only *classes* defined by the numerical stack the project depends on (see
``TRUSTED_MODULE_ROOTS``); anything else in a file (a function, a type from another package) is
refused with the list of offending types, so a tampered model file cannot execute code.
"""

from __future__ import annotations

import hashlib
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


# Models this process saved, by file: `mlops run` runs every stage in one process, and decoding a
# file it has just written (a random forest: ~0.2 s each, twice) gives back the same model. Used only
# while the file's bytes are still exactly the ones written (SHA-256), so nothing is trusted anew.
_saved_here: dict[Path, tuple[str, Any]] = {}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_model(model: Any, path: Path) -> Path:
    import skops.io as sio

    path.parent.mkdir(parents=True, exist_ok=True)
    data = sio.dumps(model)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)  # atomic: a crash never leaves a half-written model behind
    _saved_here[path.resolve()] = (_digest(data), model)
    return path


def load_model(path: Path) -> Any:
    import skops.io as sio

    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found (run `dvc repro` or `mlops run`)")
    data = path.read_bytes()
    saved = _saved_here.get(path.resolve())
    if saved is not None and saved[0] == _digest(data):
        return saved[1]
    trusted = trusted_types_for(sio.get_untrusted_types(data=data), str(path))
    return sio.loads(data, trusted=trusted)


def model_trusted_types(model: Any) -> list[str]:
    """Types MLflow must be told to trust when it saves ``model`` with skops."""
    import skops.io as sio

    return trusted_types_for(sio.get_untrusted_types(data=sio.dumps(model)), "model")
