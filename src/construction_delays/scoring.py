"""Scoring with a trained pipeline: load it (registry or file, never pickle), predict fast, score files.

Shared by the REST server (:mod:`construction_delays.serving`) and ``mlops score``:

- :func:`load_scorer` resolves ``models:/name@alias``, ``models:/name/3`` or a local ``.skops``
  file/directory, downloads the registered model's artifacts with MLflow, loads its skops file
  with :func:`construction_delays.persistence.load_model` (trusted-types rule) and gathers the
  metadata (version, run, git commit, test metrics, feature schema).
- :class:`Predictor` runs the fitted pipeline. For the common shape (a ``ColumnTransformer`` of
  imputers, scalers and one-hot encoders, then any estimator) it applies the fitted parameters
  with NumPy instead of going through scikit-learn's per-call validation, which costs more than
  the arithmetic on small requests, and it sums a forest's trees without joblib. At load time the
  fast path is checked against the scikit-learn pipeline on probe rows (missing values, unseen
  categories); any difference and the plain pipeline is used instead.
- :func:`score_file` scores a CSV/Parquet file in chunks (bounded memory) with the same checks
  as the REST API and writes predictions atomically.
"""

from __future__ import annotations

import contextlib
import math
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from construction_delays.config import TABLE_FORMATS, Params, table_format
from construction_delays.data import CSV_MISSING_VALUES, categories_as_text, unreadable
from construction_delays.errors import ProjectError
from construction_delays.files import plain_value

NUMERIC_SIGNATURE_TYPES = frozenset({"double", "float", "long", "integer"})
CATEGORICAL_SIGNATURE_TYPES = frozenset({"string"})
PROBE_ROWS = 64
MAX_ROWS_LISTED = 10
# Below this many rows a forest's trees are summed in this thread; above it the estimator's own
# predict_proba runs (and honours its n_jobs).
SMALL_BATCH = 2048

ColumnArrays = dict[str, np.ndarray]


class ModelSourceError(ProjectError, ValueError):
    """The model to serve or score cannot be found or loaded; the message names it."""


class ScoringInputError(ProjectError, ValueError):
    """The file to score cannot be used; the message names the file, columns and rows."""


# --------------------------------------------------------------------------------------------
# Feature schema
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureSchema:
    """The columns the model needs, in training order, split by kind."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    source: str

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "columns": [
                *({"name": c, "type": "number", "nullable": True} for c in self.numeric),
                *({"name": c, "type": "string", "nullable": True} for c in self.categorical),
            ],
        }

    @classmethod
    def from_params(cls, params: Params) -> FeatureSchema:
        data = params.data
        return cls(data.numeric_features, data.categorical_features, "params.yaml")

    @classmethod
    def from_signature(cls, inputs: Sequence[Mapping[str, Any]], where: str) -> FeatureSchema:
        """Schema from an MLflow signature's input column specs (``{"name", "type"}`` dicts)."""
        numeric: list[str] = []
        categorical: list[str] = []
        for spec in inputs:
            name, kind = spec.get("name"), spec.get("type")
            if name is None:
                raise ModelSourceError(f"{where}: the signature has an unnamed input column")
            if kind in NUMERIC_SIGNATURE_TYPES:
                numeric.append(name)
            elif kind in CATEGORICAL_SIGNATURE_TYPES:
                categorical.append(name)
            else:
                raise ModelSourceError(
                    f"{where}: input column {name!r} has signature type {kind!r};"
                    " only numbers and strings are supported"
                )
        return cls(tuple(numeric), tuple(categorical), "mlflow signature")


# --------------------------------------------------------------------------------------------
# Inputs as column arrays (the one representation both REST and batch hand to the predictor)
# --------------------------------------------------------------------------------------------


def _as_categorical(values: np.ndarray) -> np.ndarray:
    """Object array with ``NaN`` for missing values, as the training data had (not ``None``)."""
    values = np.asarray(values, dtype=object)
    missing = pd.isna(values)
    if missing.any():
        values = values.copy()
        values[missing] = np.nan
    return values


def columns_from_records(
    records: Sequence[Mapping[str, Any]], schema: FeatureSchema
) -> ColumnArrays:
    """Column arrays from validated records (numbers or None; strings or None)."""
    columns: ColumnArrays = {
        name: np.array([record[name] for record in records], dtype=np.float64)
        for name in schema.numeric
    }
    for name in schema.categorical:
        columns[name] = _as_categorical(
            np.array([record[name] for record in records], dtype=object)
        )
    return columns


