"""The `mlops run` warm-up thread: never imports alongside the main thread, done before it is needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import tool_env

# Runs in a fresh interpreter: which modules are loaded when is the point of the test.
PROBE = """
import json, logging, sys
logging.basicConfig(level=logging.INFO)  # as a host that shows INFO lines (alembic's among them)
from pathlib import Path
from construction_delays.warmup import Warmup

warmup = Warmup(Path(sys.argv[1]), ["sklearn.ensemble.RandomForestClassifier"])
seen = {}
warmup.before_stage(["pipelines/validate.py"])
seen["before_train"] = {m: m in sys.modules for m in ("sklearn", "mlflow")}
warmup.before_stage(["pipelines/train.py", "--model", "random_forest"])
# What the train stage imports is loaded before the thread exists, so the two never race.
seen["at_train_start"] = {
    m: m in sys.modules
    for m in ("construction_delays.training", "skops.io", "sklearn.ensemble")
}
warmup.before_stage(["pipelines/train.py", "--model", "knn"])  # a second start is a no-op
warmup.before_stage(["pipelines/evaluate.py"])
seen["at_evaluate"] = {
    "thread_done": not warmup._thread.is_alive(),
    "mlflow": "mlflow" in sys.modules,
    "matplotlib": "matplotlib.pyplot" in sys.modules,
    "store": (Path(sys.argv[1]) / "mlflow.db").is_file(),
}
print(json.dumps(seen))
"""


def test_warmup_starts_with_the_first_train_stage_and_is_done_before_evaluate(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        env=tool_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # Creating the new store says nothing in the middle of the training output.
    assert "database tables" not in result.stderr and "alembic" not in result.stderr, result.stderr
    assert seen["before_train"] == {"sklearn": False, "mlflow": False}
    assert all(seen["at_train_start"].values()), seen["at_train_start"]
    assert seen["at_evaluate"] == {
        "thread_done": True,
        "mlflow": True,
        "matplotlib": True,
        "store": True,
    }
