"""Grid-search training of one model of the zoo."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from joblib import parallel_config
from sklearn.base import clone
from sklearn.ensemble._forest import BaseForest
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
)
from sklearn.pipeline import Pipeline

from construction_delays.config import Params
from construction_delays.errors import ProjectError
from construction_delays.evaluation import cv_scorers, cv_sign, resolve_positive_label
from construction_delays.files import plain_value
from construction_delays.models import MODEL_STEP, build_pipeline

# Wall-clock columns of GridSearchCV's cv_results_: they differ on every run, so they are kept
# apart from the stage's outputs (see stages.train).
TIMING_COLUMNS = ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time")


class TrainingError(ProjectError, ValueError):
    """The data cannot be cross-validated as configured; the message says which setting."""


@dataclass
class TrainingResult:
    model: Pipeline
    summary: dict[str, Any]  # a function of the inputs: no wall-clock times
    cv_results: pd.DataFrame
    fit_seconds: float  # grid search and refit

    def timings(self) -> dict[str, Any]:
        """How long the search took, in all and per candidate: run metadata, not model output."""
        return {
            "fit_seconds": self.fit_seconds,
            "candidates": [
                {"params": plain_params(row["params"])}
                | {column: round(float(row[column]), 4) for column in TIMING_COLUMNS}
                for _, row in self.cv_results.iterrows()
            ],
        }


def plain_params(pipeline_params: dict[str, Any]) -> dict[str, Any]:
    """``{"model__C": np.float64(1.0)}`` as ``{"C": 1.0}``: the model's own names, JSON values."""
    return {k.removeprefix(f"{MODEL_STEP}__"): plain_value(v) for k, v in pipeline_params.items()}


def make_cv(params: Params) -> KFold | StratifiedKFold | GroupKFold | StratifiedGroupKFold:
    """The CV splitter: stratified for classification; group-aware when ``data.group`` is set
    (the rows of one group are never split between a fold's training and validation parts)."""
    seed = params.base.seed if params.cv.shuffle else None
    classification = params.data.task == "classification"
    if params.data.group is not None:
        splitter: type = StratifiedGroupKFold if classification else GroupKFold
    else:
        splitter = StratifiedKFold if classification else KFold
    return splitter(n_splits=params.cv.folds, shuffle=params.cv.shuffle, random_state=seed)