def frame_from_columns(columns: ColumnArrays, schema: FeatureSchema) -> pd.DataFrame:
    return pd.DataFrame({name: columns[name] for name in schema.columns}, copy=False)


# --------------------------------------------------------------------------------------------
# Fast path: fitted preprocessing applied with NumPy, forests summed without joblib
# --------------------------------------------------------------------------------------------

Step = Callable[[np.ndarray], np.ndarray]


def _imputer_step(imputer: Any) -> Step | None:
    from sklearn.utils._missing import is_scalar_nan

    if not is_scalar_nan(imputer.missing_values) or imputer.add_indicator:
        return None
    statistics = np.asarray(imputer.statistics_)
    if pd.isna(statistics).any():  # sklearn would drop all-missing features: not handled here
        return None

    def impute(x: np.ndarray) -> np.ndarray:
        mask = pd.isna(x)
        if not mask.any():
            return x
        return np.where(mask, statistics[np.newaxis, :].astype(x.dtype), x)

    return impute


def _scaler_step(scaler: Any) -> Step | None:
    mean = scaler.mean_ if scaler.with_mean else None
    scale = scaler.scale_ if scaler.with_std else None

    def standardise(x: np.ndarray) -> np.ndarray:
        x = np.array(x, dtype=np.float64)
        if mean is not None:
            x -= mean
        if scale is not None:
            x /= scale
        return x

    return standardise


def _one_hot_step(encoder: Any) -> Step | None:
    if (
        encoder.drop_idx_ is not None
        or getattr(encoder, "_infrequent_enabled", False)
        or encoder.handle_unknown not in ("ignore", "infrequent_if_exist")
        or getattr(encoder, "sparse_output_", encoder.sparse_output)
    ):
        return None
    categories = list(encoder.categories_)
    if not all(all(isinstance(v, str) for v in c) for c in categories):
        return None
    indexes = [pd.Index(np.asarray(c, dtype=object), dtype=object) for c in categories]
    offsets = np.cumsum([0, *(len(c) for c in categories)])
    dtype = encoder.dtype

    def encode(x: np.ndarray) -> np.ndarray:
        out = np.zeros((x.shape[0], int(offsets[-1])), dtype=dtype)
        rows = np.arange(x.shape[0])
        for j, index in enumerate(indexes):
            codes = index.get_indexer(x[:, j])
            known = codes >= 0
            out[rows[known], offsets[j] + codes[known]] = 1
        return out

    return encode


def _compile_step(step: Any) -> Step | None:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    compilers: dict[type, Callable[[Any], Step | None]] = {
        SimpleImputer: _imputer_step,
        StandardScaler: _scaler_step,
        OneHotEncoder: _one_hot_step,
    }
    compiler = compilers.get(type(step))
    return compiler(step) if compiler else None


def compile_preprocessor(
    preprocessor: Any, schema: FeatureSchema
) -> Callable[[ColumnArrays], np.ndarray] | None:
    """A NumPy version of a fitted ``ColumnTransformer``, or None if it has unsupported parts."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(preprocessor, ColumnTransformer) or preprocessor.sparse_output_:
        return None
    blocks: list[tuple[list[str], list[Step], type]] = []
    for name, transformer, columns in preprocessor.transformers_:
        if isinstance(transformer, str):
            if transformer == "drop":
                continue
            return None  # passthrough
        if not isinstance(columns, list | tuple) or not all(c in schema.columns for c in columns):
            return None
        steps = (
            [s for _, s in transformer.steps]
            if isinstance(transformer, Pipeline)
            else [transformer]
        )
        compiled = [_compile_step(s) for s in steps]
        if any(c is None for c in compiled) or name == "remainder":
            return None
        kind = np.float64 if all(c in schema.numeric for c in columns) else object
        blocks.append((list(columns), [c for c in compiled if c is not None], kind))

    def transform(arrays: ColumnArrays) -> np.ndarray:
        outputs = []
        for columns, steps, kind in blocks:
            x = np.column_stack([arrays[c] for c in columns]).astype(kind, copy=False)
            for step in steps:
                x = step(x)
            outputs.append(x)
        return np.hstack(outputs).astype(np.float64, copy=False)

    return transform


def _argmax_is_predict(estimator: Any) -> bool:
    """True for estimators whose ``predict`` is the most probable class of ``predict_proba``."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
    )
    from sklearn.ensemble._forest import ForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import BaseDecisionTree

    families = (
        ForestClassifier,
        BaseDecisionTree,
        HistGradientBoostingClassifier,
        GradientBoostingClassifier,
        LogisticRegression,
        CalibratedClassifierCV,
    )
    return isinstance(estimator, families)


