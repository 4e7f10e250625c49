"""A rollback with nothing to return to names the make target people run, not only the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from construction_delays.registry import RegistryError, rollback_champion

from tests.conftest import reference_config


def test_a_champion_without_previous_asks_for_the_version_in_make_s_terms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient
    from mlflow.tracking._tracking_service import utils

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setattr(utils, "_tracking_uri", uri)  # MLflow's process-wide store, put back
    params = reference_config()
    name = params.mlflow.registered_model
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(name)
    version = client.create_model_version(name, str(tmp_path / "model"))
    client.set_registered_model_alias(name, "champion", version.version)

    with pytest.raises(RegistryError) as raised:
        rollback_champion(params, tmp_path)

    assert "no 'previous' alias" in str(raised.value)
    assert "`make rollback ROLLBACK_TO=N` (`mlops rollback --to N`)" in str(raised.value)
