"""Typed, validated view of ``params.yaml``.

The file is read once per process by :func:`load_params`; everything downstream receives plain
values. Errors name the file and the dotted field (``params.yaml: models.rf.grid: ...``) so a
user who edits the YAML knows exactly what to fix.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from construction_delays.errors import ProjectError

DEFAULT_PARAMS_FILE = Path("params.yaml")

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "r2")
LOWER_IS_BETTER = frozenset({"mae", "rmse"})
UNQUOTABLE = ('"', "$", "`", "\\")  # characters a double-quoted shell word cannot hold as is


# Per-metric allowances for getting worse: errors name the entry (`gates.max_regression.f1: ...`).
Tolerances = dict[str, Annotated[float, Field(ge=0.0)]]


class ConfigError(ProjectError, ValueError):
    """A problem in params.yaml, with the file and the dotted field that caused it."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BaseParams(_Section):
    seed: int = 42


class SampleParams(_Section):
    """How to regenerate the bundled synthetic data when no DVC remote holds it."""

    rows: int = Field(5000, gt=0)
    seed: int = 42


# pandas reads these compressions from the name; DVC versions the compressed file as it is.
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip")
PARQUET_SUFFIXES = (".parquet", ".pq")
TABLE_FORMATS = ".csv (or .csv.gz/.bz2/.xz/.zip) or .parquet"


def table_format(path: str | PurePath) -> Literal["csv", "parquet"] | None:
    """The format a data file's name says, in any letter case (exports often say .CSV)."""
    name = str(path).lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    return None


class DataParams(_Section):
    path: str
    target: str
    task: Literal["classification", "regression"] = "classification"
    positive_class: str | int | float | bool | None = None
    numeric_features: tuple[str, ...] = ()
    categorical_features: tuple[str, ...] = ()
    # Rows that share this column's value (e.g. a project id) are not independent: they stay on
    # one side of the train/test split and in one CV fold, so the test scores are for unseen groups.
    group: str | None = None
    min_rows: int = Field(20, gt=1)
    sample: SampleParams | None = None

    @field_validator("path")
    @classmethod
    def _supported_format(cls, value: str) -> str:
        if table_format(value) is None:
            spreadsheet = value.lower().endswith((".xlsx", ".xls", ".ods"))
            hint = " (save the sheet as CSV)" if spreadsheet else ""
            raise ValueError(f"{value!r}: data must be a {TABLE_FORMATS} file{hint}")
        if any(char in value for char in UNQUOTABLE):
            # dvc.yaml passes the path to the stage commands in double quotes
            raise ValueError(f"{value!r}: rename the file without {' '.join(UNQUOTABLE)}")
        return value

    @model_validator(mode="after")
    def _columns_are_consistent(self) -> DataParams:
        features = self.feature_columns
        if not features:
            raise ValueError("declare at least one of numeric_features / categorical_features")
        duplicates = sorted({c for c in features if features.count(c) > 1})
        if duplicates:
            raise ValueError(f"columns listed twice among the features: {duplicates}")
        if self.target in features:
            raise ValueError(f"target {self.target!r} is also listed as a feature")
        if self.group is not None and self.group == self.target:
            raise ValueError(
                f"group {self.group!r} is the target; name the column that groups rows"
            )
        if self.task == "regression" and self.positive_class is not None:
            raise ValueError("positive_class only applies to classification; remove it")
        return self

    @property
    def feature_columns(self) -> list[str]:
        return [*self.numeric_features, *self.categorical_features]

    @property
    def stored_columns(self) -> list[str]:
        """The columns the pipeline reads: features, the target, and the group when it is not a
        feature (the split files keep it for the CV folds)."""
        group = [self.group] if self.group and self.group not in self.feature_columns else []
        return [*self.feature_columns, self.target, *group]


class SplitParams(_Section):
    test_size: float = Field(0.2, gt=0.0, lt=1.0)
    stratify: bool = True


class CVParams(_Section):
    folds: int = Field(5, ge=2)
    shuffle: bool = True
    n_jobs: int = -1
    # Processes (loky) measured ~2x faster than threads for forests and boosting here (GIL);
    # "threading" skips worker start-up, which only pays off for tiny grids.
    backend: Literal["threading", "loky"] = "loky"


class ModelSpec(_Section):
    estimator: str = Field(
        description="importable class path, e.g. sklearn.ensemble.RandomForestClassifier"
    )
    enabled: bool = True
    params: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("estimator")
    @classmethod
    def _dotted_path(cls, value: str) -> str:
        if "." not in value or value.startswith(".") or value.endswith("."):
            raise ValueError(f"{value!r} is not a dotted class path like 'sklearn.svm.SVC'")
        return value

    @field_validator("grid")
    @classmethod
    def _grid_lists_not_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [k for k, v in value.items() if len(v) == 0]
        if empty:
            raise ValueError(f"grid entries need at least one value: {empty}")
        return value