@dataclass
class Prediction:
    labels: np.ndarray
    probabilities: np.ndarray | None  # (n, n_classes) for classifiers with predict_proba


@dataclass
class Predictor:
    """Predictions (and class probabilities) from a fitted scikit-learn pipeline."""

    pipeline: Any
    schema: FeatureSchema
    classes: list[Any] | None = None
    fast_path: bool = False
    fast_path_note: str = ""
    _transform: Callable[[ColumnArrays], np.ndarray] | None = field(default=None, repr=False)
    _estimator: Any = field(default=None, repr=False)
    _trees: list[Any] | None = field(default=None, repr=False)
    _argmax: bool = field(default=False, repr=False)

    @classmethod
    def build(cls, pipeline: Any, schema: FeatureSchema) -> Predictor:
        from sklearn.base import is_classifier

        classes = list(pipeline.classes_) if is_classifier(pipeline) else None
        predictor = cls(pipeline, schema, classes)
        if not hasattr(pipeline, "steps") or len(pipeline.steps) != 2:
            predictor.fast_path_note = "not a (preprocess, estimator) pipeline"
            return predictor
        transform = compile_preprocessor(pipeline.steps[0][1], schema)
        if transform is None:
            predictor.fast_path_note = "preprocessing has steps without a fast path"
            return predictor
        predictor._enable_fast_path(transform, pipeline.steps[-1][1])
        problem = predictor._check_against_pipeline()
        if problem:
            predictor._disable_fast_path(problem)
        return predictor

    def _enable_fast_path(
        self, transform: Callable[[ColumnArrays], np.ndarray], estimator: Any
    ) -> None:
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

        self._transform, self._estimator, self.fast_path = transform, estimator, True
        self._argmax = self.classes is not None and _argmax_is_predict(estimator)
        if (
            isinstance(estimator, RandomForestClassifier | ExtraTreesClassifier)
            and estimator.n_outputs_ == 1
        ):
            self._trees = list(estimator.estimators_)
        self.fast_path_note = "numpy preprocessing" + (
            ", forest summed in-thread" if self._trees else ""
        )

    def _disable_fast_path(self, reason: str) -> None:
        self._transform = self._estimator = self._trees = None
        self.fast_path, self._argmax = False, False
        self.fast_path_note = reason

    def _check_against_pipeline(self) -> str:
        """'' if the fast path reproduces the pipeline on probe rows, else what differed."""
        probes = probe_columns(self.pipeline.steps[0][1], self.schema, PROBE_ROWS)
        frame = frame_from_columns(probes, self.schema)
        try:
            fast = self.predict(probes)
        except Exception as error:  # the fallback must stay available whatever breaks
            return f"fast path failed on probe rows ({type(error).__name__}: {error})"
        reference = self._predict_with_pipeline(frame)
        if not np.array_equal(fast.labels, reference.labels):
            return "fast path labels differ from the pipeline on probe rows"
        if fast.probabilities is not None and not np.allclose(
            fast.probabilities, reference.probabilities, rtol=0, atol=1e-12
        ):
            return "fast path probabilities differ from the pipeline on probe rows"
        return ""

    def predict(self, columns: ColumnArrays) -> Prediction:
        """Predict for column arrays (see :func:`columns_from_records`)."""
        if self._transform is None:
            return self._predict_with_pipeline(frame_from_columns(columns, self.schema))
        features = self._transform(columns)
        estimator = self._estimator
        if self.classes is None or not hasattr(estimator, "predict_proba"):
            return Prediction(np.asarray(estimator.predict(features)), None)
        probabilities = self._probabilities(features)
        if self._argmax:
            labels = np.asarray(estimator.classes_).take(np.argmax(probabilities, axis=1))
        else:
            labels = np.asarray(estimator.predict(features))
        return Prediction(labels, probabilities)

    def _probabilities(self, features: np.ndarray) -> np.ndarray:
        if self._trees is None or len(features) > SMALL_BATCH:
            return np.asarray(self._estimator.predict_proba(features))
        # Exactly ForestClassifier.predict_proba (float32 input, float64 sum in tree order, then
        # the mean) minus joblib and the per-tree input checks; verified at load time.
        x = np.ascontiguousarray(features, dtype=np.float32)
        width = len(self.classes or ())
        total = np.zeros((x.shape[0], width), dtype=np.float64)
        for tree in self._trees:
            total += tree.tree_.predict(x)[:, :width]
        total /= len(self._trees)
        return total

    def _predict_with_pipeline(self, frame: pd.DataFrame) -> Prediction:
        pipeline = self.pipeline
        if self.classes is None or not hasattr(pipeline, "predict_proba"):
            return Prediction(np.asarray(pipeline.predict(frame)), None)
        return Prediction(
            np.asarray(pipeline.predict(frame)), np.asarray(pipeline.predict_proba(frame))
        )


