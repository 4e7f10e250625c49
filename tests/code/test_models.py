"""The model zoo: estimator specs are imported and checked (task, parameter names, values) up front."""

from __future__ import annotations

from typing import Any

import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from construction_delays.config import ConfigError, DataParams, ModelSpec, load_params
from construction_delays.models import build_estimator, build_pipeline
from construction_delays.sample_data import generate

from tests.conftest import ROOT, reference_config


@pytest.fixture(scope="module")
def data_params() -> DataParams:
    return reference_config().data


@pytest.mark.parametrize(
    ("spec", "task", "message"),
    [
        (
            {"estimator": "no_such_package.Model"},
            "classification",
            r"^params\.yaml: models\.zoo\.estimator: module 'no_such_package' cannot be imported",
        ),
        (
            {"estimator": "sklearn.tree.NoSuchTree"},
            "classification",
            r"^params\.yaml: models\.zoo\.estimator: 'sklearn\.tree' has no class 'NoSuchTree'",
        ),
        (
            {"estimator": "collections.OrderedDict"},
            "classification",
            r"^params\.yaml: models\.zoo\.estimator: 'collections\.OrderedDict' is not a scikit-learn estimator",
        ),
        (
            {"estimator": "sklearn.metrics.f1_score"},
            "classification",
            r"^params\.yaml: models\.zoo\.estimator: 'sklearn\.metrics\.f1_score' is not a scikit-learn estimator",
        ),
        (
            {"estimator": "sklearn.linear_model.Ridge"},
            "classification",
            r"^params\.yaml: models\.zoo\.estimator: sklearn\.linear_model\.Ridge is not a classifier",
        ),
        (
            {"estimator": "sklearn.tree.DecisionTreeClassifier"},
            "regression",
            r"^params\.yaml: models\.zoo\.estimator: .*DecisionTreeClassifier is not a regressor",
        ),
        (
            {"estimator": "sklearn.tree.DecisionTreeClassifier", "grid": {"depth": [2, 4]}},
            "classification",
            r"^params\.yaml: models\.zoo\.grid: unknown parameter\(s\) \['depth'\].*'max_depth'",
        ),
        (
            {"estimator": "sklearn.tree.DecisionTreeClassifier", "params": {"depth": 3}},
            "classification",
            r"^params\.yaml: models\.zoo\.params: .*unexpected keyword argument 'depth'",
        ),
        (
            {"estimator": "sklearn.tree.DecisionTreeClassifier", "grid": {"max_depth": [3, -1]}},
            "classification",
            r"^params\.yaml: models\.zoo\.grid \{'max_depth': -1\}: The 'max_depth' parameter",
        ),
        (
            {
                "estimator": "sklearn.linear_model.LogisticRegression",
                "grid": {"C": [1.0], "solver": ["lbfgs", "no-such-solver"]},
            },
            "classification",
            r"^params\.yaml: models\.zoo\.grid \{'C': 1\.0, 'solver': 'no-such-solver'\}: ",
        ),
    ],
    ids=[
        "unknown-module",
        "unknown-class",
        "not-an-estimator-class",
        "function-not-class",
        "regressor-for-classification",
        "classifier-for-regression",
        "unknown-grid-parameter",
        "unknown-fixed-parameter",
        "invalid-grid-value",
        "invalid-grid-value-in-combination",
    ],
)
def test_bad_spec_is_a_config_error_naming_the_field(
    spec: dict[str, Any], task: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_estimator("zoo", ModelSpec(**spec), task)


def test_invalid_fixed_param_value_names_params_not_grid() -> None:
    spec = ModelSpec(
        estimator="sklearn.tree.DecisionTreeClassifier",
        params={"max_depth": -1},
        grid={"min_samples_leaf": [1, 5]},
    )
    with pytest.raises(ConfigError, match=r"^params\.yaml: models\.zoo\.params: .*'max_depth'"):
        build_estimator("zoo", spec, "classification")


def test_valid_spec_builds_configured_estimator() -> None:
    spec = ModelSpec(
        estimator="sklearn.tree.DecisionTreeRegressor",
        params={"random_state": 7, "min_samples_leaf": 3},
        grid={"max_depth": [2, None]},
    )
    estimator = build_estimator("tree", spec, "regression")

    assert type(estimator) is DecisionTreeRegressor
    assert estimator.get_params()["random_state"] == 7
    assert estimator.get_params()["min_samples_leaf"] == 3


def test_build_pipeline_prefixes_grid_with_model_step(data_params: DataParams) -> None:
    spec = ModelSpec(
        estimator="sklearn.linear_model.LogisticRegression",
        params={"max_iter": 300},
        grid={"C": [0.1, 1.0], "class_weight": [None, "balanced"]},
    )
    pipeline, grid = build_pipeline("logistic_regression", spec, data_params)

    assert isinstance(pipeline, Pipeline)
    assert [name for name, _ in pipeline.steps] == ["preprocess", "model"]
    assert isinstance(pipeline.named_steps["preprocess"], ColumnTransformer)
    model = pipeline.named_steps["model"]
    assert isinstance(model, LogisticRegression)
    assert model.max_iter == 300
    assert grid == {"model__C": [0.1, 1.0], "model__class_weight": [None, "balanced"]}
    # The keys are real parameters of the pipeline: GridSearchCV can set them.
    candidate = clone(pipeline).set_params(**{key: values[-1] for key, values in grid.items()})
    assert candidate.named_steps["model"].C == 1.0
    assert candidate.named_steps["model"].class_weight == "balanced"


def test_built_pipeline_fits_raw_features(data_params: DataParams) -> None:
    frame = generate(rows=120, seed=3)
    spec = ModelSpec(estimator="sklearn.tree.DecisionTreeClassifier", params={"max_depth": 3})
    pipeline, grid = build_pipeline("decision_tree", spec, data_params)

    assert grid == {}
    pipeline.fit(frame[data_params.feature_columns], frame[data_params.target])
    assert isinstance(pipeline.named_steps["model"], DecisionTreeClassifier)
    assert set(pipeline.predict(frame[data_params.feature_columns])) <= {
        "Delayed",
        "On Schedule",
    }


def test_every_enabled_model_of_shipped_params_builds() -> None:
    params = load_params(ROOT / "params.yaml")
    for name, spec in params.enabled_models.items():
        pipeline, grid = build_pipeline(name, spec, params.data)
        assert all(key.startswith("model__") for key in grid), name
        assert set(grid) <= set(pipeline.get_params()), name
