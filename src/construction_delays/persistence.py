"""Saving and loading models with skops, which rebuilds objects without running pickled code.

Loading trusts only *classes* defined by the numerical stack the project depends on (see
``TRUSTED_MODULE_ROOTS``); anything else in a file (a function, a type from another package) is
refused with the list of offending types, so a tampered model file cannot execute code.

Saving is reproducible: the same model gives the same bytes (see :func:`canonical_skops`), so a
train stage that reruns on unchanged inputs reproduces the hash dvc.lock records.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from construction_delays.errors import ProjectError

TRUSTED_MODULE_ROOTS = ("sklearn", "numpy", "scipy")
SCHEMA_ENTRY = "schema.json"
# The earliest time a zip entry can carry; any fixed stamp would do.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


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


def canonical_skops(data: bytes) -> bytes:
    """The same skops file with everything that varies between equal models taken out.

    skops names each array's zip entry after the array's memory address (``id()``; a random UUID
    for raw bytes) and stamps every entry with the current time, so two saves of one model differ.
    Its schema also records every object's ``id()`` (``__id__``, so shared references load as one
    object), and structured arrays carry uninitialised padding. Here the entries keep their order
    but are renamed by position (``0.npy``, ``1.npy``, ...), identities are numbered in order of
    appearance, ``schema.json`` refers to both, padding is zeroed and every stamp is
    :data:`ZIP_EPOCH`. What loads is unchanged; only the bytes become a function of the model.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        entries = source.infolist()
        renamed = {
            entry.filename: f"{index}{Path(entry.filename).suffix}"
            for index, entry in enumerate(e for e in entries if e.filename != SCHEMA_ENTRY)
        }
        schema = _renumbered_schema(source.read(SCHEMA_ENTRY), renamed)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as target:
            for entry in entries:
                if entry.filename == SCHEMA_ENTRY:
                    # Compact: json's C encoder (skops' indent=2 runs the slow Python one).
                    content = json.dumps(schema, separators=(",", ":")).encode("utf-8")
                else:
                    content = _zeroed_padding(source.read(entry))
                stamped = zipfile.ZipInfo(renamed.get(entry.filename, entry.filename), ZIP_EPOCH)
                stamped.compress_type = entry.compress_type
                stamped.create_system = 3  # Unix, not the saving platform's default
                stamped.external_attr = 0o644 << 16
                target.writestr(stamped, content)
    return buffer.getvalue()


def _zeroed_padding(content: bytes) -> bytes:
    """An ``.npy`` entry of a structured array with its padding bytes zeroed.

    A structured dtype may be wider than its fields (a tree's nodes: 57 bytes of fields in 64), and
    the gaps hold whatever memory held before, so equal trees can differ in those bytes.
    """
    import numpy as np
    from numpy.lib import format as npy

    if not content.startswith(b"\x93NUMPY") or b"'descr': [" not in content[:512]:
        return content  # not a structured array: every byte is data
    stream = io.BytesIO(content)
    version = npy.read_magic(stream)
    read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    _, _, dtype = read_header(stream)
    padding = np.ones(dtype.itemsize, dtype=bool)
    for field_dtype, offset, *_ in (dtype.fields or {}).values():
        padding[offset : offset + field_dtype.itemsize] = False
    if not padding.any():
        return content
    start = stream.tell()  # records follow the header, each dtype.itemsize bytes, in any order
    records = np.frombuffer(content, dtype=np.uint8, offset=start).reshape(-1, dtype.itemsize)
    records = records.copy()
    records[:, padding] = 0
    return content[:start] + records.tobytes()


def _renumbered_schema(schema: bytes, files: dict[str, str]) -> Any:
    """A skops ``schema.json`` parsed with its per-process identities replaced by ones that depend
    only on the model: entry names through ``files``, each ``__id__`` by order of appearance."""
    ids: dict[int, int] = {}

    def renumber(node: dict[str, Any]) -> dict[str, Any]:  # every object, innermost first
        if isinstance(file := node.get("file"), str):
            node["file"] = files.get(file, file)
        if isinstance(saved_id := node.get("__id__"), int):
            # Equal ids stay equal: they mark one object referenced from several places.
            node["__id__"] = ids.setdefault(saved_id, len(ids))
        return node

    return json.loads(schema, object_hook=renumber)


def save_model(model: Any, path: Path) -> Path:
    import skops.io as sio

    path.parent.mkdir(parents=True, exist_ok=True)
    data = canonical_skops(sio.dumps(model))
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


def file_sha256(path: Path) -> str:
    return _digest(path.read_bytes())


def model_trusted_types(model: Any) -> list[str]:
    """Types MLflow must be told to trust when it saves ``model`` with skops."""
    import skops.io as sio

    return trusted_types_for(sio.get_untrusted_types(data=sio.dumps(model)), "model")
