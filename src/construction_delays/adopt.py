"""`mlops data adopt`: point the project at your own table in one command.

Reads the file, infers what ``params.yaml`` needs (task, positive class, numeric and categorical
features; identifiers, constant columns, dates and free text left out, each with its reason), and
writes it into ``params.yaml`` keeping its comments and layout, puts the file under ``data/`` and
records it with ``dvc add``. When the target needs the other task, the model zoo and the
task-specific metric settings switch with it. Everything is validated first (the new params with
the same checks as `mlops check`, the data with the pipeline's own schema), so a problem stops the
command before any file changes.

Absolute quality gates (``gates.metrics``) and the behavioural checks of the old features are
cleared: the bounds and expectations of the previous data say nothing about new data, and the first
run on it is the baseline to set them from. The relative gates
(``gates.max_regression``) keep guarding every pull request meanwhile.
"""

from __future__ import annotations

import difflib
import io
import json
import math
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml

from construction_delays.config import TABLE_FORMATS, Params, parse_params, table_format
from construction_delays.data import (
    THOUSANDS_ADVICE,
    category_text,
    read_table,
    thousands_example,
)
from construction_delays.datasets import DvcRunner, tracking_output
from construction_delays.errors import ProjectError
from construction_delays.files import plain_value
from construction_delays.model_zoos import MODEL_ZOOS

Role = Literal["numeric", "categorical", "excluded", "group"]
FEATURE_ROLES = ("numeric", "categorical")

DATA_DIR = "data"
SMOKE_REQUEST = Path("deploy/smoke/request.json")  # what `mlops smoke` POSTs to a deployment
SMOKE_ROWS = 2
MAX_CATEGORIES = 50
# Below this many rows a test split of a few dozen rows makes every score noisy.
FEW_ROWS = 100
# A numeric target with at most this many distinct whole-number values is read as class labels.
MAX_CLASS_LABELS = 20
# Names of identifier columns: "id", "ID", "row_id", "Activity ID", "uuid", "key", ...
IDENTIFIER_NAME = re.compile(r"(^|[\s_\-.])(id|uuid|guid|key)$", re.IGNORECASE)

# Metric settings of each task that do not depend on the data's scale. Regression leaves out
# rmse/mae tolerances: they are in the target's units, so only the user can choose them.
TASK_METRIC = {"classification": "f1", "regression": "r2"}
TASK_TOLERANCES = {
    "classification": {"max_regression": {"f1": 0.02, "roc_auc": 0.02}, "drop": {"f1": 0.05}},
    "regression": {"max_regression": {"r2": 0.03}, "drop": {"r2": 0.05}},
}


class AdoptionError(ProjectError):
    """The file, the target or an option cannot be adopted; nothing was changed."""


@dataclass(frozen=True)
class ColumnPlan:
    name: str
    role: Role
    dtype: str
    missing_share: float
    distinct: int
    note: str = ""


@dataclass
class AdoptionPlan:
    source: Path
    data_path: str  # as written to params.yaml: relative to the project root, under data/
    rows: int
    target: str
    task: str
    task_reason: str
    positive_class: Any
    classes: dict[str, int]
    columns: list[ColumnPlan]
    params_text: str
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    smoke_records: list[dict[str, Any]] = field(default_factory=list)


# --- reading the data -------------------------------------------------------------------------


def infer_task(target: pd.Series, requested: str | None) -> tuple[str, str]:
    """``(task, why)`` for the target column; ``requested`` (from ``--task``) wins."""
    values = target.dropna()
    if requested is not None:
        if requested == "regression" and not pd.api.types.is_numeric_dtype(values):
            raise AdoptionError(
                f"--task regression: target {target.name!r} is not numeric "
                f"(e.g. {values.astype(str).iloc[0]!r})"
            )
        return requested, "as requested"
    distinct = values.nunique()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "classification", f"a non-numeric target with {distinct} distinct values"
    whole = bool((values == values.round()).all())
    if whole and distinct <= MAX_CLASS_LABELS:
        return "classification", f"whole numbers with {distinct} distinct values, read as labels"
    return "regression", f"a numeric target with {distinct} distinct values"


