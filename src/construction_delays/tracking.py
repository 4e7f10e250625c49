"""MLflow tracking: where runs go, and what a pipeline run records.

By default everything stays in the project: runs and the registry in ``mlflow.db`` (SQLite) and
artifacts in ``mlartifacts/`` (both git-ignored). Setting ``MLFLOW_TRACKING_URI`` points the same
code at a tracking server.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml

from construction_delays.config import Params
from construction_delays.errors import ProjectError

LOCAL_DB, LOCAL_ARTIFACTS = "mlflow.db", "mlartifacts"


def tracking_uri(root: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root / LOCAL_DB).resolve()}"


def store_missing(root: Path) -> bool:
    """The tracking URI is a SQLite file that does not exist yet (a fresh checkout in CI): it
    holds nothing, and asking MLflow would create and migrate it."""
    uri = tracking_uri(root)
    return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file()


SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "token", "secret", "key", "credential", "sig")


def _secret(query_key: str) -> bool:
    return any(word in query_key.lower() for word in SECRET_QUERY_KEYS)


def redact(uri: str) -> str:
    """Drop credentials from a URI before it is printed or written to a file: the user and
    password before the host, and query values that look secret (``?password=``, ``&token=``)."""
    parts = original = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        parts = parts._replace(netloc=netloc)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    hidden = [(k, "***" if _secret(k) else v) for k, v in pairs]
    if hidden != pairs:
        parts = parts._replace(query=urlencode(hidden, safe="*"))
    # Unchanged URIs come back as given: urlunsplit would fold sqlite://// into sqlite://.
    return uri if parts == original else urlunsplit(parts)


def server_run_url(info: dict[str, Any]) -> str | None:
    """The tracking server's page of the run reports/mlflow_run.json records; None for a local
    store (its UI is `make ui`)."""
    uri = info.get("tracking_uri", "")  # redacted when written
    if not uri.startswith(("http://", "https://")):
        return None
    return f"{uri.rstrip('/')}/#/experiments/{info['experiment_id']}/runs/{info['run_id']}"


def is_local(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


class TrackingStoreError(ProjectError, RuntimeError):
    """The MLflow store cannot be used: server unreachable, database unreadable, access refused."""


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not after MLflow's retries, when a tracking server does not answer."""
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    if parts.scheme in getproxies() and not proxy_bypass(parts.hostname):
        return  # reached through a proxy: a direct connection says nothing
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as error:
        raise TrackingStoreError(
            f"MLflow tracking server {redact(uri)} is not reachable ({error.strerror or error});"
            " start it, fix MLFLOW_TRACKING_URI, or unset MLFLOW_TRACKING_URI to use the local"
            f" store {LOCAL_DB}"
        ) from None


@contextmanager
def store_errors(uri: str) -> Iterator[None]:
    """Turn a store that cannot be read (corrupt SQLite file, refused login, server error) into one
    line naming the store, instead of a traceback hundreds of lines long."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (MlflowException, SQLAlchemyError, RequestException) as error:
        message = getattr(error, "message", None) or str(error)
        hint = (
            f"; move {uri.removeprefix('sqlite:///')} aside to start a new store"
            if isinstance(error, SQLAlchemyError) and uri.startswith("sqlite:///")
            else ""
        )
        raise TrackingStoreError(
            f"MLflow store {redact(uri)}: {message.strip().splitlines()[0]}{hint}"
        ) from None


def quiet_mlflow() -> None:
    """MLflow's INFO lines ("Waiting up to 300 seconds ...") and run links say nothing a user acts
    on."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # With a tracking server MLflow prints "🏃 View run ... / 🧪 View experiment ..." for every
    # (nested) run it ends: ~10 lines per pipeline run. The run summary gives the one link that
    # matters. A default only: MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT=false brings them back.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # A new store's migrations: "Context impl SQLiteImpl", "Running upgrade ..." once a handler
    # shows INFO lines (MLflow's own "Creating initial MLflow database tables" is under mlflow).
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # uv's environments have no pip, and logging a model then warns that conda.yaml lists pip
    # without a version: nothing to act on (the model's pip requirements are pinned).
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)


def use_store(root: Path) -> str:
    """Point MLflow at the configured store (checked to answer) and return its URI."""
    import mlflow

    quiet_mlflow()
    uri = tracking_uri(root)
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    return uri


