"""Bad input stops with an error naming what is wrong and where, and loses nothing."""

from __future__ import annotations

import copy
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import MODEL, Project, tool_env

pytestmark = pytest.mark.slow

DATA = "data/construction_activities.csv"
REGISTERED = MODEL


def state(project: Project) -> dict[str, Any]:
    """Everything a failed run must leave untouched: dvc.lock, the split, model files, metrics and
    reports (but the validation report of the data now in data/), registry versions/aliases."""
    from mlflow import MlflowClient

    files = [
        project.root / "dvc.lock",
        *sorted((project.root / "outputs" / "split").rglob("*")),
        *sorted((project.root / "outputs" / "models").rglob("*")),
        *sorted(p for p in (project.root / "reports").rglob("*") if p.name != "validation.json"),
    ]
    client = MlflowClient(tracking_uri=f"sqlite:///{project.root / 'mlflow.db'}")
    model = client.get_registered_model(REGISTERED)
    versions = client.search_model_versions(f"name = '{REGISTERED}'")
    return {
        "files": {str(p.relative_to(project.root)): p.read_bytes() for p in files if p.is_file()},
        "versions": sorted(v.version for v in versions),
        "aliases": dict(model.aliases),
    }


@pytest.fixture
def project(trained_project: Project) -> Iterator[Project]:
    """The trained project; params.yaml and the data file are restored after each case."""
    params_bytes = trained_project.read("params.yaml")
    data_bytes = trained_project.read(DATA)
    yield trained_project
    (trained_project.root / "params.yaml").write_bytes(params_bytes)
    (trained_project.root / DATA).write_bytes(data_bytes)


def edit_params(change: Callable[[dict[str, Any]], None]) -> Callable[[Project], None]:
    def apply(project: Project) -> None:
        params = copy.deepcopy(project.params)
        change(params)
        project.write_params(params)

    return apply


def edit_data(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Project], None]:
    def apply(project: Project) -> None:
        path = project.root / DATA
        change(pd.read_csv(path)).to_csv(path, index=False)

    return apply


def set_grid(name: str, grid: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(params: dict[str, Any]) -> None:
        params["models"][name]["grid"] = grid

    return change


def empty_file(project: Project) -> None:
    (project.root / DATA).write_bytes(b"")


def text_in_numeric(frame: pd.DataFrame) -> pd.DataFrame:
    frame["Crew Size"] = frame["Crew Size"].astype(object)
    frame.loc[[3, 7], "Crew Size"] = "twelve"
    return frame


def single_class(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(**{"Schedule Adherence": "On Schedule"})


def model_failing_after_others_retrained(project: Project) -> None:
    """New data retrains the zoo; then a model that cannot take scaled (negative) features fails."""
    edit_data(lambda frame: frame.iloc[:-50])(project)
    naive_bayes = {"estimator": "sklearn.naive_bayes.MultinomialNB", "grid": {"alpha": [1.0]}}
    edit_params(lambda p: p["models"].update(naive_bayes=naive_bayes))(project)


CASES: dict[str, tuple[Callable[[Project], None], list[str]]] = {
    "missing file": (
        edit_params(lambda p: p["data"].update(path="data/nope.csv")),
        ["data/nope.csv", "not found"],
    ),
    "empty file": (empty_file, [DATA, "empty"]),
    "missing target column": (
        edit_data(lambda f: f.drop(columns=["Schedule Adherence"])),
        ["'Schedule Adherence'", "missing from the file"],
    ),
    "missing feature column": (
        edit_data(lambda f: f.drop(columns=["Site Region"])),
        ["'Site Region'", "missing from the file"],
    ),
    "wrong dtype": (edit_data(text_in_numeric), ["'Crew Size'", "twelve", "rows 3, 7"]),
    "single class": (edit_data(single_class), ["'Schedule Adherence'", "at least two classes"]),
    "unknown estimator class": (
        edit_params(
            lambda p: p["models"]["decision_tree"].update(estimator="sklearn.tree.NoSuchTree")
        ),
        ["models.decision_tree.estimator", "NoSuchTree"],
    ),
    "unknown grid parameter": (
        edit_params(set_grid("decision_tree", {"max_dpth": [2]})),
        ["models.decision_tree.grid", "max_dpth"],
    ),
    "invalid grid value": (
        edit_params(set_grid("decision_tree", {"max_depth": [-3]})),
        ["models.decision_tree.grid", "max_depth"],
    ),
    "model failing to fit after others retrained": (
        model_failing_after_others_retrained,
        ["models.naive_bayes", "MultinomialNB", "failed to fit", "Negative values"],
    ),
    "metric that does not fit the task": (
        edit_params(lambda p: p["evaluate"].update(metric="rmse")),
        ["params.yaml", "evaluate.metric", "rmse"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_clearly_and_keeps_last_good_state(project: Project, case: str) -> None:
    corrupt, expected = CASES[case]
    before = state(project)
    corrupt(project)
    result = project.mlops("run", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for fragment in expected:
        assert fragment in output, f"{fragment!r} missing from:\n{output}"
    assert "Traceback" not in output
    assert state(project) == before


def test_a_run_stopped_by_sigterm_keeps_the_last_good_state(project: Project) -> None:
    """CI cancels a job with SIGTERM: the model being retrained is put back, not left empty."""
    before = state(project)
    big_grid = {"max_depth": list(range(2, 22)), "min_samples_leaf": list(range(1, 31))}
    edit_params(set_grid("decision_tree", big_grid))(project)
    process = subprocess.Popen(
        ["mlops", "run"],
        cwd=project.root,
        env={**tool_env(), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:  # the grid search of the retrained model has started
        seen.append(line)
        if line.startswith("Fitting 5 folds for each of 600 candidates"):
            process.send_signal(signal.SIGTERM)
            break
    rest, _ = process.communicate(timeout=120)
    output = "".join(seen) + rest
    assert process.returncode != 0, output
    assert "the last good outputs and dvc.lock are restored" in output
    assert state(project) == before


def test_valid_input_runs_again_after_the_failures(project: Project) -> None:
    result = project.mlops("run")
    assert "already registered" in result.stderr
    assert (project.root / Path("reports/metrics.json")).is_file()
