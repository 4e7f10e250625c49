"""The same commands against a real `mlflow server` on loopback (MLFLOW_TRACKING_URI set, no code
change): run, register, promote and score, and the errors when the store cannot be used.

A server differs from the embedded SQLite store where it matters: model versions are created over
REST (which checks that a ``models:/`` source names its logged model), artifacts go through the
server's proxy, and an unreachable server must fail in seconds, not after minutes of retries.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from construction_delays.sample_data import DELAYED, ON_SCHEDULE, TARGET, generate

from tests.conftest import Project, init_project, reference_params, tool_env
from tests.deployment.helpers import MODEL, mlops
from tests.serving.conftest import free_port

pytestmark = pytest.mark.slow

READY_DEADLINE = 90.0


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` with its own SQLite backend and artifact store, on a free loopback port."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [
            mlflow,
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'server.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=root,
        env=tool_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + READY_DEADLINE
        while True:
            if process.poll() is not None:
                raise AssertionError(f"mlflow server exited:\n{(root / 'server.log').read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > end:
                raise AssertionError(f"mlflow server not ready after {READY_DEADLINE}s")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def server_project(tmp_path_factory: pytest.TempPathFactory, tracking_server: str) -> Project:
    """A small reference project whose `mlops run` (pipeline + register) logs to the server."""
    project = init_project(
        tmp_path_factory.mktemp("server-project") / "project", reference_params()
    )
    mlops(project, "run", env={"MLFLOW_TRACKING_URI": tracking_server})
    return project


def server_client(url: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=url, registry_uri=url)


def test_run_logs_and_registers_on_the_server(
    server_project: Project, tracking_server: str
) -> None:
    info = json.loads(server_project.read("reports/mlflow_run.json"))
    assert info["tracking_uri"] == tracking_server
    assert info["model_id"] and info["model_uri"] == f"models:/{info['model_id']}"
    client = server_client(tracking_server)
    run = client.get_run(info["run_id"])
    assert run.data.tags["best_model"] == info["best_model"]
    version = client.get_model_version_by_alias(MODEL, "challenger")
    assert (version.run_id, version.status) == (info["run_id"], "READY")
    # Nothing went to the embedded store: no local database, no local artifacts.
    assert not (server_project.root / "mlflow.db").exists()
    assert not (server_project.root / "mlartifacts").exists()


def test_promote_and_score_from_the_server(server_project: Project, tracking_server: str) -> None:
    env = {"MLFLOW_TRACKING_URI": tracking_server}
    mlops(server_project, "promote", env=env)
    client = server_client(tracking_server)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.version == client.get_model_version_by_alias(MODEL, "challenger").version
    assert champion.tags["promotion.verdict"] == "passed"

    rows = generate(rows=50, seed=11).drop(columns=[TARGET])
    rows.to_csv(server_project.root / "new.csv", index=False)
    mlops(
        server_project,
        "score",
        "--input",
        "new.csv",
        "--output",
        "scored.csv",
        "--model",
        f"models:/{MODEL}@champion",
        "--no-progress",
        env=env,
    )
    scored = pd.read_csv(server_project.root / "scored.csv")
    assert len(scored) == 50
    assert set(scored["prediction"]) <= {DELAYED, ON_SCHEDULE}


def promote_failing_on(project: Project, store: str) -> str:
    """`mlops promote` against a store that cannot be used: a user error (exit 2), no traceback."""
    result = mlops(project, "promote", env={"MLFLOW_TRACKING_URI": store}, check=False)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, output
    assert "Traceback" not in output
    return output


def test_an_unreachable_server_fails_in_seconds(server_project: Project) -> None:
    started = time.monotonic()
    output = promote_failing_on(server_project, f"http://127.0.0.1:{free_port()}")
    assert time.monotonic() - started < 30
    assert "is not reachable" in output


def test_a_corrupt_local_store_is_one_line(server_project: Project, tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    store.write_bytes(b"not a database " * 200)
    output = promote_failing_on(server_project, f"sqlite:///{store}")
    assert "file is not a database" in output
    assert len(output) < 400


def test_back_on_the_local_store_the_cached_run_is_logged_there(server_project: Project) -> None:
    """The store is not a DVC input: `mlops run` notices the run record names another store and
    logs the cached run again (nothing retrains), so register finds it."""
    result = mlops(server_project, "run")
    output = " ".join((result.stdout + result.stderr).split())
    assert "the last run was logged to http://127.0.0.1:" in output
    assert "Running stage 'train@" not in output
    info = json.loads(server_project.read("reports/mlflow_run.json"))
    assert info["tracking_uri"].startswith("sqlite:///")
    from mlflow import MlflowClient

    local = MlflowClient(tracking_uri=info["tracking_uri"])
    assert local.get_model_version_by_alias(MODEL, "challenger").run_id == info["run_id"]


def test_ui_points_at_the_server_s_own_ui(server_project: Project, tracking_server: str) -> None:
    result = mlops(server_project, "ui", env={"MLFLOW_TRACKING_URI": tracking_server})
    assert f"its UI is at {tracking_server}" in " ".join(result.stderr.split())
