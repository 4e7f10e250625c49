"""Tracking-store URIs are printed and written without their secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from construction_delays.tracking import redact

from tests.serving.conftest import free_port


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://alice:s3cret@mlflow.example.com:5000", "https://mlflow.example.com:5000"),
        ("postgresql://bob:pw@db/mlflow", "postgresql://db/mlflow"),
        (
            "postgresql://db/mlflow?password=s3cret&sslmode=require",
            "postgresql://db/mlflow?password=***&sslmode=require",
        ),
        (
            "https://mlflow.example.com/?api_key=abc&x=1",
            "https://mlflow.example.com/?api_key=***&x=1",
        ),
        ("sqlite:////work/project/mlflow.db", "sqlite:////work/project/mlflow.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_credentials_and_secret_query_values_are_removed(uri: str, shown: str) -> None:
    assert redact(uri) == shown
    assert "s3cret" not in redact(uri) and "abc" not in redact(uri).split("?")[-1]


def test_a_server_behind_a_proxy_is_not_probed_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the proxy can reach it: a direct connection failing says nothing about the server."""
    from construction_delays.tracking import TrackingStoreError, check_reachable

    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    closed = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(TrackingStoreError, match="not reachable"):
        check_reachable(closed, timeout=2)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    check_reachable(closed, timeout=2)


def test_runs_ended_on_a_tracking_server_print_no_links(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """MLflow prints "🏃 View run ... / 🧪 View experiment ..." for each run it ends on a server."""
    from types import SimpleNamespace

    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    from construction_delays.tracking import quiet_mlflow

    # Recorded by monkeypatch first, so what quiet_mlflow sets is undone after the test.
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "false")
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT")
    client = TrackingServiceClient(f"http://127.0.0.1:{free_port()}")
    run = SimpleNamespace(
        info=SimpleNamespace(experiment_id="1", run_name="pipeline-knn"),
        data=SimpleNamespace(tags={}),
    )
    monkeypatch.setattr(client.store, "get_run", lambda run_id: run)  # no server needed

    quiet_mlflow()
    client._log_url("abc123")

    assert "View run" not in capsys.readouterr().out


def test_the_run_summary_links_the_run_on_a_tracking_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from construction_delays.reporting import print_summary

    metrics = {
        "best_model": "knn",
        "selection_metric": "f1",
        "test_rows": 10,
        "models": {"knn": {"cv": {"f1": 0.5}, "test": {"f1": 0.5}}},
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    info = {"run_id": "abc123", "experiment_id": "7"}
    (tmp_path / "run.json").write_text(json.dumps({**info, "tracking_uri": "http://mlflow:5000/"}))

    print_summary(tmp_path / "metrics.json", tmp_path / "run.json")
    out = capsys.readouterr().err  # the console writes to stderr
    assert "http://mlflow:5000/#/experiments/7/runs/abc123" in out
    assert "make ui" not in out

    (tmp_path / "run.json").write_text(json.dumps({**info, "tracking_uri": "sqlite:///x.db"}))
    print_summary(tmp_path / "metrics.json", tmp_path / "run.json")
    assert "(`make ui` to browse)" in capsys.readouterr().err


def test_logging_a_model_with_integer_features_gives_no_missing_value_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's hint that integer columns cannot be null does not apply: our server and batch
    scoring accept null in every column."""
    import warnings

    import mlflow
    import pandas as pd
    from mlflow.tracking._tracking_service import utils
    from sklearn.linear_model import LogisticRegression

    from construction_delays.tracking import log_model

    features = pd.DataFrame(
        {"alcohol": [12.5, 13.1, 11.9, 14.0], "proline": [1065, 1050, 520, 680]}
    )
    assert features["proline"].dtype.kind == "i"
    model = LogisticRegression().fit(features, [1, 1, 0, 0])
    # MLflow's process-wide store, put back after the test.
    monkeypatch.setattr(utils, "_tracking_uri", f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("t", artifact_location=(tmp_path / "a").as_uri())
    with (
        warnings.catch_warnings(record=True) as caught,
        mlflow.start_run(experiment_id=experiment),
    ):
        warnings.simplefilter("always")
        log_model(model, features, input_example=features.head(2))
    assert not [w for w in caught if "integer column" in str(w.message)]


def test_asking_a_ci_job_s_empty_local_store_about_the_model_creates_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `mlops deploy --from staging --check` and `mlops model-card` ask in a fresh checkout.
    from construction_delays.registry import fetch_version_card, holds_model, verify_version

    from tests.conftest import reference_config

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = reference_config()
    assert holds_model(params, tmp_path) is False
    assert verify_version(params, tmp_path, 3) is False  # nothing to check against
    assert fetch_version_card(params, tmp_path, 3, tmp_path / "card.md") is False
    assert list(tmp_path.iterdir()) == []
