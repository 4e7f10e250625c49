"""No network call the user did not configure: MLflow's vendor telemetry is off unless opted in."""

from __future__ import annotations

import os
import subprocess
import sys

# Variables that make MLflow switch telemetry off by itself (CI, pytest): a user's shell has none.
AUTOMATION_VARS = ("CI", "GITHUB_ACTIONS", "PYTEST_CURRENT_TEST", "DO_NOT_TRACK", "TRAVIS")

PROBE = """
import construction_delays.cli  # what `mlops` imports first
import mlflow
from mlflow.telemetry import get_telemetry_client
print(get_telemetry_client() is not None)
"""


def user_shell_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in AUTOMATION_VARS and not k.startswith(("MLFLOW_", "BUILDKITE", "GITLAB"))
    }
    return {**env, **extra}


def run_probe(code: str, **extra: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=user_shell_env(**extra),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.strip()


def test_mlflow_telemetry_is_off_by_default() -> None:
    assert run_probe(PROBE) == "False"


def test_a_user_can_still_opt_in() -> None:
    # Checked without importing MLflow: an opted-in client would call its vendor's servers.
    code = "import os, construction_delays; print(os.environ['MLFLOW_DISABLE_TELEMETRY'])"
    assert run_probe(code, MLFLOW_DISABLE_TELEMETRY="false") == "false"