def choose_positive_class(target: pd.Series, requested: str | None) -> Any:
    """The positive class of a binary target: ``requested`` (matched as text), else the rarer
    class (what a model of delays, churn or fraud is usually about)."""
    counts = target.value_counts()
    if requested is not None:
        for label in counts.index:
            if str(label) == requested:
                return plain_value(label)
        raise AdoptionError(
            f"--positive-class {requested!r} is not one of the target's classes "
            f"{[str(label) for label in counts.index]}"
        )
    if len(counts) != 2:
        return None
    return plain_value(counts.index[-1])  # value_counts is descending: the last is the rarer


def _looks_like_dates(values: pd.Series) -> bool:
    sample = values.astype(str).head(200)
    if sample.str.fullmatch(r"[-+]?\d+(\.\d+)?").all() or sample.str.contains(r"\d").mean() < 0.95:
        return False  # plain numbers, or words such as month names: not timestamps
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= 0.95)


def classify_column(
    series: pd.Series, rows: int, max_categories: int = MAX_CATEGORIES, forced: Role | None = None
) -> ColumnPlan:
    """The role of one candidate feature column, with the reason when it is left out."""
    name = str(series.name)
    values = series.dropna()
    missing = round(1 - len(values) / rows, 4) if rows else 0.0
    distinct = int(values.nunique())
    dtype = str(series.dtype)

    def plan(role: Role, note: str = "") -> ColumnPlan:
        return ColumnPlan(name, role, dtype, missing, distinct, note)

    if values.empty:
        return plan("excluded", "every value is missing")
    grouped = None if pd.api.types.is_numeric_dtype(values) else thousands_example(values)
    if forced == "numeric":
        if not pd.api.types.is_numeric_dtype(values):
            bad = values[pd.to_numeric(values, errors="coerce").isna()]
            if not bad.empty:
                advice = f": {THOUSANDS_ADVICE.format(example=grouped)}" if grouped else ""
                raise AdoptionError(
                    f"--numeric {name!r}: {len(bad)} value(s) are not numbers, e.g."
                    f" {bad.iloc[0]!r}{advice}"
                )
        return plan("numeric", "as requested")
    if forced == "categorical":
        return plan("categorical", "as requested")
    if distinct == 1:
        return plan("excluded", f"constant ({values.iloc[0]!r}): nothing to learn from")
    if IDENTIFIER_NAME.search(name) and distinct < len(values):
        # Repeated ids name a group (a project, a customer): as a feature a model memorises them.
        return plan(
            "excluded",
            f"an identifier shared by several rows: --group {name!r} keeps each one's rows together",
        )
    if pd.api.types.is_bool_dtype(values):
        return plan("numeric")
    if pd.api.types.is_numeric_dtype(values):
        whole = pd.api.types.is_integer_dtype(values) or bool((values == values.round()).all())
        if (
            whole
            and distinct == len(values)
            and (IDENTIFIER_NAME.search(name) or _is_counter(values))
        ):
            return plan("excluded", "an identifier (every value differs)")
        return plan("numeric")
    if grouped is not None:
        return plan("excluded", THOUSANDS_ADVICE.format(example=grouped))
    if pd.api.types.is_datetime64_any_dtype(values) or _looks_like_dates(values):
        return plan("excluded", "dates: derive numbers from them (e.g. days since a start) first")
    as_numbers = pd.to_numeric(values, errors="coerce")
    if as_numbers.notna().all():
        return plan("numeric", "numbers stored as text")
    if distinct == len(values) and len(values) > MAX_CLASS_LABELS:
        return plan("excluded", "an identifier or free text (every value differs)")
    if distinct > max_categories:
        return plan(
            "excluded",
            f"{distinct} distinct values (more than {max_categories}): pass --categorical to keep it",
        )
    return plan("categorical")


def _is_counter(values: pd.Series) -> bool:
    """1, 2, 3, ... (or from 0) in any order: a row number."""
    ordered = values.sort_values().to_numpy()
    return bool(ordered[-1] - ordered[0] == len(ordered) - 1)


def leakage_warnings(
    frame: pd.DataFrame, target: str, task: str, columns: Sequence[ColumnPlan]
) -> list[str]:
    """Features that give the target away on their own: usually recorded after the outcome."""
    warnings = []
    labels = frame[target]
    for column in columns:
        if column.role not in FEATURE_ROLES:
            continue
        values = frame[column.name]
        known = values.notna() & labels.notna()
        if known.sum() < 20:
            continue
        if task == "classification":
            groups = pd.DataFrame({"x": values[known].astype(str), "y": labels[known]})
            purity = groups.groupby("x")["y"].nunique().max() == 1
            if purity and groups["x"].nunique() < known.sum() / 2:
                warnings.append(
                    f"{column.name!r} determines the target exactly (each value goes with one "
                    "class): is it recorded after the outcome? Leave it out with --drop if so"
                )
        elif column.role == "numeric":
            correlation = pd.to_numeric(values[known]).corr(labels[known].astype(float))
            if abs(correlation) > 0.99:
                warnings.append(
                    f"{column.name!r} correlates {correlation:.3f} with the target: is it derived "
                    "from it? Leave it out with --drop if so"
                )
    return warnings


