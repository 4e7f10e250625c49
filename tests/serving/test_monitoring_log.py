"""The loop from serving back to monitoring: requests to a real `mlops serve` land in its prediction
log, and `mlops monitor` judges that log against the model's reference profile."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from construction_delays import monitoring
from construction_delays.sample_data import generate

from tests.conftest import reference_config
from tests.serving.conftest import Server, ServingProject, records_of


def test_drifted_traffic_in_the_prediction_log_raises_the_alarm(
    server_factory: Callable[..., Server], serving_project: ServingProject, tmp_path: Path
) -> None:
    params = reference_config()
    model, features = serving_project.model, serving_project.features
    profile = monitoring.build_profile(
        train=features.assign(**{params.data.target: model.predict(features)}),
        data=params.data,
        bins=10,
        model="random_forest",
        test_metrics={},
        predictions=model.predict(features),
        probabilities=model.predict_proba(features),
        classes=list(model.classes_),
        positive="Delayed",
    )
    reference = tmp_path / "reference_profile.json"
    reference.write_text(json.dumps(profile), encoding="utf-8")

    traffic = generate(300, seed=31)[params.data.feature_columns]
    traffic["Weather Delay Days"] += 6
    traffic["Material Delivery Delay (days)"] *= 4
    traffic["Activity Type"] = "Demolition"
    server = server_factory()
    for start in range(0, 300, 100):
        answer = server.client.post(
            "/predict", json={"records": records_of(traffic[start : start + 100])}
        )
        assert answer.status_code == 200, answer.text
    server.stop()  # flushes the log

    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "mlops"),
            "monitor",
            "--input",
            str(server.log_file),
            "--reference",
            str(reference),
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=serving_project.root,
        env=serving_project.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((tmp_path / "out" / "drift.json").read_text(encoding="utf-8"))
    assert report["rows"] == 300
    assert set(report["drifted_features"]) == {
        "Weather Delay Days",
        "Material Delivery Delay (days)",
        "Activity Type",
    }
    served = {c["name"]: c for c in report["checks"] if c["group"] == "prediction"}
    assert set(served) == {"predicted class", "P(Delayed)"}  # as served, from the log
    assert served["P(Delayed)"]["status"] == "drift"