class EvaluateParams(_Section):
    metric: str = "f1"


class DataGateParams(_Section):
    min_rows: int | None = Field(None, ge=1)
    max_missing_share: float | None = Field(None, ge=0.0, le=1.0)


class GateParams(_Section):
    """Quality gates: ``metrics`` are absolute bounds on the best model's test metrics (minimums;
    maximums for error metrics); ``max_regression`` is the largest allowed change for the worse
    against main and against the registry champion."""

    metrics: dict[str, float] = Field(default_factory=dict)
    max_regression: Tolerances = Field(default_factory=dict)
    data: DataGateParams = DataGateParams()
    # The commit's dvc.lock and reports/ must be what its code, params and data produce: main's
    # committed metrics are what the next pull request is compared with (see lockcheck).
    committed_results: bool = True
    # The behavioural checks of `behaviour:` (reports/behaviour.json) must all pass.
    behaviour: bool = True


class ReportParams(_Section):
    # CML's --publish uploads images to a public third-party host: opt in explicitly.
    publish_images: bool = False


class MonitoringParams(_Section):
    """``mlops monitor``: how new data is compared with the training data (population stability
    index per column, the predictions, and the metrics when the new data has labels)."""

    bins: int = Field(10, ge=2, le=100)
    psi_warning: float = Field(0.1, gt=0.0)
    psi_drift: float = Field(0.25, gt=0.0)
    max_missing_increase: float = Field(0.1, ge=0.0, le=1.0)
    max_drifted_share: float = Field(0.25, gt=0.0, le=1.0)
    min_rows: int = Field(200, ge=1)
    # With labelled new data: how far each metric may fall below the model's test-set value.
    max_metric_drop: Tolerances = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ordered(self) -> MonitoringParams:
        if self.psi_warning > self.psi_drift:
            raise ValueError(
                f"psi_warning ({self.psi_warning}) must not exceed psi_drift ({self.psi_drift})"
            )
        return self