def _columns_hint(name: str, columns: list[str]) -> str:
    from construction_delays.validation import other_delimiter

    delimiter = other_delimiter(columns)
    if delimiter is not None:
        return f"; the file looks {delimiter}-delimited: save it comma-separated"
    close = difflib.get_close_matches(name, columns, n=3, cutoff=0.6)
    close += [c for c in columns if c.lower() == name.lower() and c not in close]
    listed = ", ".join(repr(c) for c in columns[:30]) + (", ..." if len(columns) > 30 else "")
    guess = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    return f"{guess}; its {len(columns)} columns: {listed}"


# --- editing params.yaml ------------------------------------------------------------------------


def _yaml() -> Any:
    from ruamel.yaml import YAML

    round_trip = YAML()
    round_trip.preserve_quotes = True
    round_trip.width = 100
    round_trip.indent(mapping=2, sequence=4, offset=2)
    return round_trip


def _scalar(value: Any) -> Any:
    """``value`` for ruamel: quoted when YAML 1.1 (PyYAML, DVC) would read it back as something
    else, such as ``yes`` or ``1.0`` as a column name."""
    if not isinstance(value, str):
        return value
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    try:
        same = yaml.safe_load(value) == value
    except yaml.YAMLError:
        same = False
    return (
        value
        if same and "#" not in value and value.strip() == value
        else DoubleQuotedScalarString(value)
    )


def _mapping(values: dict[str, Any]) -> Any:
    from ruamel.yaml.comments import CommentedMap

    return CommentedMap((key, _scalar(value)) for key, value in values.items())


def _sequence(values: Sequence[str]) -> Any:
    from ruamel.yaml.comments import CommentedSeq

    return CommentedSeq(_scalar(value) for value in values)


def _set(section: Any, key: str, value: Any, after: str | None = None) -> None:
    """Set ``key``; a new key goes right after ``after`` (next to related keys)."""
    if key in section or after is None or after not in section:
        section[key] = value
    else:
        section.insert(list(section).index(after) + 1, key, value)


def _separate_sections(text: str) -> str:
    """A blank line before every top-level key, as params.yaml is laid out (replacing a nested
    block drops the blank line that belonged to its last entry)."""
    lines = text.split("\n")
    out: list[str] = []
    for line in lines:
        top_level = bool(re.match(r"^[^\s#-][^:]*:", line))
        if top_level and out and out[-1].strip() and not out[-1].startswith("#"):
            out.append("")
        out.append(line)
    return "\n".join(out)


