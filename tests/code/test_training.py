"""Grid-search training: the refit picks what GridSearchCV would, and a forest refits on every core."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import psutil
import pytest
import yaml
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeClassifier

from construction_delays import stages
from construction_delays.config import Params, parse_params
from construction_delays.evaluation import cv_scorers, resolve_positive_label
from construction_delays.models import build_pipeline
from construction_delays.sample_data import generate
from construction_delays.training import make_cv, refit, release_cv_workers, train_model

from tests.conftest import ROOT, reference_config


@pytest.fixture(scope="module")
def training_rows() -> tuple[pd.DataFrame, pd.Series]:
    params = reference_config()
    frame = generate(rows=600, seed=7)
    return frame[params.data.feature_columns], frame[params.data.target]


def small_params(model: str, n_jobs: int) -> Params:
    """The reference params with only ``model`` in the zoo (a small forest) and the given n_jobs."""
    raw = reference_config().model_dump(mode="json")
    raw["cv"] |= {"n_jobs": n_jobs, "backend": "loky"}
    raw["models"] = {model: raw["models"][model]}
    if model == "random_forest":
        raw["models"][model]["params"]["n_estimators"] = 20
    return parse_params(raw)


@pytest.mark.parametrize("model", ["decision_tree", "random_forest"])
def test_best_candidate_is_the_one_gridsearchcv_refits(
    model: str, training_rows: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, target = training_rows
    params = small_params(model, n_jobs=1)
    result = train_model(model, params, features, target)

    pipeline, grid = build_pipeline(model, params.models[model], params.data)
    classes = sorted(pd.unique(target))
    reference = GridSearchCV(
        pipeline,
        param_grid=grid,
        scoring=cv_scorers("classification", classes, resolve_positive_label(classes, "Delayed")),
        refit=params.evaluate.metric,
        cv=make_cv(params),
        n_jobs=1,
    ).fit(features, target)

    expected = {k.removeprefix("model__"): v for k, v in reference.best_params_.items()}
    assert result.summary["best_params"] == expected
    np.testing.assert_array_equal(
        result.model.predict_proba(features), reference.best_estimator_.predict_proba(features)
    )


def test_a_forest_refits_on_every_core_and_keeps_its_configured_n_jobs(
    training_rows: tuple[pd.DataFrame, pd.Series],
) -> None:
    features, target = training_rows
    params = small_params("random_forest", n_jobs=2)
    pipeline, _ = build_pipeline("random_forest", params.models["random_forest"], params.data)
    best = {"model__max_depth": 8, "model__min_samples_leaf": 5}

    parallel = refit(pipeline, best, features, target, n_jobs=2)
    serial = refit(pipeline, best, features, target, n_jobs=1)

    assert parallel.named_steps["model"].n_jobs == 1  # what params.yaml configures
    assert parallel.named_steps["model"].max_depth == 8
    np.testing.assert_array_equal(parallel.predict_proba(features), serial.predict_proba(features))
    assert pipeline.named_steps["model"].n_jobs == 1  # the template pipeline is untouched
    with pytest.raises(AttributeError):
        pipeline.named_steps["model"].estimators_  # noqa: B018  (never fitted)


def test_released_cv_workers_exit_and_a_later_search_starts_new_ones() -> None:
    def worker_pids() -> set[int]:
        from joblib.externals.loky import reusable_executor

        executor = reusable_executor._executor
        return {p.pid for p in (executor._processes or {}).values()} if executor else set()

    def search() -> None:
        features, target = np.arange(40.0).reshape(20, 2), np.tile([0, 1], 10)
        GridSearchCV(
            DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2]}, cv=2, n_jobs=2
        ).fit(features, target)

    def running(pid: int) -> bool:
        try:  # checked in one call: the process may exit between two
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    search()
    workers = worker_pids()
    assert workers
    release_cv_workers()
    deadline = time.monotonic() + 30
    while any(running(pid) for pid in workers):
        assert time.monotonic() < deadline, "released workers still running after 30 s"
        time.sleep(0.1)
    search()  # a new pool, not an error about a shut-down executor
    assert worker_pids().isdisjoint(workers)
    release_cv_workers()
    release_cv_workers()  # idempotent


def test_train_stage_outputs_are_a_function_of_the_inputs(
    tmp_path, training_rows: tuple[pd.DataFrame, pd.Series]
) -> None:
    """Twice the same stage: the same files byte for byte (what DVC hashes), while how long it
    took goes beside them and counts only for the model file it was written with."""
    from construction_delays.tracking import matching_timings

    params = small_params("decision_tree", n_jobs=1)
    features, target = training_rows
    train_path = tmp_path / "train.parquet"
    features.assign(**{params.data.target: target}).to_parquet(train_path, index=False)

    runs = []
    for run in ("first", "second"):
        out_dir, timings_dir = tmp_path / run / "decision_tree", tmp_path / run / "timings"
        stages.train(
            params, "decision_tree", train_path, out_dir, timings_dir / "decision_tree.json"
        )
        runs.append((out_dir, timings_dir))
    (first, first_timings), (second, second_timings) = runs

    assert sorted(p.name for p in first.iterdir()) == [
        "cv_results.csv",
        "model.skops",
        "summary.json",
    ]
    for name in ("cv_results.csv", "model.skops", "summary.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert "time" not in (first / "cv_results.csv").read_text().splitlines()[0]

    timings = matching_timings(first_timings, first)
    assert timings is not None and timings["fit_seconds"] > 0
    grid = params.models["decision_tree"].grid
    assert len(timings["candidates"]) == int(np.prod([len(values) for values in grid.values()]))
    assert set(timings["candidates"][0]["params"]) == set(grid)
    assert matching_timings(second_timings, first) is not None  # same model bytes, same times apply

    (first / "model.skops").write_bytes(b"another model")  # e.g. restored from the run-cache
    assert matching_timings(first_timings, first) is None
    assert matching_timings(None, second) is None


def test_a_terminal_gets_live_bars_of_the_cv_fits_and_the_same_model(
    tmp_path, training_rows: tuple[pd.DataFrame, pd.Series]
) -> None:
    """In a terminal the train stage draws scikit-learn's progress bars, fed by the loky workers,
    instead of a ``[CV] END`` line per fit; what it saves is the same, byte for byte."""
    params = small_params("decision_tree", n_jobs=2)
    features, target = training_rows
    train_path = tmp_path / "train.parquet"
    features.assign(**{params.data.target: target}).to_parquet(train_path, index=False)
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(params.model_dump(mode="json")), encoding="utf-8")

    stages.train(params, "decision_tree", train_path, tmp_path / "logged", None)  # not a terminal
    shown = subprocess.run(
        [
            *(sys.executable, str(ROOT / "pipelines" / "train.py"), "--params", str(params_path)),
            *("--model", "decision_tree", "--train", str(train_path), "--out", "in_terminal"),
        ],
        cwd=tmp_path,
        env=os.environ | {"TTY_COMPATIBLE": "1", "COLUMNS": "100"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    assert "GridSearchCV - fit" in shown.stdout and "100%" in shown.stdout
    assert "[CV] END" not in shown.stdout
    for name in ("cv_results.csv", "model.skops", "summary.json"):
        logged = (tmp_path / "logged" / name).read_bytes()
        assert (tmp_path / "in_terminal" / name).read_bytes() == logged, name
