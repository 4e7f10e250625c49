"""The model zoo: estimator classes and grids come from params.yaml, checked before any fitting."""

from __future__ import annotations

import importlib
from typing import Any

from sklearn.base import BaseEstimator, is_classifier, is_regressor
from sklearn.model_selection import ParameterGrid
from sklearn.pipeline import Pipeline

from construction_delays.config import ConfigError, DataParams, ModelSpec
from construction_delays.features import build_preprocessor

MODEL_STEP = "model"


def resolve_estimator_class(name: str, spec: ModelSpec) -> type[BaseEstimator]:
    """Import ``spec.estimator``; the error names ``models.<name>.estimator`` on failure."""
    field = f"params.yaml: models.{name}.estimator"
    module_path, _, class_name = spec.estimator.rpartition(".")
    try:
        module = importlib.import_module(module_path)
    except ImportError:
        raise ConfigError(
            f"{field}: module {module_path!r} cannot be imported ({spec.estimator!r})"
        ) from None
    estimator_class = getattr(module, class_name, None)
    if estimator_class is None:
        raise ConfigError(f"{field}: {module_path!r} has no class {class_name!r}")
    if not (isinstance(estimator_class, type) and issubclass(estimator_class, BaseEstimator)):
        raise ConfigError(f"{field}: {spec.estimator!r} is not a scikit-learn estimator class")
    return estimator_class


def build_estimator(name: str, spec: ModelSpec, task: str) -> BaseEstimator:
    """Instantiate the estimator with its fixed params and check it suits the task and its grid."""
    estimator_class = resolve_estimator_class(name, spec)
    try:
        estimator = estimator_class(**spec.params)
    except TypeError as error:
        raise ConfigError(f"params.yaml: models.{name}.params: {error}") from None
    if task == "classification" and not is_classifier(estimator):
        raise ConfigError(
            f"params.yaml: models.{name}.estimator: {spec.estimator} is not a classifier"
        )
    if task == "regression" and not is_regressor(estimator):
        raise ConfigError(
            f"params.yaml: models.{name}.estimator: {spec.estimator} is not a regressor"
        )
    _check_params(name, estimator, spec)
    return estimator


def _check_params(name: str, estimator: BaseEstimator, spec: ModelSpec) -> None:
    """Reject unknown parameter names and values the estimator's own constraints refuse."""
    known = estimator.get_params(deep=True)
    for section, keys in (("params", spec.params), ("grid", spec.grid)):
        unknown = sorted(set(keys) - set(known))
        if unknown:
            raise ConfigError(
                f"params.yaml: models.{name}.{section}: unknown parameter(s) {unknown} for "
                f"{spec.estimator}; valid ones include {sorted(known)[:12]}"
            )
    validate = getattr(estimator, "_validate_params", None)
    if validate is None:  # not every third-party estimator declares constraints
        return
    try:
        validate()
    except (ValueError, TypeError) as error:
        raise ConfigError(f"params.yaml: models.{name}.params: {error}") from None
    for candidate in ParameterGrid(spec.grid or {}):
        probe = estimator.__class__(**{**spec.params, **candidate})
        try:
            probe._validate_params()
        except (ValueError, TypeError) as error:
            raise ConfigError(f"params.yaml: models.{name}.grid {candidate}: {error}") from None


def build_pipeline(
    name: str, spec: ModelSpec, data: DataParams
) -> tuple[Pipeline, dict[str, list[Any]]]:
    """The full training pipeline (preprocessing + estimator) and the grid in pipeline terms."""
    estimator = build_estimator(name, spec, data.task)
    pipeline = Pipeline(
        [
            ("preprocess", build_preprocessor(data.numeric_features, data.categorical_features)),
            (MODEL_STEP, estimator),
        ]
    )
    grid = {f"{MODEL_STEP}__{key}": list(values) for key, values in spec.grid.items()}
    return pipeline, grid
