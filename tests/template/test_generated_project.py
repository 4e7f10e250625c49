"""A generated project stands on its own: in its directory, the README's commands set up its
environment (uv, from the shared cache), pass its lint and fast tests, run its pipeline, and still
pass its fast tests once it has adopted its own data."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import small_zoo
from tests.pipeline.test_adopt_data import wine_export
from tests.template.conftest import GIT_IDENTITY, Render

pytestmark = pytest.mark.slow


def make(project: Path, target: str, *variables: str) -> subprocess.CompletedProcess[str]:
    """`make TARGET [NAME=value...]` in ``project`` as a person would run it: its own uv
    environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "DVC_", "VIRTUAL_ENV", "UV_PROJECT", "PYTEST_"))
    }
    env.update(GIT_IDENTITY)
    uv = shutil.which("uv")  # CI's setup-uv puts it on PATH; else the Makefile installs one
    args = ["make", "--no-print-directory", target, *variables, *([f"UV={uv}"] if uv else [])]
    return subprocess.run(args, cwd=project, env=env, text=True, capture_output=True, check=False)


def quick_params(project: Path, task: str) -> None:
    """Two small models and 3 folds; the data stays the tracked 5000-row sample (data.dvc)."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["models"] = small_zoo(task)
    params["cv"]["folds"] = 3
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def assert_ran(project: Path, registered: str, metric: str) -> None:
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert metrics["selection_metric"] == metric
    run = json.loads((project / "reports/mlflow_run.json").read_text())
    assert registered in json.dumps(run) or (project / "mlflow.db").is_file()
    assert (project / "dvc.lock").is_file()


def test_classification_project_passes_its_fast_tests_and_runs(render: Render) -> None:
    started = time.monotonic()
    # A long name, and a module that sorts after "tests": formatting and import order still hold.
    project = render(
        project_name="Schedule Watch for Long Programmes of Works", module_name="watch"
    )
    model = "schedule-watch-for-long-programmes-of-works-classifier"

    lint = make(project, "lint")
    assert lint.returncode == 0, lint.stdout[-4000:] + lint.stderr[-4000:]
    tests = make(project, "test-fast")
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-4000:]
    quick_params(project, "classification")
    run = make(project, "run")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert f"{model} version 1 @challenger" in " ".join(run.stderr.split())
    assert_ran(project, model, "f1")

    # The team brings its own data: the unit tests test the library on the sample, not on it.
    wine = wine_export(project.parent / "wine.csv")
    adopt = make(project, "adopt", f"ADOPT_FILE={wine}", "ADOPT_TARGET=cultivar")
    assert adopt.returncode == 0, adopt.stdout[-4000:] + adopt.stderr[-4000:]
    again = make(project, "test-fast")
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    print(f"classification project: {time.monotonic() - started:.0f}s")


# The template's unit tests read params.yaml as the classification reference; in a regression
# project these fail until they are made task-aware. When they pass, delete this set.
KNOWN_REGRESSION_FAILURES: set[str] = set()


def test_regression_project_runs_its_pipeline(render: Render) -> None:
    started = time.monotonic()
    project = render(project_name="Overrun Days", task_type="regression", data_path="data/acts.csv")

    tests = make(project, "test-fast")
    failing = set(re.findall(r"^(?:FAILED|ERROR) (tests/[\w/]+\.py)::", tests.stdout, re.MULTILINE))
    if KNOWN_REGRESSION_FAILURES:
        assert tests.returncode != 0, "the regression project's tests pass: empty the known set"
        assert failing <= KNOWN_REGRESSION_FAILURES, tests.stdout[-4000:]
    else:
        assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-4000:]

    quick_params(project, "regression")
    run = make(project, "run")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "overrun-days-regressor version 1 @challenger" in " ".join(run.stderr.split())
    assert_ran(project, "overrun-days-regressor", "rmse")
    print(f"regression project: {time.monotonic() - started:.0f}s")
