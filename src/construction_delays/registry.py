"""Model registry operations: register the pipeline's best model as a new version (``challenger``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from construction_delays.config import Params
from construction_delays.errors import ProjectError
from construction_delays.files import read_json
from construction_delays.tracking import connect

CHALLENGER = "challenger"


class RegistryError(ProjectError, RuntimeError):
    pass


def register_challenger(params: Params, root: Path, run_info_path: Path) -> dict[str, Any]:
    """Register the logged model of the last pipeline run and point ``challenger`` at it.

    Idempotent: if a version already comes from that run, it is reused, not duplicated.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if not run_info_path.is_file():
        raise RegistryError(
            f"{run_info_path}: not found; run the pipeline first (`mlops run` or `dvc repro`)"
        )
    info = read_json(run_info_path)
    connect(root, params.mlflow.experiment)
    client = MlflowClient()
    name = params.mlflow.registered_model
    try:
        client.get_run(info["run_id"])
    except MlflowException:
        raise RegistryError(
            f"{run_info_path}: run {info['run_id']} is not in the tracking store {info['tracking_uri']};"
            " re-log it with `dvc repro --force log_run`"
        ) from None
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description=f"Best model of the {params.mlflow.experiment} pipeline"
        )
    existing = client.search_model_versions(f"name = '{name}' and run_id = '{info['run_id']}'")
    if existing:
        version = max(existing, key=lambda v: int(v.version))
        created = False
    else:
        run = client.get_run(info["run_id"])
        version = client.create_model_version(
            name,
            source=info["model_uri"],
            run_id=info["run_id"],
            tags={
                k: v
                for k, v in run.data.tags.items()
                if k.startswith(("git.", "dvc.", "params.", "best_model"))
            },
            description=f"{info['best_model']} from commit {info['git_commit'][:12]}",
        )
        created = True
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    return {
        "name": name,
        "version": int(version.version),
        "alias": CHALLENGER,
        "created": created,
        "run_id": info["run_id"],
    }


CHAMPION, PREVIOUS = "champion", "previous"


def promote_challenger(params: Params, root: Path) -> dict[str, Any]:
    """Make ``challenger`` the ``champion`` if it passes the metric gates and is not worse than the
    current champion by more than ``gates.max_regression``; the old champion becomes ``previous``.

    Idempotent: promoting the version that already is champion changes nothing.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from construction_delays.gates import all_passed, model_gates

    connect(root, params.mlflow.experiment)
    client = MlflowClient()
    name = params.mlflow.registered_model

    def by_alias(alias: str) -> Any:
        try:
            return client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None

    def test_metrics(version: Any) -> dict[str, float]:
        metrics = client.get_run(version.run_id).data.metrics
        return {k.removeprefix("test_"): v for k, v in metrics.items() if k.startswith("test_")}

    challenger, champion = by_alias(CHALLENGER), by_alias(CHAMPION)
    if challenger is None:
        raise RegistryError(
            f"{name}: no version has the alias '{CHALLENGER}'; run `mlops register` first"
        )
    outcome: dict[str, Any] = {
        "name": name,
        "challenger": int(challenger.version),
        "promoted": False,
    }
    if champion is not None and champion.version == challenger.version:
        return {**outcome, "champion": int(champion.version), "reason": "already champion"}
    references = (
        {f"champion v{champion.version}": test_metrics(champion)} if champion is not None else {}
    )
    results = model_gates(params.gates, test_metrics(challenger), references)
    outcome["gates"] = [r.to_dict() for r in results]
    if not all_passed(results):
        failed = ", ".join(
            f"{r.gate}: {r.value} (needs {r.threshold})" for r in results if not r.passed
        )
        return {
            **outcome,
            "champion": int(champion.version) if champion else None,
            "reason": f"gates failed: {failed}",
        }
    if champion is not None:
        client.set_registered_model_alias(name, PREVIOUS, champion.version)
    client.set_registered_model_alias(name, CHAMPION, challenger.version)
    return {
        **outcome,
        "promoted": True,
        "champion": int(challenger.version),
        "previous": int(champion.version) if champion else None,
        "reason": "passed the gates",
    }