def probe_columns(preprocessor: Any, schema: FeatureSchema, rows: int) -> ColumnArrays:
    """Deterministic probe rows around the fitted statistics: typical values, missing values,
    extremes and unseen categories (what the fast path must treat exactly like scikit-learn)."""
    rng = np.random.default_rng(0)
    centre, spread = _numeric_reference(preprocessor, schema)
    columns: ColumnArrays = {}
    for name in schema.numeric:
        values = centre.get(name, 0.0) + spread.get(name, 1.0) * rng.normal(0, 2, rows)
        values[rng.random(rows) < 0.15] = np.nan
        values[0] = 1e9
        columns[name] = values
    known = _known_categories(preprocessor, schema)
    for name in schema.categorical:
        choices = [*known.get(name, []), "__unseen__", None]
        columns[name] = _as_categorical(
            np.array([choices[i % len(choices)] for i in rng.permutation(rows)], dtype=object)
        )
    return columns


def _fitted_steps(preprocessor: Any) -> Iterator[tuple[list[str], Any]]:
    from sklearn.pipeline import Pipeline

    for _, transformer, columns in getattr(preprocessor, "transformers_", []):
        if isinstance(transformer, str) or not isinstance(columns, list | tuple):
            continue
        steps = (
            [s for _, s in transformer.steps]
            if isinstance(transformer, Pipeline)
            else [transformer]
        )
        for step in steps:
            yield list(columns), step


def _numeric_reference(
    preprocessor: Any, schema: FeatureSchema
) -> tuple[dict[str, float], dict[str, float]]:
    centre: dict[str, float] = {}
    spread: dict[str, float] = {}
    for columns, step in _fitted_steps(preprocessor):
        if hasattr(step, "mean_") and step.mean_ is not None:
            centre.update(zip(columns, map(float, step.mean_), strict=False))
        if getattr(step, "scale_", None) is not None:
            spread.update(zip(columns, map(float, step.scale_), strict=False))
    return centre, spread


def _known_categories(preprocessor: Any, schema: FeatureSchema) -> dict[str, list[str]]:
    known: dict[str, list[str]] = {}
    for columns, step in _fitted_steps(preprocessor):
        if hasattr(step, "categories_"):
            known.update(
                {
                    c: [str(v) for v in cats]
                    for c, cats in zip(columns, step.categories_, strict=False)
                }
            )
    return known


# --------------------------------------------------------------------------------------------
# Loading: registry (models:/...) or a local skops file
# --------------------------------------------------------------------------------------------


@dataclass
class Scorer:
    """A loaded model ready to predict, with what to tell clients about it."""

    predictor: Predictor
    metadata: dict[str, Any]

    @property
    def schema(self) -> FeatureSchema:
        return self.predictor.schema

    @property
    def classes(self) -> list[Any] | None:
        return self.predictor.classes


def default_model_uri(params: Params) -> str:
    return f"models:/{params.mlflow.registered_model}@champion"


