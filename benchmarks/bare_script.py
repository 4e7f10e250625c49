"""The "seed-style" baseline: the same models, grids and CV as the pipeline in one plain script.

No DVC, no MLflow, no plots, no model files: load the CSV, split it, grid-search every enabled
model of ``params.yaml`` exactly as ``construction_delays.training.train_model`` does (same
pipeline, scorers, folds and ``n_jobs``), score each on the test set, print a JSON summary.
Like any plain script it uses joblib's default (loky, process-based) backend; ``cv.backend`` of
``params.yaml`` is deliberately ignored, so the comparison shows what that setting costs or saves.

``bench_pipeline.py`` runs it as a fresh ``python`` process and times it from the outside, imports
included; the phase timings it prints itself are for the breakdown table only.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402  (imports are timed on purpose)
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pandas as pd  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402

from construction_delays.config import Params, load_params  # noqa: E402
from construction_delays.evaluation import (  # noqa: E402
    classification_metrics,
    cv_scorers,
    predict_proba_or_none,
    resolve_positive_label,
)
from construction_delays.models import build_pipeline  # noqa: E402
from construction_delays.training import make_cv  # noqa: E402

IMPORTED = time.perf_counter()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, help="CSV to read (default: data.path of params.yaml)")
    return parser.parse_args()


def load_data(
    params: Params, path: Path
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Read the CSV and make a stratified, seeded train/test split."""
    frame = pd.read_csv(path)
    features = frame[params.data.feature_columns]
    target = frame[params.data.target]
    x_train, x_test, y_train, y_test = train_test_split(
        features,
        target,
        test_size=params.split.test_size,
        stratify=target if params.split.stratify else None,
        random_state=params.base.seed,
    )
    return x_train, x_test, y_train, y_test


def tune(name: str, params: Params, features: pd.DataFrame, target: pd.Series) -> GridSearchCV:
    """Grid-search one model with the pipeline's own pipeline, scorers and folds."""
    pipeline, grid = build_pipeline(name, params.models[name], params.data)
    classes = sorted(pd.unique(target))
    scorers = cv_scorers(
        params.data.task, classes, resolve_positive_label(classes, params.data.positive_class)
    )
    search = GridSearchCV(
        pipeline,
        param_grid=grid or [{}],
        scoring=scorers,
        refit=params.evaluate.metric,
        cv=make_cv(params),
        n_jobs=params.cv.n_jobs,
        error_score="raise",
    )
    return search.fit(features, target)


def score_on_test(
    search: GridSearchCV, params: Params, features: pd.DataFrame, target: pd.Series
) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and ROC AUC of the refitted best model on the test set."""
    model = search.best_estimator_
    classes = list(model.classes_)
    positive = resolve_positive_label(classes, params.data.positive_class)
    return classification_metrics(
        target, model.predict(features), predict_proba_or_none(model, features), classes, positive
    )


def cv_compute_seconds(search: GridSearchCV) -> float:
    """Fit + score seconds summed over every CV fit (the work the workers share)."""
    results = search.cv_results_
    per_candidate = results["mean_fit_time"] + results["mean_score_time"]
    return float(per_candidate.sum() * search.n_splits_)


def main() -> None:
    args = parse_args()
    params = load_params(args.params)
    if params.data.task != "classification":
        sys.exit("bare_script.py covers the classification reference task only")
    loaded_at = time.perf_counter()
    x_train, x_test, y_train, y_test = load_data(params, args.data or Path(params.data.path))
    phases: dict[str, float] = {
        "imports": IMPORTED - STARTED,
        "load_split": time.perf_counter() - loaded_at,
        "fit": 0.0,
        "evaluate": 0.0,
    }
    models: dict[str, Any] = {}
    for name in params.enabled_models:
        started = time.perf_counter()
        search = tune(name, params, x_train, y_train)
        fitted = time.perf_counter()
        scores = score_on_test(search, params, x_test, y_test)
        evaluated = time.perf_counter()
        phases["fit"] += fitted - started
        phases["evaluate"] += evaluated - fitted
        models[name] = {
            "fit_s": round(fitted - started, 3),
            "cv_compute_s": round(cv_compute_seconds(search), 3),
            "refit_s": round(float(search.refit_time_), 3),
            "evaluate_s": round(evaluated - fitted, 3),
            "candidates": len(search.cv_results_["params"]),
            "folds": search.n_splits_,
            f"cv_{params.evaluate.metric}": round(float(search.best_score_), 4),
            "test": scores,
        }
    phases["total_in_process"] = time.perf_counter() - STARTED
    print(json.dumps({"phases": {k: round(v, 3) for k, v in phases.items()}, "models": models}))


if __name__ == "__main__":
    main()
