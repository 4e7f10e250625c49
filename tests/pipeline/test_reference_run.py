"""The reference project end to end: real DVC pipeline, real git repo, real MLflow SQLite store."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import Project

pytestmark = pytest.mark.slow


def registry_client(project: Project):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{project.root / 'mlflow.db'}")


def test_run_writes_metrics_plots_and_registers_challenger(trained_project: Project) -> None:
    metrics = json.loads(trained_project.read("reports/metrics.json"))
    assert metrics["best_model"] in {"logistic_regression", "decision_tree"}
    assert set(metrics["test"]) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert 0.5 < metrics["test"]["roc_auc"] <= 1.0
    for name in (
        "model_comparison",
        "confusion_matrix",
        "roc",
        "precision_recall",
        "feature_importance",
    ):
        assert json.loads(trained_project.read(f"reports/plots/{name}.json")), name
    for name in ("model_comparison", "confusion_matrix", "roc_pr_curves", "feature_importance"):
        assert trained_project.read(f"reports/figures/{name}.png").startswith(b"\x89PNG"), name

    client = registry_client(trained_project)
    version = client.get_model_version_by_alias("construction-delays-classifier", "challenger")
    run = client.get_run(version.run_id)
    head = trained_project.run("git", "rev-parse", "HEAD~1").stdout.strip()
    assert run.data.tags["git.commit"] == head
    assert run.data.tags["dvc.data_md5"].endswith(".dir")
    assert run.data.params["selection_metric"] == "f1"
    assert run.data.metrics["test_f1"] == metrics["test"]["f1"]
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {
        "construction_activities-training",
        "construction_activities-test",
    }


def test_registered_model_loads_and_predicts(trained_project: Project) -> None:
    import mlflow.pyfunc

    mlflow.set_tracking_uri(f"sqlite:///{trained_project.root / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/construction-delays-classifier@challenger")
    rows = pd.read_parquet(trained_project.root / "outputs/split/test.parquet").head(5)
    predictions = model.predict(rows.drop(columns=["Schedule Adherence"]))
    assert set(predictions) <= {"Delayed", "On Schedule"}


def test_second_run_changes_nothing(trained_project: Project) -> None:
    before = trained_project.read("reports/metrics.json")
    result = trained_project.mlops("run")
    assert "Running stage" not in result.stdout + result.stderr
    assert "already registered" in result.stderr
    assert trained_project.read("reports/metrics.json") == before
    versions = registry_client(trained_project).search_model_versions(
        "name = 'construction-delays-classifier'"
    )
    assert len(versions) == 1