def connect(root: Path, experiment: str) -> str:
    """Point MLflow at the configured store and return the experiment id (created if missing)."""
    import mlflow

    uri = use_store(root)
    with store_errors(uri):
        found = mlflow.get_experiment_by_name(experiment)
        if found is not None:
            return found.experiment_id
        location = (root / LOCAL_ARTIFACTS).resolve().as_uri() if is_local(uri) else None
        return mlflow.create_experiment(experiment, artifact_location=location)


def git_info(root: Path) -> dict[str, str]:
    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    return {
        "git.commit": git("rev-parse", "HEAD") or "unknown",
        "git.branch": git("rev-parse", "--abbrev-ref", "HEAD") or "unknown",
        "git.dirty": str(bool(git("status", "--porcelain", "--untracked-files=no"))).lower(),
    }


def dvc_hashes(root: Path, paths: dict[str, str]) -> dict[str, str]:
    """md5 of DVC-tracked outputs as recorded in dvc.lock / data.dvc, keyed by the given tag names."""
    recorded: dict[str, str] = {}
    lock = root / "dvc.lock"
    if lock.is_file():
        for stage in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).values():
            for out in stage.get("outs", []):
                recorded[out["path"]] = out.get("md5", "")
    for dvc_file in root.glob("*.dvc"):
        if not dvc_file.is_file():
            continue
        for out in (yaml.safe_load(dvc_file.read_text()) or {}).get("outs", []):
            recorded[out["path"]] = out.get("md5", "")
    return {tag: recorded[path] for tag, path in paths.items() if recorded.get(path)}


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


SERVING_REQUIREMENTS = ("scikit-learn", "skops", "pandas", "numpy", "scipy")


def serving_requirements() -> list[str]:
    """Pinned requirements of the logged model, read from this environment (MLflow's own inference
    shells out to pip/uv and takes ~10 s here)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in SERVING_REQUIREMENTS]


def log_model(model: Any, features: Any, input_example: Any = None) -> Any:
    """Log a fitted pipeline to the active run as skops (no pickle), with signature and pinned
    requirements; returns MLflow's ModelInfo."""
    import mlflow
    from mlflow.models import infer_signature

    from construction_delays.persistence import model_trusted_types

    sample = features.head(200)
    with warnings.catch_warnings():
        # MLflow hints, once for the signature and once for the input example, that an integer
        # column cannot hold a missing value at inference and would fail its schema enforcement.
        # Not here: our server and `mlops score` take null in every column (the pipeline imputes)
        # and read the signature only for column names and kinds.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        return mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="skops",
            skops_trusted_types=model_trusted_types(model),
            signature=infer_signature(sample, model.predict(sample)),
            input_example=input_example,
            pip_requirements=serving_requirements(),
        )


def flat_params(params: Params) -> dict[str, Any]:
    data = params.data
    return {
        "task": data.task,
        "target": data.target,
        "numeric_features": len(data.numeric_features),
        "categorical_features": len(data.categorical_features),
        "test_size": params.split.test_size,
        "stratify": params.split.stratify,
        "cv_folds": params.cv.folds,
        "selection_metric": params.evaluate.metric,
        "seed": params.base.seed,
        "models": ",".join(params.enabled_models),
        # Only when set: a run without it was tested on random rows (gates.ScoredProblem).
        **({"group": data.group} if data.group else {}),
    }


def matching_timings(timings_dir: Path | None, model_dir: Path) -> dict[str, Any] | None:
    """The times the train stage recorded for the model in ``model_dir``; None when there are none
    or they belong to another model file (outputs restored from DVC's run-cache or a remote)."""
    from construction_delays.files import read_json
    from construction_delays.persistence import file_sha256

    path = None if timings_dir is None else timings_dir / f"{model_dir.name}.json"
    if path is None or not path.is_file() or not (model_dir / "model.skops").is_file():
        return None
    try:
        timings = read_json(path)
    except ValueError:
        return None
    if not isinstance(timings, dict) or "fit_seconds" not in timings:
        return None
    return (
        timings if timings.get("model_sha256") == file_sha256(model_dir / "model.skops") else None
    )


