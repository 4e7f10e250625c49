"""Small file helpers shared by the stages: JSON written atomically so a crash never leaves half a file,
and NumPy scalars turned into plain values for JSON and YAML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def write_json(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def plain_value(value: Any) -> Any:
    """A NumPy scalar as the Python value JSON and YAML write (and read back) as the same thing."""
    return value.item() if isinstance(value, np.generic) else value
