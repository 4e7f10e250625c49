"""`mlops data adopt` in a real project: one command from someone's table to a pipeline that runs.

The tables are scikit-learn's bundled datasets (nothing is downloaded), given the columns real
exports have: an identifier, dates, a constant, missing values, names with spaces.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_diabetes, load_wine

from construction_delays.config import parse_params
from construction_delays.model_zoos import MODEL_ZOOS
from construction_delays.scoring import columns_from_records, load_scorer

from tests.conftest import ROOT, Project

pytestmark = pytest.mark.slow


def wine_export(path: Path) -> Path:
    frame = load_wine(as_frame=True).frame.rename(columns=lambda c: c.replace("_", " "))
    frame.insert(0, "Lot ID", np.arange(1000, 1000 + len(frame)))
    frame["cultivar"] = frame.pop("target").map({0: "barolo", 1: "grignolino", 2: "barbera"})
    frame["alcohol band"] = pd.cut(frame["alcohol"], 3, labels=["low", "mid", "high"]).astype(str)
    frame["tasted on"] = pd.date_range("2025-01-01", periods=len(frame)).astype(str)
    frame["cellar"] = "north"
    frame.loc[::9, "malic acid"] = np.nan
    frame.to_csv(path, index=False)
    return path


def snapshot(project: Project) -> dict[str, bytes]:
    files = [project.root / "params.yaml", project.root / "data.dvc"]
    files += sorted((project.root / "data").iterdir())
    return {str(f.relative_to(project.root)): f.read_bytes() for f in files}


def test_adopting_a_multiclass_export_then_running_the_pipeline(make_project, tmp_path) -> None:
    project = make_project()
    sample = project.params["data"]["path"]
    export = wine_export(tmp_path / "wine export.csv")
    smoke = project.root / "deploy" / "smoke" / "request.json"
    smoke.parent.mkdir(parents=True)
    shutil.copy2(ROOT / "deploy" / "smoke" / "request.json", smoke)

    result = project.mlops("data", "adopt", str(export), "--target", "cultivar", "--drop", "ash")

    params = project.params
    data = params["data"]
    assert data["path"] == "data/wine export.csv" and data["task"] == "classification"
    assert "positive_class" not in data and data["sample"] is None  # three classes
    assert data["categorical_features"] == ["alcohol band"]
    assert "malic acid" in data["numeric_features"]
    left_out = {"Lot ID", "tasted on", "cellar", "ash"}
    assert not left_out & set(data["numeric_features"] + data["categorical_features"])
    assert params["models"] == project.params["models"]  # same task: the zoo is kept
    assert (project.root / "data/wine export.csv").read_bytes() == export.read_bytes()
    assert not (project.root / sample).exists()  # the generated sample it replaces
    for reason in ("an identifier", "dates", "constant", "as requested (--drop)"):
        assert reason in result.stdout + result.stderr
    # data.dvc records exactly the new file: DVC sees nothing to commit.
    assert "up to date" in project.run("dvc", "status", "data.dvc").stdout
    output = " ".join((result.stdout + result.stderr).split())
    assert (
        "then commit params.yaml, deploy/smoke/request.json, data.dvc, dvc.lock and reports/"
        in output
    )
    assert "set a DVC remote (`dvc remote add -d ...`), `dvc push`" in output

    project.mlops("check")
    project.mlops("run")
    metrics = json.loads(project.read("reports/metrics.json"))
    assert metrics["test"]["f1"] > 0.8
    confusion = json.loads(project.read("reports/plots/confusion_matrix.json"))
    assert {row["actual"] for row in confusion} == {"barolo", "grignolino", "barbera"}

    # The deployment smoke test's request now holds rows of the new features, and the model takes it.
    records = json.loads(smoke.read_text())["records"]
    assert len(records) == 2 and set(records[0]) == set(data["numeric_features"]) | {"alcohol band"}
    scorer = load_scorer(
        str(project.root / "outputs" / "models" / metrics["best_model"]),
        project.root,
        parse_params(project.params),
    )
    predicted = scorer.predictor.predict(columns_from_records(records, scorer.schema))
    assert set(predicted.labels) <= {"barolo", "grignolino", "barbera"}


def test_a_numeric_target_switches_the_project_to_regression(make_project, tmp_path) -> None:
    project = make_project()
    frame = load_diabetes(as_frame=True, scaled=False).frame.rename(
        columns={"target": "disease progression", "bmi": "body mass index"}
    )
    frame["sex"] = frame["sex"].map({1.0: "F", 2.0: "M"})
    frame.to_parquet(tmp_path / "diabetes.parquet", index=False)

    # Through make, as the README's table shows it: the values reach `mlops` as environment.
    project.run(
        "make",
        "--no-print-directory",
        "adopt",
        "RUN=",
        f"UV={shutil.which('true')}",
        f"ADOPT_FILE={tmp_path / 'diabetes.parquet'}",
        "ADOPT_TARGET=disease progression",
    )

    params = project.params
    assert params["data"]["task"] == "regression" and params["data"]["categorical_features"] == [
        "sex"
    ]
    assert params["models"] == yaml.safe_load(MODEL_ZOOS["regression"])["models"]
    assert params["evaluate"]["metric"] == "r2"
    assert params["gates"]["metrics"] == {} and params["gates"]["max_regression"] == {"r2": 0.03}
    assert params["monitoring"]["max_metric_drop"] == {"r2": 0.05}
    checked = project.mlops("check")
    assert "442 rows valid" in checked.stdout + checked.stderr


def test_bad_input_changes_nothing(make_project, tmp_path) -> None:
    project = make_project()
    before = snapshot(project)
    export = wine_export(tmp_path / "wine.csv")

    typo = project.mlops("data", "adopt", str(export), "--target", "Cultivar", check=False)
    assert typo.returncode == 2
    assert "--target 'Cultivar' is not a column (did you mean 'cultivar'?)" in typo.stderr
    assert "its 18 columns: 'Lot ID', 'alcohol'" in typo.stderr

    frame = pd.read_csv(export)
    frame.loc[[3, 7], "cultivar"] = np.nan
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    gaps = project.mlops("data", "adopt", str(tmp_path / "gaps.csv"), "-t", "cultivar", check=False)
    assert gaps.returncode == 2
    assert "target 'cultivar' is missing in 2 row(s) (rows [3, 7]" in gaps.stderr

    dry = project.mlops("data", "adopt", str(export), "-t", "cultivar", "--dry-run")
    assert "dry run: nothing changed" in dry.stdout + dry.stderr
    assert snapshot(project) == before