def edit_params_text(
    text: str,
    *,
    data_path: str,
    target: str,
    task: str,
    positive_class: Any,
    numeric: Sequence[str],
    categorical: Sequence[str],
    rows: int,
    worst_missing_share: float,
    group: str | None = None,
) -> tuple[str, list[str]]:
    """params.yaml ``text`` pointed at the new data; returns the new text and what changed."""
    round_trip = _yaml()
    doc = round_trip.load(text)
    data = doc["data"]
    old_task = data.get("task", "classification")
    changes = [f"data: {data_path}, target {target!r}, task {task}"]
    data["path"] = _scalar(data_path)
    data["target"] = _scalar(target)
    _set(data, "task", task, after="target")
    if positive_class is None:
        data.pop("positive_class", None)
    else:
        _set(data, "positive_class", _scalar(positive_class), after="task")
    data["numeric_features"] = _sequence(numeric)
    data["categorical_features"] = _sequence(categorical)
    if group is not None:
        _set(data, "group", _scalar(group), after="categorical_features")
        changes.append(
            f"data.group: {group!r} (each group whole in train or test, and in one CV fold)"
        )
    elif data.get("group") is not None:
        data["group"] = None
        changes.append("data.group: null (the old group column is not in this file's plan)")
    if data.get("sample") is not None:
        data["sample"] = None
        data.yaml_add_eol_comment(
            "# null: your own data, versioned by DVC (no generator)", "sample", column=32
        )
        changes.append("data.sample: null (your data replaces the bundled generator)")
    if data.get("min_rows", 0) > rows:
        data["min_rows"] = rows
        changes.append(f"data.min_rows: {rows} (the file's row count)")

    gates = doc.setdefault("gates", _mapping({}))
    if gates.get("metrics"):
        gates["metrics"] = _mapping({})
        changes.append(
            "gates.metrics: cleared (absolute bounds of the old data; set new ones from the first run)"
        )
    data_gates = gates.get("data") or {}
    if data_gates.get("min_rows") is not None and data_gates["min_rows"] > rows:
        data_gates["min_rows"] = rows
        changes.append(f"gates.data.min_rows: {rows} (the file's row count)")
    limit = data_gates.get("max_missing_share")
    if limit is not None and worst_missing_share > limit:
        raised = min(1.0, math.ceil(worst_missing_share * 20) / 20)  # next step of 0.05
        data_gates["max_missing_share"] = raised
        changes.append(
            f"gates.data.max_missing_share: {raised} (a feature is {worst_missing_share:.0%} missing)"
        )

    behaviour = doc.get("behaviour") or {}
    cleared = [key for key in ("directional", "invariance") if behaviour.get(key)]
    for key in cleared:
        behaviour[key] = []
    if cleared:
        changes.append(
            f"behaviour.{' and behaviour.'.join(cleared)}: cleared (checks of the old data's"
            " features; write ones your domain expects, see the README)"
        )
    if task != old_task and behaviour.get("min_lift") is not None:
        behaviour["min_lift"] = 0.0
        changes.append(
            f"behaviour.min_lift: 0.0 (it is in units of {TASK_METRIC[task]} now; raise it from"
            " the first run)"
        )

    if task != old_task:
        doc["models"] = round_trip.load(MODEL_ZOOS[task])["models"]
        doc.setdefault("evaluate", _mapping({}))["metric"] = TASK_METRIC[task]
        tolerances = TASK_TOLERANCES[task]
        gates["max_regression"] = _mapping(tolerances["max_regression"])
        monitoring = doc.setdefault("monitoring", _mapping({}))
        monitoring["max_metric_drop"] = _mapping(tolerances["drop"])
        changes.append(
            f"models, evaluate.metric ({TASK_METRIC[task]}), gates.max_regression and "
            f"monitoring.max_metric_drop: the {task} defaults (the task changed from {old_task})"
        )
        registered = (doc.get("mlflow") or {}).get("registered_model")
        if registered:
            changes.append(
                f"mlflow.registered_model stays {registered!r}: rename it if this starts a new "
                "model line (versions, aliases and deploy overlays follow the name)"
            )
    out = io.StringIO()
    round_trip.dump(doc, out)
    return _separate_sections(out.getvalue()), changes


# --- the plan and applying it ---------------------------------------------------------------------


def _placement(root: Path, source: Path) -> str:
    """Where the file lives in the project: as it is when already under data/, else data/<name>."""
    resolved = source.resolve()
    data_dir = (root / DATA_DIR).resolve()
    if data_dir in resolved.parents:
        return resolved.relative_to(root.resolve()).as_posix()
    destination = data_dir / source.name
    if destination.exists() and destination.read_bytes() != resolved.read_bytes():
        raise AdoptionError(
            f"{DATA_DIR}/{source.name} already exists with other content: rename your file or "
            "remove the existing one"
        )
    return f"{DATA_DIR}/{source.name}"