def parse_registry_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/name@alias`` -> (name, alias, None); ``models:/name/3`` -> (name, None, '3')."""
    rest = uri.removeprefix("models:/").strip("/")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        if name and alias and "/" not in name:
            return name, alias, None
    else:
        name, _, version = rest.rpartition("/")
        if name and version.isdigit() and "/" not in name:
            return name, None, version
    raise ModelSourceError(
        f"{uri}: expected models:/<name>@<alias> or models:/<name>/<version>"
        " (e.g. models:/my-model@champion)"
    )


def load_scorer(source: str | None, root: Path, params: Params) -> Scorer:
    """Load the model named by ``source`` (default: the registered model's ``@champion``)."""
    source = source or default_model_uri(params)
    if source.startswith("models:/"):
        pipeline, schema, metadata = _load_registered(source, root, params)
    else:
        pipeline, schema, metadata = _load_local(Path(source), root, params)
    predictor = Predictor.build(pipeline, schema)
    metadata.update(
        task="classification" if predictor.classes is not None else "regression",
        classes=[plain_value(c) for c in predictor.classes]
        if predictor.classes is not None
        else None,
        features=schema.to_dict(),
        fast_path=predictor.fast_path,
        fast_path_note=predictor.fast_path_note,
    )
    return Scorer(predictor, metadata)


def _load_registered(
    uri: str, root: Path, params: Params
) -> tuple[Any, FeatureSchema, dict[str, Any]]:
    import logging

    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from construction_delays.tracking import redact, store_errors, use_store

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    name, alias, version = parse_registry_uri(uri)
    store = use_store(root)
    client = MlflowClient()
    with store_errors(store):
        # A store that cannot answer at all is not the same mistake as a model not found in it.
        client.search_registered_models(max_results=1)
    try:
        found = (
            client.get_model_version_by_alias(name, alias)
            if alias
            else client.get_model_version(name, version)
        )
        run = client.get_run(found.run_id) if found.run_id else None
    except MlflowException as error:
        raise ModelSourceError(
            f"{uri}: not found in the registry at {redact(store)} ({error.message.splitlines()[0]});"
            " train and promote a model first (`mlops run`, `mlops promote`) or pass --model"
        ) from None
    with tempfile.TemporaryDirectory(prefix="mlops-serve-") as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{found.version}", dst_path=tmp
            )
        )
        pipeline, signature_inputs = _load_mlflow_model_dir(local, uri)
    schema = (
        FeatureSchema.from_signature(signature_inputs, uri)
        if signature_inputs
        else FeatureSchema.from_params(params)
    )
    tags = {**(found.tags or {}), **(run.data.tags if run else {})}
    metrics = run.data.metrics if run else {}
    metadata = {
        "source": uri,
        "name": name,
        "version": int(found.version),
        "alias": alias,
        "aliases": list(getattr(found, "aliases", []) or []),
        "run_id": found.run_id,
        "git_sha": tags.get("git.commit"),
        "model_type": tags.get("best_model"),
        "test_metrics": {
            k.removeprefix("test_"): v for k, v in sorted(metrics.items()) if k.startswith("test_")
        },
        "tracking_uri": redact(store),
    }
    return pipeline, schema, metadata


def _load_mlflow_model_dir(local: Path, uri: str) -> tuple[Any, list[dict[str, Any]]]:
    """The pipeline (from its skops file) and the signature's input specs of an MLflow model dir."""
    import json

    import yaml

    from construction_delays.persistence import load_model

    mlmodel_path = local / "MLmodel"
    if not mlmodel_path.is_file():
        raise ModelSourceError(f"{uri}: the downloaded artifacts have no MLmodel file")
    mlmodel = yaml.safe_load(mlmodel_path.read_text(encoding="utf-8")) or {}
    flavor = (mlmodel.get("flavors") or {}).get("sklearn") or {}
    if flavor.get("serialization_format") != "skops":
        raise ModelSourceError(
            f"{uri}: the model is stored as {flavor.get('serialization_format')!r}, not skops;"
            " refusing to unpickle it (re-log it with serialization_format='skops')"
        )
    pipeline = load_model(local / flavor.get("pickled_model", "model.skops"))
    inputs = (mlmodel.get("signature") or {}).get("inputs")
    return pipeline, json.loads(inputs) if inputs else []


def _resolve_local(path: Path) -> Path:
    if path.is_dir():
        candidates = sorted(path.glob("*.skops"))
        if len(candidates) != 1:
            raise ModelSourceError(
                f"{path}: expected exactly one .skops file in the directory, found {len(candidates)}"
            )
        return candidates[0]
    if not path.is_file():
        raise ModelSourceError(
            f"{path}: model file not found (train with `mlops run`, or pass models:/name@alias)"
        )
    if path.suffix != ".skops":
        raise ModelSourceError(f"{path}: expected a .skops file; pickled models are not loaded")
    return path