def log_pipeline_run(
    params: Params,
    root: Path,
    *,
    data_path: Path,
    split_dir: Path,
    models_dir: Path,
    reports: list[Path],
    figures_dir: Path,
    run_info_path: Path,
    timings_dir: Path | None = None,
    receipt_path: Path | None = None,
) -> dict[str, str]:
    """Log the whole pipeline as one MLflow run (one nested run per model) and the best model.

    Writes ``run_info_path`` (run id, model URI; no credentials) for ``mlops register``, and
    ``receipt_path``: what was logged, as a function of the stage's inputs only (no run id), so the
    stage's DVC output reproduces the hash dvc.lock records while every run is a new MLflow run. A
    model's fit time comes from ``timings_dir`` (see stages.train) when it was written for that
    model file.
    """
    import logging

    import mlflow
    import pandas as pd

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")

    from construction_delays.files import read_json, write_json
    from construction_delays.persistence import file_sha256, load_model

    experiment_id = connect(root, params.mlflow.experiment)
    metrics = read_json(next(p for p in reports if p.name == "metrics.json"))
    best = metrics["best_model"]
    train = pd.read_parquet(split_dir / "train.parquet")
    test = pd.read_parquet(split_dir / "test.parquet")
    features = train[params.data.feature_columns]  # not the target, nor a group column
    model = load_model(models_dir / best / "model.skops")
    tags = {
        **git_info(root),
        **dvc_hashes(root, {"dvc.data_md5": "data", "dvc.model_md5": f"outputs/models/{best}"}),
        "params.digest": file_digest(root / "params.yaml"),
        "data.path": str(data_path),
        "best_model": best,
        "task": params.data.task,
    }
    summaries = {name: read_json(models_dir / name / "summary.json") for name in metrics["models"]}

    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"pipeline-{best}", tags=tags
    ) as run:
        mlflow.log_params(flat_params(params))
        mlflow.log_params({f"best.{k}": v for k, v in summaries[best]["best_params"].items()})
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics["test"].items()})
        mlflow.log_metrics({f"cv_{k}": v for k, v in metrics["cv"].items()})
        for context, frame in (("training", train), ("test", test)):
            dataset = mlflow.data.from_pandas(
                frame,
                source=str(data_path),
                targets=params.data.target,
                name=f"{data_path.stem}-{context}",
            )
            mlflow.log_input(dataset, context=context)
        for report in reports:
            mlflow.log_artifact(str(report), artifact_path="reports")
        mlflow.log_artifacts(str(figures_dir), artifact_path="figures")
        for name, summary in summaries.items():
            with mlflow.start_run(experiment_id=experiment_id, run_name=name, nested=True):
                mlflow.set_tags(
                    {
                        "model": name,
                        "estimator": summary["estimator"],
                        "git.commit": tags["git.commit"],
                    }
                )
                mlflow.log_params(summary["best_params"] or {"defaults": True})
                mlflow.log_metrics({f"cv_{k}": v["mean"] for k, v in summary["cv"].items()})
                mlflow.log_metrics(
                    {f"test_{k}": v for k, v in metrics["models"][name]["test"].items()}
                )
                mlflow.log_artifact(str(models_dir / name / "cv_results.csv"))
                timings = matching_timings(timings_dir, models_dir / name)
                if timings is not None:
                    mlflow.log_metric("fit_seconds", timings["fit_seconds"])
                    mlflow.log_dict(timings, "timings.json")
        example = features.dropna().head(5)
        logged = log_model(
            model, features, input_example=features.head(5) if example.empty else example
        )
        info = {
            "run_id": run.info.run_id,
            "experiment_id": experiment_id,
            "experiment": params.mlflow.experiment,
            "model_uri": logged.model_uri,
            "model_id": logged.model_id,
            "best_model": best,
            "tracking_uri": redact(tracking_uri(root)),
            "git_commit": tags["git.commit"],
        }
    write_json(run_info_path, info)
    if receipt_path is not None:
        write_json(
            receipt_path,
            {
                "experiment": params.mlflow.experiment,
                "best_model": best,
                "model_sha256": file_sha256(models_dir / best / "model.skops"),
                # Every model's metrics, params and checks as logged: a change to any of them (not
                # only to the best model) is a new run, so the run this receipt stands for (the
                # summary's link, the registry's lineage) never shows another branch's numbers.
                "reports_sha256": {path.name: file_sha256(path) for path in sorted(reports)},
            },
        )
    return info
