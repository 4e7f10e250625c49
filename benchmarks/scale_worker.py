"""Worker processes of the scale sweep in ``bench_pipeline.py``: one fresh process per step.

``generate`` writes ``construction_delays.sample_data.generate(rows, seed)`` to Parquet;
``fit`` grid-searches one model of the zoo (its ``params.yaml`` estimator and fixed parameters, a
small two-candidate grid) inside ``build_pipeline`` with the pipeline's scorers, folds and
``cv.n_jobs``, then scores it on a held-out split. Each prints one JSON line with its timings; the
parent measures wall time and the memory of the whole process tree (loky workers included).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

# Two candidates per model: enough to exercise GridSearchCV, small enough for 1M rows.
SWEEP_GRIDS: dict[str, dict[str, list[Any]]] = {
    "logistic_regression": {"C": [0.1, 1.0]},
    "gradient_boosting": {"learning_rate": [0.05, 0.1]},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="write the synthetic dataset to Parquet")
    generate.add_argument("--rows", type=int, required=True)
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--out", type=Path, required=True)
    fit = commands.add_parser("fit", help="grid-search one model on a Parquet dataset")
    fit.add_argument("--data", type=Path, required=True)
    fit.add_argument("--model", choices=sorted(SWEEP_GRIDS), required=True)
    fit.add_argument("--params", type=Path, default=Path("params.yaml"))
    fit.add_argument(
        "--n-jobs", type=int, help="GridSearchCV n_jobs (default: cv.n_jobs of params.yaml)"
    )
    return parser.parse_args()


def generate(rows: int, seed: int, out: Path) -> dict[str, Any]:
    """Generate ``rows`` synthetic activities and write them as Parquet."""
    from construction_delays.sample_data import generate as generate_frame

    started = time.perf_counter()
    frame = generate_frame(rows, seed)
    generated = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    return {
        "rows": rows,
        "generate_s": round(generated - started, 3),
        "write_s": round(time.perf_counter() - generated, 3),
        "bytes": out.stat().st_size,
    }


def fit(data: Path, model: str, params_path: Path, n_jobs: int | None) -> dict[str, Any]:
    """Grid-search ``model`` with the pipeline's preprocessing, scorers and folds; score on a test split."""
    import pandas as pd
    from sklearn.model_selection import GridSearchCV, train_test_split

    from construction_delays.config import load_params
    from construction_delays.data import select_columns
    from construction_delays.evaluation import (
        classification_metrics,
        cv_scorers,
        predict_proba_or_none,
        resolve_positive_label,
    )
    from construction_delays.models import build_pipeline
    from construction_delays.training import make_cv

    timings: dict[str, float] = {}
    started = time.perf_counter()
    params = load_params(params_path)
    features, target = select_columns(pd.read_parquet(data), params.data)
    x_train, x_test, y_train, y_test = train_test_split(
        features,
        target,
        test_size=params.split.test_size,
        stratify=target,
        random_state=params.base.seed,
    )
    timings["load_split_s"] = time.perf_counter() - started

    spec = params.models[model].model_copy(update={"grid": SWEEP_GRIDS[model]})
    pipeline, grid = build_pipeline(model, spec, params.data)
    classes = sorted(pd.unique(y_train))
    positive = resolve_positive_label(classes, params.data.positive_class)
    jobs = params.cv.n_jobs if n_jobs is None else n_jobs
    search = GridSearchCV(
        pipeline,
        param_grid=grid,
        scoring=cv_scorers(params.data.task, classes, positive),
        refit=params.evaluate.metric,
        cv=make_cv(params),
        n_jobs=jobs,
        error_score="raise",
    )
    started = time.perf_counter()
    search.fit(x_train, y_train)
    timings["grid_search_s"] = time.perf_counter() - started
    timings["refit_s"] = float(search.refit_time_)

    started = time.perf_counter()
    best = search.best_estimator_
    scores = classification_metrics(
        y_test,
        best.predict(x_test),
        predict_proba_or_none(best, x_test),
        list(best.classes_),
        positive,
    )
    timings["test_score_s"] = time.perf_counter() - started
    return {
        "rows": len(features),
        "train_rows": len(x_train),
        "model": model,
        "estimator": spec.estimator,
        "candidates": len(search.cv_results_["params"]),
        "folds": params.cv.folds,
        "n_jobs": jobs,
        "best_params": {k.removeprefix("model__"): v for k, v in search.best_params_.items()},
        "test": scores,
        **{key: round(value, 3) for key, value in timings.items()},
    }


def main() -> None:
    args = parse_args()
    if args.command == "generate":
        result = generate(args.rows, args.seed, args.out)
    else:
        result = fit(args.data, args.model, args.params, args.n_jobs)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