def train_model(
    name: str,
    params: Params,
    features: pd.DataFrame,
    target: pd.Series,
    verbose: int = 0,
    groups: pd.Series | None = None,
    progress_bars: bool = False,
) -> TrainingResult:
    """Tune model ``name`` with GridSearchCV over the configured folds; refit on all training rows.

    Every metric of the task is cross-validated; the configured selection metric picks the
    best parameters. Returned CV scores are in natural units (errors positive). ``groups`` (the
    ``data.group`` column of the training rows) keeps each group within one CV fold.
    ``progress_bars`` draws live bars of the CV fits (for a terminal) instead of ``verbose`` lines.
    """
    spec = params.models[name]
    pipeline, grid = build_pipeline(name, spec, params.data)
    classes = sorted(pd.unique(target)) if params.data.task == "classification" else []
    positive = resolve_positive_label(classes, params.data.positive_class)
    scorers = cv_scorers(params.data.task, classes, positive)
    if params.data.task == "classification":
        smallest_class = int(target.value_counts().min())
        if smallest_class < params.cv.folds:
            rarest = target.value_counts().idxmin()
            numeric = pd.api.types.is_numeric_dtype(target) and target.nunique() > 20
            raise TrainingError(
                f"the rarest class ({rarest!r}) has {smallest_class} training rows, fewer than"
                f" cv.folds={params.cv.folds}: lower cv.folds in params.yaml or add rows of that"
                " class"
                + (
                    f"; {target.nunique()} distinct numbers look like a regression target"
                    " (data.task: regression)"
                    if numeric
                    else ""
                )
            )
    if params.data.group is not None:
        if groups is None:
            raise ValueError(f"data.group {params.data.group!r} is set but no groups were given")
        if groups.nunique() < params.cv.folds:
            raise TrainingError(
                f"data.group {params.data.group!r} has {groups.nunique()} groups in the training"
                f" split, fewer than cv.folds={params.cv.folds}: lower cv.folds in params.yaml"
                " or use a column with more groups"
            )
    # refit=False: the best candidate is refitted below, where a forest can use every core.
    search = GridSearchCV(
        pipeline,
        param_grid=grid or [{}],
        scoring=scorers,
        refit=False,
        cv=make_cv(params),
        n_jobs=params.cv.n_jobs,
        verbose=verbose,
        error_score="raise",
    )
    if progress_bars:
        show_progress_bars(search)
    started = time.perf_counter()
    try:
        with parallel_config(backend=params.cv.backend):
            search.fit(features, target, groups=groups)
        results = pd.DataFrame(search.cv_results_)
        # GridSearchCV's own rule for refit=<metric>: the first candidate ranked 1.
        best = int(results[f"rank_test_{params.evaluate.metric}"].argmin())
        best_params = results.loc[best, "params"]
        model = refit(pipeline, best_params, features, target, params.cv.n_jobs)
    except Exception as error:  # the estimator rejected this data or a grid value
        raise TrainingError(
            f"models.{name} ({spec.estimator}) failed to fit: {type(error).__name__}: {error}."
            f" Change its grid in params.yaml, or disable it (models.{name}.enabled: false)"
            " if it does not suit this data"
        ) from error
    elapsed = time.perf_counter() - started
    cv_scores = {
        metric: {
            "mean": round(cv_sign(metric) * float(results.loc[best, f"mean_test_{metric}"]), 4),
            "std": round(float(results.loc[best, f"std_test_{metric}"]), 4),
        }
        for metric in scorers
    }
    summary = {
        "model": name,
        "estimator": spec.estimator,
        "best_params": plain_params(best_params),
        "cv": cv_scores,
        "candidates": len(results),
        "folds": params.cv.folds,
        "train_rows": len(features),
    }
    return TrainingResult(
        model=model, summary=summary, cv_results=results, fit_seconds=round(elapsed, 2)
    )


def show_progress_bars(search: GridSearchCV) -> bool:
    """Draw scikit-learn's own live bars of the search's fits (they follow the fits in the worker
    processes too), in place of one ``[CV] END`` line per fit. The callback API is experimental in
    scikit-learn 1.9: where it is missing, the search keeps its ``verbose`` lines."""
    try:
        from sklearn.callback import ProgressBar

        search.set_callbacks(ProgressBar(max_propagation_depth=0))
    except (ImportError, AttributeError, TypeError):
        return False
    search.set_params(verbose=0)
    return True


def refit(
    pipeline: Pipeline,
    best_params: dict[str, Any],
    features: pd.DataFrame,
    target: pd.Series,
    n_jobs: int | None,
) -> Pipeline:
    """Fit a fresh copy of ``pipeline`` with ``best_params`` on all training rows.

    The CV fits already run one per core, so a forest is configured with one job; its final fit
    runs alone, so it builds its trees on ``n_jobs`` threads instead (same trees: a forest's result
    does not depend on ``n_jobs``). The configured ``n_jobs`` is put back before the model is
    returned, so the saved model carries the parameters params.yaml gave it.
    """
    model = clone(pipeline).set_params(**clone(best_params, safe=False))
    estimator = model.named_steps[MODEL_STEP]
    if not isinstance(estimator, BaseForest) or n_jobs in (None, 1):
        return model.fit(features, target)
    configured = estimator.n_jobs
    estimator.set_params(n_jobs=n_jobs)
    try:
        model.fit(features, target)
    finally:
        estimator.set_params(n_jobs=configured)
    return model


def release_cv_workers() -> None:
    """Let the idle worker processes of the grid searches exit now, without waiting for them.

    joblib keeps them for the next search and, at interpreter exit, waits for them to shut down
    (~0.3 s with scikit-learn loaded). When the train stages of `mlops run` are done, nothing uses
    them again, and they can exit while the main process evaluates. A later search starts new ones.
    """
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)  # None: no search ran in this process
    if executor is not None:
        executor.shutdown(wait=False)
