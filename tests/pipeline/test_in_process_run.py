"""`mlops run` runs the stages in its own process; the result must be what `dvc repro` records."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable

import pytest
import yaml

from tests.conftest import Project

pytestmark = pytest.mark.slow


def lock_hashes(project: Project, stage: str) -> dict[str, str]:
    lock = yaml.safe_load(project.read("dvc.lock"))
    return {out["path"]: out["md5"] for out in lock["stages"][stage].get("outs", [])}


def test_in_process_run_matches_a_process_per_stage(make_project: Callable[..., Project]) -> None:
    project = make_project()
    project.mlops("run", "--no-register")
    in_process = json.loads(project.read("reports/metrics.json"))
    recorded = yaml.safe_load(project.read("dvc.lock"))["stages"]
    outputs = {stage: lock_hashes(project, stage) for stage in recorded}
    status = project.run("dvc", "status")
    assert "up to date" in status.stdout, status.stdout  # dvc.lock records every stage as run

    # Every stage again, each as its own `python` process, as `dvc repro` runs them (without the
    # lock file and the run-cache, nothing is skipped or restored).
    (project.root / "dvc.lock").unlink()
    shutil.rmtree(project.root / ".dvc" / "cache" / "runs")
    rerun = project.mlops("run", "--no-register", "--isolated")
    assert (rerun.stdout + rerun.stderr).count("Running stage") >= 6

    isolated = json.loads(project.read("reports/metrics.json"))
    assert isolated["best_model"] == in_process["best_model"]
    assert isolated["test"] == in_process["test"]
    assert {m: s["test"] for m, s in isolated["models"].items()} == {
        m: s["test"] for m, s in in_process["models"].items()
    }
    # Every output byte for byte (split files, models, metrics, plots, log_run's receipt), so a
    # rerun reproduces the hashes dvc.lock records; only the MLflow run (its id) is new.
    for stage, hashes in outputs.items():
        assert lock_hashes(project, stage) == hashes, stage
    assert any(stage.startswith("train@") for stage in outputs) and "log_run" in outputs
