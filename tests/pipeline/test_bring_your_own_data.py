"""Swapping in another dataset needs only params.yaml (and the data file).

The datasets ship inside scikit-learn (nothing is downloaded); they are reshaped to cover what
users bring: multiclass, categorical features, missing values, column names with spaces,
Parquet, and a regression target.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine

from tests.conftest import Project, reference_params, small_zoo

pytestmark = pytest.mark.slow


def with_missing(frame: pd.DataFrame, columns: list[str], share: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    for column in columns:
        frame.loc[rng.random(len(frame)) < share, column] = np.nan
    return frame


def wine_frame() -> pd.DataFrame:
    frame = load_wine(as_frame=True).frame.rename(columns=lambda c: c.replace("_", " "))
    frame["cultivar"] = frame.pop("target").map({0: "barolo", 1: "grignolino", 2: "barbera"})
    frame["alcohol band"] = pd.cut(frame["alcohol"], 3, labels=["low", "mid", "high"]).astype(
        object
    )
    return with_missing(frame, ["malic acid", "color intensity", "alcohol band"], 0.06, seed=1)


def diabetes_frame() -> pd.DataFrame:
    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame = frame.rename(
        columns={"bmi": "body mass index", "bp": "blood pressure", "target": "disease progression"}
    )
    frame["sex"] = frame["sex"].map({1.0: "F", 2.0: "M"})
    return with_missing(frame, ["body mass index", "sex"], 0.04, seed=2)


def own_data_params(data: dict[str, Any], metric: str, task: str) -> dict[str, Any]:
    params = reference_params()
    params["data"] = {"min_rows": 50, "sample": None, **data}
    params["models"] = small_zoo(task)
    params["evaluate"] = {"metric": metric}
    if task == "regression":
        params["gates"] = {
            "metrics": {"r2": 0.2},
            "max_regression": {"rmse": 5.0},
            "data": {"min_rows": 100},
        }
        params["monitoring"]["max_metric_drop"] = {"rmse": 10.0}
    params["mlflow"] = {"experiment": f"byod-{task}", "registered_model": f"byod-{task}-model"}
    # The sample's checks name its columns; a constant prediction is the one baseline every
    # dataset has (in units of the metric: f1 here, days of rmse there).
    params["behaviour"] = {"min_lift": 0.2 if task == "classification" else 5.0}
    return params


def behaviour_checks(project: Project) -> dict[str, dict[str, Any]]:
    report = json.loads(project.read("reports/behaviour.json"))
    return {check["kind"]: check for check in report["checks"]}


def registered_challenger(project: Project, name: str) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project.root / 'mlflow.db'}")
    return int(client.get_model_version_by_alias(name, "challenger").version)


def test_multiclass_with_categoricals_missing_values_and_spaces(make_project) -> None:
    params = own_data_params(
        {
            "path": "data/wine.csv",
            "target": "cultivar",
            "task": "classification",
            "numeric_features": [
                "alcohol",
                "malic acid",
                "color intensity",
                "proline",
                "flavanoids",
                "hue",
            ],
            "categorical_features": ["alcohol band"],
        },
        metric="f1",
        task="classification",
    )
    project = make_project(params, wine_frame(), name="wine")
    project.mlops("check")
    run = project.mlops("run")

    assert "precision, recall, f1: macro averages over the 3 classes" in run.stderr
    metrics = json.loads(project.read("reports/metrics.json"))
    assert set(metrics["test"]) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert metrics["test"]["f1"] > 0.8
    confusion = json.loads(project.read("reports/plots/confusion_matrix.json"))
    assert {row["actual"] for row in confusion} == {"barolo", "grignolino", "barbera"}
    assert not (project.root / "reports/plots/roc.json").exists()  # ROC is for binary targets only
    assert registered_challenger(project, "byod-classification-model") == 1
    baseline = behaviour_checks(project)["baseline"]  # macro F1 of always one class: about 0.18
    assert baseline["passed"] and baseline["measures"]["baseline"] < 0.25


def test_regression_target_from_parquet(make_project) -> None:
    params = own_data_params(
        {
            "path": "data/diabetes.parquet",
            "target": "disease progression",
            "task": "regression",
            "numeric_features": ["age", "body mass index", "blood pressure", "s1", "s3", "s5"],
            "categorical_features": ["sex"],
        },
        metric="rmse",
        task="regression",
    )
    project = make_project(params, diabetes_frame(), name="diabetes")
    project.mlops("run")

    metrics = json.loads(project.read("reports/metrics.json"))
    assert set(metrics["test"]) == {"mae", "rmse", "r2"}
    assert metrics["test"]["r2"] > 0.2
    assert (
        metrics["cv"]["rmse"] > 0
    )  # errors are reported positive, not as sklearn's negated scores
    predictions = json.loads(project.read("reports/plots/predictions.json"))
    assert len(predictions) == metrics["test_rows"]
    importance = json.loads(project.read("reports/plots/feature_importance.json"))
    assert importance and {"feature", "importance", "method"} <= set(importance[0])
    assert (project.root / "reports/figures/predicted_vs_actual.png").is_file()
    assert registered_challenger(project, "byod-regression-model") == 1
    baseline = behaviour_checks(project)["baseline"]
    assert baseline["passed"] and "(mean)" in baseline["value"]
    assert baseline["measures"]["lift"] == round(
        baseline["measures"]["baseline"] - metrics["test"]["rmse"], 4
    )

    # Monitoring works on the same params: a numeric target and predictions, regression metrics.
    shifted = diabetes_frame()
    shifted["body mass index"] = shifted["body mass index"] + 8
    shifted.to_parquet(project.root / "data" / "new-patients.parquet", index=False)
    monitored = project.mlops("monitor", "--input", "data/new-patients.parquet", check=False)
    assert monitored.returncode == 1, monitored.stderr
    report = json.loads(project.read("monitoring/drift.json"))
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["body mass index"]["status"] == "drift"
    assert checks["predicted value"]["kind"] == "numeric"
    assert checks["disease progression"]["group"] == "target"
    assert {m["metric"] for m in report["metrics"]} == {"mae", "rmse", "r2"}


def test_rows_of_one_project_stay_together_and_the_model_never_needs_the_group(
    make_project,
) -> None:
    from construction_delays.sample_data import generate

    params = reference_params()
    frame = generate(rows=params["data"]["sample"]["rows"], seed=5)
    frame["Project ID"] = [f"PRJ-{i % 60:02d}" for i in range(len(frame))]
    params["data"] |= {"group": "Project ID", "sample": None}
    project = make_project(params, frame, name="grouped")
    project.mlops("check")
    run = project.mlops("run")

    train = pd.read_parquet(project.root / "outputs/split/train.parquet")
    test = pd.read_parquet(project.root / "outputs/split/test.parquet")
    assert not set(train["Project ID"]) & set(test["Project ID"])
    assert "whole groups of 'Project ID'" in run.stderr + run.stdout
    metrics = json.loads(project.read("reports/metrics.json"))
    assert metrics["test_rows"] == len(test)

    # The registered model takes the features only: new activities need no project id.
    name = params["mlflow"]["registered_model"]
    new = frame.drop(columns=["Project ID", params["data"]["target"]]).head(25)
    new.to_csv(project.root / "new.csv", index=False)
    project.mlops(
        "score",
        "--input",
        "new.csv",
        "--output",
        "scored.csv",
        "--model",
        f"models:/{name}@challenger",
    )
    assert len(pd.read_csv(project.root / "scored.csv")) == 25