def plan_adoption(
    root: Path,
    params_file: Path,
    source: Path,
    target: str,
    *,
    task: str | None = None,
    positive_class: str | None = None,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    drop: Sequence[str] = (),
    max_categories: int = MAX_CATEGORIES,
    group: str | None = None,
) -> AdoptionPlan:
    """Everything `mlops data adopt` would do, validated; changes nothing."""
    from construction_delays.validation import DataValidationError, validate_frame

    if table_format(source) is None:
        raise AdoptionError(f"{source}: give a {TABLE_FORMATS} file")
    # Categorical columns named on the command line as training reads them (text as written, so
    # codes 04 stay "04"); the others are left to pandas, whose types the inference looks at.
    frame = read_table(source, list(categorical))
    _check_options(
        source, [str(c) for c in frame.columns], target, numeric, categorical, drop, group
    )
    target_plan = _plan_target(source, frame[target], task, positive_class)
    chosen_task, positive = target_plan.task, target_plan.positive_class
    warnings = [*target_plan.warnings]
    columns = _plan_columns(frame, target, numeric, categorical, drop, max_categories, group)
    used = [c for c in columns if c.role in FEATURE_ROLES]
    if not used:
        reasons = "; ".join(f"{c.name!r}: {c.note}" for c in columns)
        raise AdoptionError(
            f"{source}: no usable feature columns ({reasons}); name some with --numeric/--categorical"
        )
    warnings.extend(leakage_warnings(frame, target, chosen_task, columns))

    data_path = _placement(root, source)
    new_text, changes = edit_params_text(
        params_file.read_text(encoding="utf-8"),
        data_path=data_path,
        target=target,
        task=chosen_task,
        positive_class=positive,
        numeric=[c.name for c in used if c.role == "numeric"],
        categorical=[c.name for c in used if c.role == "categorical"],
        rows=len(frame),
        worst_missing_share=max(c.missing_share for c in used),
        group=group,
    )
    params = parse_params(yaml.safe_load(new_text), params_file)
    report = validate_frame(frame, params.data, source)
    if not report.valid:
        raise DataValidationError(report)
    if len(frame) < FEW_ROWS:
        test_rows = round(len(frame) * params.split.test_size)
        warnings.append(
            f"only {len(frame)} rows: the test split holds about {test_rows}, so test and"
            " cross-validation scores will be noisy (a few rows more or less move them);"
            " collect more rows if you can"
        )
    smoke = smoke_records(frame, params.data.numeric_features, params.data.categorical_features)
    return AdoptionPlan(
        source=source,
        data_path=data_path,
        rows=len(frame),
        target=target,
        task=chosen_task,
        task_reason=target_plan.reason,
        positive_class=positive,
        classes=target_plan.classes,
        columns=columns,
        params_text=new_text,
        changes=changes,
        warnings=warnings,
        smoke_records=smoke,
    )


def smoke_records(
    frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str], rows: int = SMOKE_ROWS
) -> list[dict[str, Any]]:
    """A few rows of the features as a JSON request body: complete rows first; missing values as
    null, categories as the text training reads (float codes 4.0 of a column with missing values
    as "4", see category_text), so the smoke test sends categories the model knows."""
    features = frame[[*numeric, *categorical]]
    complete = features.dropna()
    chosen = (complete if len(complete) >= rows else features).head(rows)
    records = []
    for _, row in chosen.iterrows():
        record: dict[str, Any] = {}
        for column, value in row.items():
            if pd.isna(value):
                record[str(column)] = None
            elif column in categorical:
                record[str(column)] = category_text(plain_value(value))
            else:
                record[str(column)] = plain_value(value)
        records.append(record)
    return records


def _check_options(
    source: Path,
    columns: list[str],
    target: str,
    numeric: Sequence[str],
    categorical: Sequence[str],
    drop: Sequence[str],
    group: str | None = None,
) -> None:
    named = {
        "--target": [target],
        "--numeric": numeric,
        "--categorical": categorical,
        "--drop": drop,
        "--group": [group] if group is not None else [],
    }
    for option, names in named.items():
        for name in names:
            if name not in columns:
                raise AdoptionError(
                    f"{source}: {option} {name!r} is not a column{_columns_hint(name, columns)}"
                )
    both = sorted(set(numeric) & set(categorical))
    if both:
        raise AdoptionError(f"{both}: given both as --numeric and as --categorical")
    if target in (*numeric, *categorical, *drop):
        raise AdoptionError(f"{target!r} is the target; it cannot also be a feature or dropped")
    if group == target:
        raise AdoptionError(f"{target!r} is the target; --group names the column that groups rows")


