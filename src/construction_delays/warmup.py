"""Start-up work of the later stages, done in a thread while the grid searches run.

In `mlops run` every stage shares one process (see :mod:`dvc_in_process`). While GridSearchCV runs,
the main thread only waits on its loky workers, so importing what evaluate and log_run need
(matplotlib, MLflow) and opening the local MLflow store (created and migrated on first use,
~1.3 s) costs a share of the CPU there instead of wall time afterwards. Best effort: a failure here
is ignored, the stage that needs the module or the store does the work again and reports any error.

Two threads importing the same packages at once can see each other's half-initialised modules
(scikit-learn's package and ``sklearn.base`` import each other: "cannot import name 'clone' from
partially initialized module"). So the warm-up never overlaps an import of the main thread:
:meth:`Warmup.start` first imports, in the calling thread, everything the train stages will import
(they would a moment later anyway), and :meth:`Warmup.before_stage` joins the thread before any
later stage imports matplotlib or MLflow itself or opens the store the thread may be migrating.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterable
from functools import partial
from pathlib import Path

# Imported by the caller before the thread starts: what every train stage imports.
TRAINING_MODULES = (
    "construction_delays.training",
    "construction_delays.persistence",
    "skops.io",
    "joblib.externals.loky",
    "concurrent.futures.process",
)
# Imported by the thread: what only evaluate and log_run need.
MODULES = (
    "construction_delays.plots",  # selects the headless backend before pyplot loads
    "matplotlib.backends.backend_agg",  # what saving a figure loads
    "mlflow",
    "mlflow.sklearn",
    "mlflow.models",
    "mlflow.pyfunc",  # what logging a model loads
    "git",  # GitPython: MLflow tags each run with the commit
    "construction_delays.tracking",
)


class Warmup:
    """A one-shot background warm-up; :meth:`join` before the process exits."""

    def __init__(self, root: Path, estimators: Iterable[str] = ()) -> None:
        """``estimators``: class paths of the models the train stages will build."""
        self.root = root
        self.estimator_modules = tuple(path.rpartition(".")[0] for path in estimators)
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    def before_stage(self, argv: list[str]) -> None:
        """A :func:`dvc_in_process.repro` hook: start on the first train stage, finish before any
        other stage that follows it."""
        if Path(argv[0]).stem == "train":
            self.start()
        else:
            self.join()

    def start(self) -> None:
        if self._thread is None:
            for module in (*TRAINING_MODULES, *self.estimator_modules):
                with contextlib.suppress(Exception):  # the stage imports it again and reports it
                    importlib.import_module(module)
            self._thread = threading.Thread(target=self._run, name="mlops-warmup")
            self._thread.start()

    def join(self) -> None:
        # Joined, never abandoned: the interpreter must not exit halfway through a store migration.
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        # At normal priority: niced, it got only the cycles the CV workers left idle, often finished
        # after the last train stage, and evaluate waited for it (~0.3 s).
        for step in (
            *(partial(importlib.import_module, m) for m in MODULES),
            self._open_local_store,
            self._map_installed_packages,
        ):
            with contextlib.suppress(Exception):  # best effort, see the module docstring
                step()

    def _open_local_store(self) -> None:
        """Create/migrate the embedded SQLite store; a tracking server is left alone (no network)."""
        from mlflow import MlflowClient

        from construction_delays.tracking import quiet_mlflow, tracking_uri

        uri = tracking_uri(self.root)
        if uri.startswith("sqlite:"):
            # Before the stage that would call it: a new store's "Creating initial MLflow database
            # tables..." lines would land in the middle of the training output.
            quiet_mlflow()
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)

    @staticmethod
    def _map_installed_packages() -> None:
        """MLflow checks a logged model's pinned requirements against the installed packages and
        maps every installed distribution to its modules for that, once per process (~0.2 s)."""
        from mlflow.utils import requirements_utils  # internal: if it moves, log_run pays the 0.2 s

        requirements_utils._init_modules_to_packages_map()
