"""The reference project end to end: real DVC pipeline, real git repo, real MLflow SQLite store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.code.test_alerting import REPO, TOKEN, IssuesApi
from tests.code.test_alerting import api as api  # the fixture: a loopback issues API
from tests.conftest import MODEL, ROOT, Project
from tests.workflows.steps import commands, run_steps

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
    version = client.get_model_version_by_alias(MODEL, "challenger")
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
    children = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert {child.data.tags["model"] for child in children} == set(metrics["models"])
    for child in children:  # the train stages' times, kept out of the DVC outputs
        assert child.data.metrics["fit_seconds"] > 0, child.data.tags["model"]


def test_run_prints_no_warnings(trained_project: Project) -> None:
    """A newcomer's first run should not show warnings to puzzle over (e.g. MLflow's complaint
    that uv's environment has no pip)."""
    output = trained_project.first_run_output
    assert "Running stage 'log_run'" in output
    for word in ("warning", "traceback", "deprecat"):
        assert word not in output.lower(), output


def test_a_fresh_clone_with_a_dvc_remote_pulls_instead_of_retraining(
    trained_project: Project, tmp_path: Path
) -> None:
    """A second machine with the team's DVC remote restores the committed models, not retrains."""
    remote = tmp_path / "remote"
    shutil.copytree(trained_project.root / ".dvc" / "cache", remote)  # a local remote's layout
    clone = Project(tmp_path / "clone")
    trained_project.run("git", "clone", "-q", str(trained_project.root), str(clone.root))
    clone.run("dvc", "remote", "add", "-d", "team", str(remote))

    result = clone.mlops("run", "--no-register")

    output = result.stdout + result.stderr
    assert "pulled from the DVC remote" in output
    assert "missing pipeline output(s) pulled from the DVC remote" in output
    for stage in ("split", "train@", "evaluate", "behaviour"):  # log_run: this machine's store
        assert f"Running stage '{stage}" not in output
    assert clone.read("reports/metrics.json") == trained_project.read("reports/metrics.json")


def test_registered_model_predicts_a_csv_as_the_readme_shows(trained_project: Project) -> None:
    """README, Serving, "From Python, with MLflow alone": a CSV read with pandas (integer columns
    as int64) and cast as shown predicts exactly what the pipeline's own model file does."""
    import mlflow.pyfunc

    from construction_delays.persistence import load_model

    root = trained_project.root
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@challenger")
    frame = pd.read_csv(
        root / "data/construction_activities.csv", dtype={"Activity Type": str, "Site Region": str}
    ).head(300)
    assert "int64" in set(frame.dtypes.astype(str))  # what the cast is for

    numeric = [c.name for c in model.metadata.get_input_schema().inputs if c.type.name == "double"]
    predictions = model.predict(frame.astype(dict.fromkeys(numeric, "float64")))

    best = json.loads(trained_project.read("reports/mlflow_run.json"))["best_model"]
    pipeline = load_model(root / "outputs/models" / best / "model.skops")
    features = model.metadata.get_input_schema().input_names()
    assert list(predictions) == list(pipeline.predict(frame[features]))
    assert set(predictions) <= {"Delayed", "On Schedule"}


def test_second_run_changes_nothing(trained_project: Project) -> None:
    before = trained_project.read("reports/metrics.json")
    result = trained_project.mlops("run")
    assert "Running stage" not in result.stdout + result.stderr
    assert "already registered" in result.stderr
    assert "differ from the last commit" not in result.stdout + result.stderr  # all committed
    assert trained_project.read("reports/metrics.json") == before
    versions = registry_client(trained_project).search_model_versions(f"name = '{MODEL}'")
    assert len(versions) == 1


def write_batch(project: Project, name: str, seed: int, shift: bool = False) -> str:
    from construction_delays.sample_data import generate

    frame = generate(600, seed=seed)
    if shift:
        frame["Weather Delay Days"] = frame["Weather Delay Days"] + 5
        frame["Material Delivery Delay (days)"] = frame["Material Delivery Delay (days)"] * 4
        frame.loc[frame.index[:300], "Activity Type"] = "Demolition"
    path = project.root / "incoming" / name
    path.parent.mkdir(exist_ok=True)
    frame.to_csv(path, index=False)
    return str(path.relative_to(project.root))