@dataclass(frozen=True)
class TargetPlan:
    task: str
    reason: str
    positive_class: Any = None
    classes: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _plan_target(
    source: Path, labels: pd.Series, task: str | None, positive_class: str | None
) -> TargetPlan:
    if labels.isna().any():
        rows_missing = [int(i) for i in labels.index[labels.isna()][:10]]
        raise AdoptionError(
            f"{source}: target {labels.name!r} is missing in {int(labels.isna().sum())} row(s) "
            f"(rows {rows_missing}; row 0 is the first data row): drop or fill them first"
        )
    chosen_task, reason = infer_task(labels, task)
    if chosen_task == "regression":
        if positive_class is not None:
            raise AdoptionError("--positive-class applies to classification only")
        if labels.nunique() == 1:
            raise AdoptionError(
                f"{source}: target {labels.name!r} has the same value"
                f" {plain_value(labels.iloc[0])!r} in every row: a model needs a target that varies"
            )
        return TargetPlan(chosen_task, reason)
    counts = labels.value_counts()
    if len(counts) < 2:
        raise AdoptionError(
            f"{source}: target {labels.name!r} has a single class {counts.index[0]!r}"
        )
    classes = {str(label): int(count) for label, count in counts.items()}
    rare = [label for label, count in classes.items() if count < 10]
    warnings = (
        [
            f"classes {rare} have fewer than 10 rows: cross-validation needs several per fold; "
            "merge rare classes or collect more rows"
        ]
        if rare
        else []
    )
    positive = choose_positive_class(labels, positive_class)
    return TargetPlan(chosen_task, reason, positive, classes, warnings)


def _plan_columns(
    frame: pd.DataFrame,
    target: str,
    numeric: Sequence[str],
    categorical: Sequence[str],
    drop: Sequence[str],
    max_categories: int,
    group: str | None = None,
) -> list[ColumnPlan]:
    forced: dict[str, Role] = {
        **dict.fromkeys(numeric, "numeric"),
        **dict.fromkeys(categorical, "categorical"),
    }
    plans = []
    for name in frame.columns:
        if name == target:
            continue
        if name in drop:
            seen = classify_column(frame[name], len(frame), max_categories, "categorical")
            plans.append(replace(seen, role="excluded", note="as requested (--drop)"))
        elif name == group and name not in forced:
            seen = classify_column(frame[name], len(frame), max_categories, "categorical")
            note = "--group: each group whole in train or test, and in one CV fold"
            plans.append(replace(seen, role="group", note=note))
        else:
            plans.append(classify_column(frame[name], len(frame), max_categories, forced.get(name)))
    return plans


def apply_adoption(
    plan: AdoptionPlan, root: Path, params_file: Path, old: Params, dvc: DvcRunner
) -> tuple[list[str], str]:
    """Copy the file into data/, drop the generated sample it replaces, write params.yaml and
    record the data with ``dvc add``. Returns what was done and the next step, for the user."""
    done = []
    destination = root / plan.data_path
    if not destination.exists():
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plan.source, destination)
        done.append(f"copied {plan.source} to {plan.data_path}")
    previous = root / old.data.path
    if old.data.sample is not None and old.data.path != plan.data_path and previous.is_file():
        previous.unlink()  # the generated sample: `mlops data generate` makes it again
        done.append(f"removed the generated sample {old.data.path}")
    temporary = params_file.with_name(f".{params_file.name}.tmp")
    temporary.write_text(plan.params_text, encoding="utf-8")
    temporary.replace(params_file)
    done.append(f"updated {params_file.name}")
    to_commit = [params_file.name]
    smoke = root / SMOKE_REQUEST
    if smoke.is_file() and plan.smoke_records:
        body = json.dumps({"records": plan.smoke_records}, indent=2, ensure_ascii=False)
        smoke.write_text(body + "\n", encoding="utf-8")
        done.append(
            f"wrote {SMOKE_REQUEST.as_posix()}: {len(plan.smoke_records)} rows of your features,"
            " the request the deployment smoke test sends"
        )
        to_commit.append(SMOKE_REQUEST.as_posix())
    tracked = tracking_output(root, Path(plan.data_path))
    if tracked is None:
        first_step = (
            f"version the data with `dvc add {Path(plan.data_path).parent.as_posix()}`, then "
        )
    else:
        dvc_file, output = tracked
        dvc("add", "--quiet", output.as_posix())
        done.append(f"recorded {output.as_posix()} in {dvc_file.name}")
        to_commit.append(dvc_file.name)
        first_step = ""
    has_remote = bool(dvc("remote", "list", capture=True).stdout.strip())
    push = "`dvc push`" if has_remote else "set a DVC remote (`dvc remote add -d ...`), `dvc push`"
    return done, (
        f"{first_step}`mlops check`, `mlops run`, then commit {', '.join(to_commit)}, dvc.lock"
        f" and reports/ (the pull request checks they are what the run writes); {push}: CI"
        " and your team pull the data from there"
    )