class FeatureChange(_Section):
    """One edit of one feature on every test row: exactly one of ``add``, ``multiply``, ``noise``
    (uniform in ±noise, seeded) for a numeric feature, ``set`` (any value, also a category the
    model never saw) or ``missing: true``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    feature: str
    add: float | None = None
    multiply: float | None = None
    noise: float | None = Field(None, gt=0.0)
    set_to: str | int | float | bool | None = Field(None, alias="set")
    missing: bool = False

    @model_validator(mode="after")
    def _one_change(self) -> FeatureChange:
        given = [key for key in ("add", "multiply", "noise") if getattr(self, key) is not None]
        given += ["set"] * (self.set_to is not None) + ["missing"] * self.missing
        if len(given) != 1:
            raise ValueError(
                f"{self.feature!r}: give exactly one of add, multiply, noise, set, missing"
                f" (got {given or 'none'})"
            )
        return self

    @property
    def change_kind(self) -> str:
        if self.set_to is not None:
            return "set"
        if self.missing:
            return "missing"
        return next(key for key in ("add", "multiply", "noise") if getattr(self, key) is not None)

    @property
    def label(self) -> str:
        """How the change reads in reports: ``Weather Delay Days +5``."""
        kind = self.change_kind
        if kind == "add":
            return f"{self.feature} {self.add:+g}"
        if kind == "multiply":
            return f"{self.feature} x{self.multiply:g}"
        if kind == "noise":
            return f"{self.feature} ±{self.noise:g} noise"
        if kind == "missing":
            return f"{self.feature} missing"
        return f"{self.feature} = {self.set_to!r}"


class DirectionalCheck(FeatureChange):
    """The change must move the prediction one way: the positive class's probability (binary), the
    probability of ``class`` (multiclass), or the predicted value (regression)."""

    expect: Literal["up", "down"]
    class_: str | int | float | bool | None = Field(None, alias="class")
    # Share of rows allowed to move the other way (trees and forests are not monotonic).
    max_violations: float = Field(0.1, ge=0.0, le=1.0)


class InvarianceCheck(FeatureChange):
    """The change should (almost) not matter: at most ``max_changed`` of the rows may change their
    predicted class (classification) or move by more than ``tolerance`` (regression; in target
    units, by default a tenth of the test target's standard deviation)."""

    max_changed: float = Field(0.05, ge=0.0, le=1.0)
    tolerance: float | None = Field(None, ge=0.0)


class BehaviourParams(_Section):
    """Behavioural checks of the best model on the test rows (a quality gate with
    ``gates.behaviour``): beat the best constant prediction, and react to feature changes the
    way the domain says it must (directional) or must not (invariance)."""

    # The best model's evaluate.metric must beat the best constant prediction by this much.
    min_lift: float | None = Field(None, ge=0.0)
    directional: tuple[DirectionalCheck, ...] = ()
    invariance: tuple[InvarianceCheck, ...] = ()

    @property
    def checks(self) -> tuple[FeatureChange, ...]:
        return (*self.directional, *self.invariance)

    @property
    def configured(self) -> bool:
        return self.min_lift is not None or bool(self.checks)


class MlflowParams(_Section):
    experiment: str
    registered_model: str


class Params(_Section):
    base: BaseParams = BaseParams()
    data: DataParams
    split: SplitParams = SplitParams()
    cv: CVParams = CVParams()
    models: dict[str, ModelSpec]
    evaluate: EvaluateParams = EvaluateParams()
    gates: GateParams = GateParams()
    report: ReportParams = ReportParams()
    monitoring: MonitoringParams = MonitoringParams()
    behaviour: BehaviourParams = BehaviourParams()
    mlflow: MlflowParams

    @model_validator(mode="after")
    def _cross_section_checks(self) -> Params:
        allowed = (
            CLASSIFICATION_METRICS if self.data.task == "classification" else REGRESSION_METRICS
        )
        if self.evaluate.metric not in allowed:
            raise ValueError(
                f"evaluate.metric {self.evaluate.metric!r} does not apply to a {self.data.task} task;"
                f" choose one of {list(allowed)}"
            )
        if not any(spec.enabled for spec in self.models.values()):
            raise ValueError("models: enable at least one model")
        for section in ("metrics", "max_regression"):
            unknown = sorted(set(getattr(self.gates, section)) - set(allowed))
            if unknown:
                raise ValueError(
                    f"gates.{section}: {unknown} do not apply to a {self.data.task} task; use {list(allowed)}"
                )
        unknown = sorted(set(self.monitoring.max_metric_drop) - set(allowed))
        if unknown:
            raise ValueError(
                f"monitoring.max_metric_drop: {unknown} do not apply to a {self.data.task} task;"
                f" use {list(allowed)}"
            )
        self._check_behaviour()
        bad_names = [name for name in self.models if not name.replace("_", "").isalnum()]
        if bad_names:
            raise ValueError(f"models: names must be letters, digits and '_' only: {bad_names}")
        return self

    def _check_behaviour(self) -> None:
        data = self.data
        for section in ("directional", "invariance"):
            for index, check in enumerate(getattr(self.behaviour, section)):
                where = f"behaviour.{section}.{index}"
                if check.feature not in data.feature_columns:
                    raise ValueError(
                        f"{where}.feature: {check.feature!r} is not a feature of data:"
                        " (numeric_features or categorical_features); fix or remove the check"
                    )
                kind = check.change_kind
                if (
                    kind in ("add", "multiply", "noise")
                    and check.feature not in data.numeric_features
                ):
                    raise ValueError(
                        f"{where}.{kind}: {check.feature!r} is categorical; use `set` to give it a"
                        " value (or `missing: true`)"
                    )
                if (
                    kind == "set"
                    and check.feature in data.numeric_features
                    and isinstance(check.set_to, str)
                ):
                    raise ValueError(
                        f"{where}.set: {check.feature!r} is numeric; give a number or null"
                    )
                regression = data.task == "regression"
                if isinstance(check, DirectionalCheck) and check.class_ is not None and regression:
                    raise ValueError(f"{where}.class: a regression model has no classes; remove it")

    @property
    def enabled_models(self) -> dict[str, ModelSpec]:
        return {name: spec for name, spec in self.models.items() if spec.enabled}

    @property
    def higher_is_better(self) -> bool:
        return self.evaluate.metric not in LOWER_IS_BETTER


def _format_validation_error(source: Path, error: ValidationError) -> str:
    lines = [f"{source}: {error.error_count()} problem(s) in the configuration"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"  - {where}: {message}")
    return "\n".join(lines)


def parse_params(raw: Any, source: Path = DEFAULT_PARAMS_FILE) -> Params:
    """Validate an already-parsed mapping; ``source`` is only used in messages."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(raw).__name__}"
        )
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(source, error)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; DVC's parser refuses them. A params.yaml
    with `grid:` twice would train one grid here and fail in `dvc repro`: refuse it up front."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_params(path: Path | str = DEFAULT_PARAMS_FILE) -> Params:
    """Read and validate params.yaml. Raises :class:`ConfigError` with an actionable message."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found (run from the project root or pass --params)")
    try:
        # A SafeLoader: plain YAML types only, never Python objects.
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_params(raw, path)
