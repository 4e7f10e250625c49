"""`mlops ui`: MLflow's UI on the local store, answering without MLflow's own deprecation noise."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import tool_env
from tests.serving.conftest import free_port


def test_the_ui_answers_on_the_local_store_without_deprecation_warnings(tmp_path: Path) -> None:
    port = free_port()
    mlops = shutil.which("mlops", path=str(Path(sys.executable).parent)) or "mlops"
    process = subprocess.Popen(
        [mlops, "ui", "--port", str(port)],
        cwd=tmp_path,
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            raise AssertionError("mlops ui did not answer")
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert "DeprecationWarning" not in output, output
    assert output.count("Started server process") == 1, output  # one worker