def test_reference_profile_is_committed_and_logged_with_the_model(trained_project: Project) -> None:
    profile = json.loads(trained_project.read("reports/reference_profile.json"))
    metrics = json.loads(trained_project.read("reports/metrics.json"))
    assert profile["model"] == metrics["best_model"]
    assert profile["test_metrics"] == metrics["test"]
    assert profile["rows"] == len(
        pd.read_parquet(trained_project.root / "outputs/split/train.parquet")
    )
    tracked = trained_project.run("git", "ls-files", "reports/reference_profile.json").stdout
    assert tracked.strip() == "reports/reference_profile.json"  # in git, next to the metrics

    client = registry_client(trained_project)
    version = client.get_model_version_by_alias(MODEL, "challenger")
    logged = {a.path for a in client.list_artifacts(version.run_id, "reports")}
    assert "reports/reference_profile.json" in logged


def test_monitor_passes_like_data_and_alerts_on_drift(trained_project: Project) -> None:
    like = write_batch(trained_project, "like.csv", seed=101)
    result = trained_project.mlops("monitor", "--input", like, "--out", "monitoring/like")
    report = json.loads(trained_project.read("monitoring/like/drift.json"))
    assert report["verdict"] in {"ok", "warning"}, result.stderr
    # The batch has labels: every test metric is recomputed, f1 and roc_auc have a tolerance.
    assert {m["metric"] for m in report["metrics"]} == set(
        json.loads(trained_project.read("reports/metrics.json"))["test"]
    )
    assert {m["metric"] for m in report["metrics"] if m["allowed_drop"]} == {"f1", "roc_auc"}
    assert trained_project.read("monitoring/like/drift.png").startswith(b"\x89PNG")

    shifted = write_batch(trained_project, "shifted.csv", seed=102, shift=True)
    result = trained_project.mlops(
        "monitor", "--input", shifted, "--out", "monitoring/shifted", check=False
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(trained_project.read("monitoring/shifted/drift.json"))
    assert report["verdict"] == "drift"
    assert set(report["drifted_features"]) >= {
        "Weather Delay Days",
        "Material Delivery Delay (days)",
        "Activity Type",
    }
    assert "drift" in result.stderr and "Weather Delay Days" in result.stderr  # rich: stderr
    no_fail = trained_project.mlops(
        "monitor", "--input", shifted, "--no-fail", "--out", "monitoring/nf"
    )
    assert no_fail.returncode == 0


def test_monitor_uses_the_registered_versions_own_profile(trained_project: Project) -> None:
    like = write_batch(trained_project, "like-registry.csv", seed=103)
    result = trained_project.mlops(
        "monitor",
        "--input",
        like,
        "--model",
        f"models:/{MODEL}@challenger",
        "--out",
        "monitoring/registry",
    )
    report = json.loads(trained_project.read("monitoring/registry/drift.json"))
    assert report["reference"]["profile"].startswith(
        f"models:/{MODEL}@challenger (version 1, run "
    ), result.stdout
    assert any(c["group"] == "prediction" for c in report["checks"])


def test_the_monitor_workflow_runs_here(trained_project: Project, api: IssuesApi) -> None:
    """The scheduled workflow's commands, as it runs them: the input reaches `mlops` through the
    environment, the report goes to the job summary, drift fails the step, and `make alert` opens
    the model-drift issue from what the monitor wrote."""
    workflow = ROOT / ".github" / "workflows" / "monitor.yml"
    lines = [line for script in run_steps(workflow, "drift") for line in commands(script)]
    made = [line for line in lines if line.startswith("make ")]
    assert made == ["make setup", "make monitor", "make alert"]

    summary = trained_project.root / "step-summary.md"
    shifted = write_batch(trained_project, "workflow-shifted.csv", seed=104, shift=True)
    result = trained_project.run(
        "make",
        "--no-print-directory",
        "monitor",
        "RUN=",
        f"UV={shutil.which('true')}",
        f"MONITOR_INPUT={shifted}",
        f"GITHUB_STEP_SUMMARY={summary}",
        check=False,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert summary.read_text(encoding="utf-8").startswith("## Drift monitor: drift ❌")
    github = {"GITHUB_API_URL": api.url, "GITHUB_REPOSITORY": REPO, "GITHUB_TOKEN": TOKEN}
    trained_project.run(
        "make", "--no-print-directory", "alert", "RUN=", f"UV={shutil.which('true')}",
        *(f"{key}={value}" for key, value in github.items()),
    )  # fmt: skip
    issue = api.issues[-1]
    assert issue["title"].startswith("Model drift: ") and issue["labels"] == ["model-drift"]
    assert issue["body"] == (trained_project.root / "monitoring" / "drift_report.md").read_text()