def _load_local(
    path: Path, root: Path, params: Params
) -> tuple[Any, FeatureSchema, dict[str, Any]]:
    from construction_delays.persistence import load_model
    from construction_delays.tracking import file_digest

    model_file = _resolve_local(path)
    pipeline = load_model(model_file)
    metadata = {
        "source": str(model_file),
        "name": model_file.parent.name,
        "version": None,
        "alias": None,
        "aliases": [],
        "run_id": None,
        "git_sha": None,
        "model_type": model_file.parent.name,
        "sha256_16": file_digest(model_file),
        "test_metrics": _local_test_metrics(root, model_file.parent.name),
    }
    return pipeline, FeatureSchema.from_params(params), metadata


def _local_test_metrics(root: Path, name: str) -> dict[str, float]:
    """Test metrics of model ``name`` from the last evaluation (reports/metrics.json), if any."""
    import json

    metrics_file = root / "reports" / "metrics.json"
    try:
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        return dict(metrics["models"][name]["test"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


# --------------------------------------------------------------------------------------------
# Batch scoring
# --------------------------------------------------------------------------------------------


@dataclass
class ChunkProblem:
    column: str
    message: str
    rows: list[int]
    count: int


def validate_chunk(
    frame: pd.DataFrame, schema: FeatureSchema, first_row: int
) -> tuple[ColumnArrays, list[ChunkProblem]]:
    """Column arrays for the model from a chunk, and the problems (rows numbered from 0 in the file)."""
    columns: ColumnArrays = {}
    problems: list[ChunkProblem] = []
    for name in schema.numeric:
        series = frame[name]
        values = (
            series.to_numpy(dtype=np.float64, na_value=np.nan)
            if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
            else pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        )
        bad = (np.isnan(values) & series.notna().to_numpy()) | np.isinf(values)
        if bad.any():
            positions = np.flatnonzero(bad)
            distinct = pd.unique(series.iloc[positions[:MAX_ROWS_LISTED]])[:3]
            sample = ", ".join(repr(v) for v in distinct.tolist())
            problems.append(
                ChunkProblem(
                    name,
                    f"values that are not finite numbers: e.g. {sample}",
                    [int(first_row + p) for p in positions[:MAX_ROWS_LISTED]],
                    int(bad.sum()),
                )
            )
        columns[name] = values
    for name in schema.categorical:
        # Text as training saw it, e.g. a Parquet file's float codes 3.0 as "3" (category_text).
        columns[name] = categories_as_text(frame[name])
    return columns, problems


def describe_problems(path: Path, problems: list[ChunkProblem]) -> str:
    merged: dict[tuple[str, str], ChunkProblem] = {}
    for problem in problems:
        key = (problem.column, problem.message.split(":")[0])
        if key in merged:
            seen = merged[key]
            seen.rows = (seen.rows + problem.rows)[:MAX_ROWS_LISTED]
            seen.count += problem.count
        else:
            merged[key] = ChunkProblem(
                problem.column, problem.message, list(problem.rows), problem.count
            )
    lines = [f"{path}: {len(merged)} problem(s); nothing was written"]
    for problem in merged.values():
        more = (
            f" and {problem.count - len(problem.rows)} more"
            if problem.count > len(problem.rows)
            else ""
        )
        rows = ", ".join(map(str, problem.rows))
        lines.append(
            f"  - column {problem.column!r}: {problem.message} (rows {rows}{more}; row 0 is the first data row)"
        )
    return "\n".join(lines)


def _input_columns(path: Path) -> list[str]:
    try:
        if table_format(path) == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        return list(pd.read_csv(path, nrows=0).columns)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ScoringInputError(unreadable(path, error, "cannot be read")) from None


def check_input_file(path: Path, needed: list[str], id_column: str | None) -> None:
    if table_format(path) is None:
        raise ScoringInputError(f"{path}: expected a {TABLE_FORMATS} file")
    if not path.is_file():
        raise ScoringInputError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise ScoringInputError(f"{path}: file is empty")
    present = _input_columns(path)
    missing = [c for c in needed if c not in present]
    if missing:
        raise ScoringInputError(
            f"{path}: missing column(s) {missing}; the model needs {needed}"
            f" (the file has {present})"
        )
    if id_column and id_column not in present:
        raise ScoringInputError(
            f"{path}: no column {id_column!r} for --id-column (the file has {present})"
        )


OUTPUT_COLUMNS = ("row", "prediction")  # and probability_<class>: see prediction_table


def check_output_file(output_path: Path, input_path: Path, id_column: str | None) -> None:
    """Refuse, before any work, an output that would destroy the input or cannot be written."""
    if not output_path.name.lower().endswith((".csv", ".parquet")):
        raise ScoringInputError(f"{output_path}: the output must be a .csv or .parquet file")
    if output_path.resolve() == input_path.resolve():
        raise ScoringInputError(
            f"{output_path}: is the input file; write the predictions to another file"
        )
    if output_path.is_dir():
        raise ScoringInputError(f"{output_path}: is a directory; name a file in it")
    blocking = next((p for p in output_path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ScoringInputError(f"{output_path}: {blocking} is a file, not a directory")
    if id_column and (id_column in OUTPUT_COLUMNS or id_column.startswith("probability_")):
        raise ScoringInputError(
            f"--id-column {id_column!r}: the output has its own {id_column!r} column;"
            " rename the id column in the input"
        )


def count_rows(path: Path) -> int | None:
    """Rows in the file for the progress bar (CSV: newline count, quoted newlines aside; None for
    a compressed CSV, whose bytes say nothing about its lines)."""
    if table_format(path) == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    if not path.name.lower().endswith(".csv"):
        return None
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(lines - 1 + (last != b"\n"), 0)


def read_chunks(
    path: Path, columns: list[str], categorical: Sequence[str], chunk_size: int
) -> Iterator[pd.DataFrame]:
    """The needed columns of a CSV/Parquet file, ``chunk_size`` rows at a time (pandas reader;
    slower than :func:`read_csv_fast` but it reads any text, so it can report every bad value)."""
    if table_format(path) == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size, columns=columns):
            yield batch.to_pandas()
        return
    dtypes = dict.fromkeys(categorical, str)
    try:
        yield from pd.read_csv(path, usecols=columns, dtype=dtypes, chunksize=chunk_size)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise ScoringInputError(unreadable(path, error)) from None


def read_csv_fast(
    path: Path, columns: list[str], schema: FeatureSchema, chunk_size: int
) -> Iterator[pd.DataFrame]:
    """CSV chunks of ``chunk_size`` rows through pyarrow's streaming, multi-threaded parser, with
    numeric columns parsed straight to float64. Raises ``pyarrow.ArrowInvalid`` on a value that
    is not a number (the caller then re-reads with pandas to list every problem)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    types = {name: pa.float64() for name in schema.numeric}
    types.update({name: pa.string() for name in schema.categorical})
    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=8 << 20),
        convert_options=pcsv.ConvertOptions(
            include_columns=columns,
            column_types=types,
            strings_can_be_null=True,
            null_values=list(CSV_MISSING_VALUES),
        ),
    )
    pending: list[Any] = []
    size = 0
    for batch in reader:
        pending.append(batch)
        size += batch.num_rows
        while size >= chunk_size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_size).to_pandas()
            rest = table.slice(chunk_size)
            pending, size = rest.to_batches(), rest.num_rows
    if size:
        yield pa.Table.from_batches(pending).to_pandas()


def prefetch(chunks: Iterator[pd.DataFrame], depth: int = 1) -> Iterator[pd.DataFrame]:
    """Read the next chunk in a thread while the current one is predicted (parsing and the
    trees' Cython loops release the GIL, so the two overlap on a second core)."""
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def reader() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                slots.put(("chunk", chunk))
            slots.put(("end", None))
        except BaseException as error:  # handed to the consumer, re-raised there
            slots.put(("error", error))

    thread = threading.Thread(target=reader, name="score-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.05)


def prediction_table(
    prediction: Prediction, classes: list[Any] | None, ids: pd.Series | np.ndarray, id_name: str
) -> Any:
    """A pyarrow table: id (or row), prediction, probability_<class>..."""
    import pyarrow as pa

    data: dict[str, Any] = {id_name: ids, "prediction": prediction.labels}
    if prediction.probabilities is not None and classes is not None:
        for index, label in enumerate(classes):
            data[f"probability_{label}"] = prediction.probabilities[:, index]
    return pa.table({k: pa.array(np.asarray(v)) for k, v in data.items()})


class _TableWriter:
    """Streams pyarrow tables to a CSV or Parquet file (format from the suffix)."""

    def __init__(self, path: Path, target: Path) -> None:
        self.path, self.target, self._writer = path, target, None

    def write(self, table: Any) -> None:
        if self._writer is None:
            if table_format(self.target) == "parquet":
                import pyarrow.parquet as pq

                self._writer = pq.ParquetWriter(self.path, table.schema)
            else:
                import pyarrow.csv as pcsv

                self._writer = pcsv.CSVWriter(self.path, table.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@dataclass
class ScoreSummary:
    input: str
    output: str
    rows: int
    seconds: float
    chunks: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else math.inf


def score_file(
    scorer: Scorer,
    input_path: Path,
    output_path: Path,
    *,
    chunk_size: int = 100_000,
    id_column: str | None = None,
    progress: bool = True,
) -> ScoreSummary:
    """Score ``input_path`` chunk by chunk into ``output_path`` (written atomically).

    Every chunk is validated like a REST request; after the first problem the rest of the file is
    still checked (so the error lists every bad column and row) but nothing more is predicted,
    and no output is written.
    CSV input goes through pyarrow's parser (numbers straight to float64); if a value is not a
    number, the file is re-read with pandas to name every bad column and row.
    """
    import time

    import pyarrow as pa

    check_output_file(output_path, input_path, id_column)
    if chunk_size < 1:
        raise ScoringInputError(f"--chunk-size must be at least 1, got {chunk_size}")
    schema = scorer.schema
    check_input_file(input_path, schema.columns, id_column)
    wanted = [
        *schema.columns,
        *([id_column] if id_column and id_column not in schema.columns else []),
    ]
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(f".{output_path.name}.tmp")
    writer = _TableWriter(tmp, output_path)
    started = time.perf_counter()
    chunks = (
        read_csv_fast(input_path, wanted, schema, chunk_size)
        if input_path.name.lower().endswith(".csv")  # compressed CSV: pandas decompresses
        else read_chunks(input_path, wanted, schema.categorical, chunk_size)
    )
    try:
        try:
            rows, count, problems = _score_chunks(
                scorer, chunks, writer, id_column, input_path, progress
            )
        except pa.ArrowInvalid as error:
            # A value pyarrow cannot read as a number: re-read with pandas to name every bad cell.
            slow = read_chunks(input_path, wanted, schema.categorical, chunk_size)
            rows, count, problems = _score_chunks(scorer, slow, None, id_column, input_path, False)
            if not problems:
                raise ScoringInputError(unreadable(input_path, error)) from None
        writer.close()
        if problems:
            raise ScoringInputError(describe_problems(input_path, problems))
        if rows == 0:
            raise ScoringInputError(f"{input_path}: has a header but no rows")
        tmp.replace(output_path)
    finally:
        writer.close()
        tmp.unlink(missing_ok=True)
    return ScoreSummary(
        str(input_path), str(output_path), rows, time.perf_counter() - started, count
    )


def _score_chunks(
    scorer: Scorer,
    chunks: Iterator[pd.DataFrame],
    writer: _TableWriter | None,
    id_column: str | None,
    input_path: Path,
    progress: bool,
) -> tuple[int, int, list[ChunkProblem]]:
    """Validate every chunk; predict and write them (``writer``) until the first problem."""
    offset, count = 0, 0
    problems: list[ChunkProblem] = []
    with _ProgressBar(input_path, progress) as advance:
        for frame in prefetch(chunks):
            columns, found = validate_chunk(frame, scorer.schema, offset)
            problems.extend(found)
            if not problems and writer is not None:
                prediction = scorer.predictor.predict(columns)
                ids = frame[id_column] if id_column else np.arange(offset, offset + len(frame))
                writer.write(prediction_table(prediction, scorer.classes, ids, id_column or "row"))
            offset += len(frame)
            count += 1
            advance(len(frame))
    return offset, count, problems


class _ProgressBar:
    """A rich progress bar over rows (a no-op when ``enabled`` is False)."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled, self._bar = path, enabled, None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda _rows: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from construction_delays.console import console

        self._bar = Progress(
            TextColumn("scoring {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._bar.start()
        task = self._bar.add_task(self.path.name, total=count_rows(self.path))
        return lambda rows: self._bar.advance(task, rows)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
