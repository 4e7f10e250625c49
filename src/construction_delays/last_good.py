"""Put the last good pipeline state back after a failed run.

DVC records each stage in dvc.lock as soon as it succeeds. A run that fails at the third model
would leave the first two models retrained on the new data next to the metrics, plots and MLflow
receipt of the old ones, and dvc.lock describing that mix. So `mlops run` saves dvc.lock and the
outputs DVC does not cache (metrics, plot data, reports) before reproducing; after a failure it
puts them back and `dvc checkout` restores the cached outputs (split, models, figures) of the
restored dvc.lock from the cache, which keeps every version.

The run's data validation report is the exception: it describes the data now in ``data/``, and
when validation is what failed, it is the list of problems the user (and the PR report) needs.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml

try:  # libyaml's parser when PyYAML was built with it
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader  # type: ignore[assignment]

PIPELINE_FILE, LOCK_FILE = "dvc.yaml", "dvc.lock"
TEMPLATE = re.compile(r"\$\{[^}]*\}")


def uncached_outputs(root: Path) -> list[str]:
    """Paths (relative to ``root``) of every stage output declared with ``cache: false``.

    Read from dvc.yaml directly (DVC's own index costs ~0.2-0.5 s per run): a templated path of a
    ``foreach``/``matrix`` stage is matched against what dvc.lock records for that stage's items.
    """
    pipeline = yaml.load((root / PIPELINE_FILE).read_text(encoding="utf-8"), Loader=SafeLoader)
    lock_file = root / LOCK_FILE
    lock = yaml.load(lock_file.read_bytes(), Loader=SafeLoader) if lock_file.is_file() else None
    locked: dict[str, list[str]] = {}
    stages = lock.get("stages") if isinstance(lock, dict) else None
    for name, stage in (stages if isinstance(stages, dict) else {}).items():
        paths = [out["path"] for out in stage.get("outs") or [] if isinstance(out, dict)]
        locked.setdefault(name.split("@")[0], []).extend(paths)
    found: list[str] = []
    for name, stage in ((pipeline or {}).get("stages") or {}).items():
        body = stage.get("do", stage)
        for kind in ("outs", "metrics", "plots"):
            for entry in body.get(kind) or []:
                if not isinstance(entry, dict):
                    continue
                for path, options in entry.items():
                    if not (isinstance(options, dict) and options.get("cache") is False):
                        continue
                    pattern = TEMPLATE.sub("*", path)
                    if pattern == path:
                        found.append(path)
                    else:
                        found += [p for p in locked.get(name, []) if fnmatch.fnmatch(p, pattern)]
    return found


class LastGoodState:
    """A snapshot of dvc.lock and the uncached outputs, to restore after a failed run."""

    def __init__(self, root: Path, keep: Iterable[str] = ("reports/validation.json",)) -> None:
        self.root = root
        self.keep = set(keep)
        self._saved: Path | None = None
        self._paths: list[str] = []

    def save(self) -> None:
        self._saved = Path(tempfile.mkdtemp(prefix="mlops-last-good-"))
        self._paths = [LOCK_FILE, *(p for p in uncached_outputs(self.root) if p not in self.keep)]
        for relative in self._paths:
            source = self.root / relative
            if source.is_dir():
                shutil.copytree(source, self._saved / relative)
            elif source.is_file():
                (self._saved / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, self._saved / relative)

    def restore(self, checkout: Callable[[], object]) -> None:
        """Put every saved path back (removing what did not exist), then ``checkout()`` (``dvc
        checkout``) brings the cached outputs in line with the restored dvc.lock."""
        if self._saved is None:
            return
        for relative in self._paths:
            current, saved = self.root / relative, self._saved / relative
            if current.is_dir():
                shutil.rmtree(current)
            else:
                current.unlink(missing_ok=True)
            if saved.is_dir():
                shutil.copytree(saved, current)
            elif saved.is_file():
                current.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(saved, current)
        checkout()

    def discard(self) -> None:
        if self._saved is not None:
            shutil.rmtree(self._saved, ignore_errors=True)
            self._saved = None
