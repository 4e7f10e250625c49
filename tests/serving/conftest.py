"""Fixtures for serving: a small trained model, saved with skops and registered (alias champion) in
a temporary SQLite MLflow store, and real `mlops serve` processes on loopback ports."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from construction_delays.config import ModelSpec
from construction_delays.data import read_table, select_columns, text_columns
from construction_delays.models import build_pipeline
from construction_delays.persistence import save_model
from construction_delays.sample_data import generate
from construction_delays.scoring import FeatureSchema, Predictor, Scorer

from tests.conftest import classification_reference, reference_config, tool_env

REGISTERED = "serving-test-model"
GIT_SHA = "0123456789abcdef0123456789abcdef01234567"
TEST_METRICS = {"test_f1": 0.71, "test_roc_auc": 0.83}
READY_DEADLINE = 120.0


@dataclass
class ServingProject:
    """A project directory with params.yaml, a skops model and an MLflow store holding it."""

    root: Path
    features: pd.DataFrame
    model: Any
    model_file: Path
    tracking_uri: str
    version: int
    run_id: str

    def env(self, **extra: str) -> dict[str, str]:
        env = tool_env()
        env.pop("API_KEY", None)
        env["MLFLOW_TRACKING_URI"] = self.tracking_uri
        env.update(extra)
        return env


def train_small_model(rows: int = 1000) -> tuple[Any, pd.DataFrame, pd.Series]:
    """A random forest in the project's pipeline, fitted on the synthetic sample (about a second)."""
    params = reference_config()
    features, target = select_columns(generate(rows, seed=7), params.data)
    spec = ModelSpec(
        estimator="sklearn.ensemble.RandomForestClassifier",
        params={"n_estimators": 25, "max_depth": 6, "random_state": 0, "n_jobs": 1},
    )
    pipeline, _ = build_pipeline("random_forest", spec, params.data)
    pipeline.fit(features, target)
    return pipeline, features, target


# A table of integer-coded categories: "store_code" 1-5, about 10% missing; class "late" mostly
# for code 3, so a model that fails to recognise the code predicts visibly otherwise.
CODES_DATA = reference_config().data.model_copy(
    update={
        "target": "y",
        "positive_class": "late",
        "numeric_features": ("size",),
        "categorical_features": ("store_code",),
    }
)


def integer_coded_table(rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    codes = pd.array(rng.integers(1, 6, rows), dtype="Int64")
    codes[rng.random(rows) < 0.1] = pd.NA
    size = rng.normal(0, 1, rows)
    late = (codes.fillna(0).to_numpy() == 3) | (size > 1.2)
    return pd.DataFrame({"size": size, "store_code": codes, "y": np.where(late, "late", "ok")})


def train_on_codes(csv_path: Path) -> tuple[Scorer, pd.DataFrame]:
    """A logistic regression trained on the CSV as the pipeline reads it (codes as text), ready
    to score with the fast path; and the features it was trained on."""
    features, target = select_columns(read_table(csv_path, text_columns(CODES_DATA)), CODES_DATA)
    assert set(features["store_code"].dropna()) == {"1", "2", "3", "4", "5"}
    spec = ModelSpec(estimator="sklearn.linear_model.LogisticRegression", params={})
    pipeline, _ = build_pipeline("logistic_regression", spec, CODES_DATA)
    pipeline.fit(features, target)
    schema = FeatureSchema(("size",), ("store_code",), "test")
    scorer = Scorer(Predictor.build(pipeline, schema), {"name": "codes", "classes": ["late", "ok"]})
    assert scorer.predictor.fast_path, scorer.predictor.fast_path_note
    return scorer, features


def register_model(model: Any, features: pd.DataFrame, root: Path) -> tuple[str, int, str]:
    """Log ``model`` like tracking.log_pipeline_run does and register it with alias champion."""
    import mlflow
    from mlflow import MlflowClient

    from construction_delays.tracking import log_model

    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment(
        "serving-test", artifact_location=(root / "mlartifacts").as_uri()
    )
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.set_tags({"git.commit": GIT_SHA, "best_model": "random_forest"})
        mlflow.log_metrics(TEST_METRICS)
        logged = log_model(model, features)
    client = MlflowClient()
    client.create_registered_model(REGISTERED)
    version = client.create_model_version(REGISTERED, logged.model_uri, run_id=run.info.run_id)
    client.set_registered_model_alias(REGISTERED, "champion", version.version)
    return uri, int(version.version), run.info.run_id


@pytest.fixture(scope="session")
def local_project(tmp_path_factory: pytest.TempPathFactory) -> ServingProject:
    """params.yaml (registered model renamed) and the trained model as a skops file; no MLflow."""
    root = tmp_path_factory.mktemp("serving")
    params = classification_reference()
    params["mlflow"]["registered_model"] = REGISTERED
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    model, features, _ = train_small_model()
    model_file = save_model(model, root / "outputs" / "models" / "random_forest" / "model.skops")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return ServingProject(root, features, model, model_file, uri, version=0, run_id="")


@pytest.fixture(scope="session")
def serving_project(local_project: ServingProject) -> ServingProject:
    """The same project with the model logged and registered as version 1 @champion."""
    uri, version, run_id = register_model(
        local_project.model, local_project.features, local_project.root
    )
    return replace(local_project, tracking_uri=uri, version=version, run_id=run_id)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A running `mlops serve` process and an HTTP client for it."""

    process: subprocess.Popen[str]
    url: str
    log_file: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    def output(self) -> str:
        """Everything the server wrote so far (only once it has stopped)."""
        out, err = (
            self.process.communicate(timeout=15) if self.process.poll() is not None else ("", "")
        )
        return f"{out}\n{err}"

    def wait_ready(self, deadline: float = READY_DEADLINE) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.TransportError):
                if self.client.get("/ready").status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"server not ready after {deadline}s")

    def stop(self) -> str:
        """Terminate (then kill) the server; return its output."""
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                out, err = self.process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                out, err = self.process.communicate(timeout=10)
            return f"{out}\n{err}"
        return self.output()


def start_server(project: ServingProject, *args: str, **env: str) -> Server:
    port = free_port()
    log_file = project.root / "reports" / f"predictions-{port}.jsonl"
    mlops = shutil.which("mlops", path=str(Path(sys.executable).parent)) or "mlops"
    command = [
        mlops,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-file",
        str(log_file),
        *args,
    ]
    process = subprocess.Popen(
        command,
        cwd=project.root,
        env=project.env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Server(process, f"http://127.0.0.1:{port}", log_file)


@pytest.fixture(scope="session")
def server_factory(serving_project: ServingProject) -> Iterator[Callable[..., Server]]:
    """Start servers; every one is stopped at the end of the session, whatever happened."""
    started: list[Server] = []

    def factory(*args: str, **env: str) -> Server:
        server = start_server(serving_project, *args, **env)
        started.append(server)
        server.wait_ready()
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def server(server_factory: Callable[..., Server]) -> Server:
    """The registry champion (default --model), no API key, at most 1000 records per request."""
    return server_factory("--max-records", "1000")


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready records: NaN becomes None."""
    return [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


@pytest.fixture
def env_without_mlflow() -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)
