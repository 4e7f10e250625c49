"""Data validation with pandera: every problem is collected (lazy validation), not just the first.

The schema is derived from ``params.yaml`` (target, numeric and categorical features, task), so a
new dataset needs no code change. The report names the file, the column, the failed check and the
offending rows, and also summarises the data (rows, dtypes, missing values, class balance) for the
PR report.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from construction_delays.config import DataParams
from construction_delays.data import THOUSANDS_ADVICE, duplicate_columns, thousands_example
from construction_delays.errors import ProjectError
from construction_delays.files import plain_value

MAX_ROWS_LISTED = 10
TOO_MANY_CLASSES = (
    "more than two classes, but data.positive_class is set: a label written two ways (e.g. 'Yes'"
    " and 'yes ') makes a third class; for a multiclass target remove positive_class"
)


@dataclass(frozen=True)
class Problem:
    column: str
    check: str
    message: str
    rows: list[int] = field(default_factory=list)
    count: int = 0


@dataclass
class ValidationReport:
    file: str
    valid: bool
    rows: int
    columns: int
    md5: str
    problems: list[Problem]
    schema: dict[str, str]
    missing_values: dict[str, int]
    target_distribution: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe_problems(self) -> str:
        lines = [f"{self.file}: {len(self.problems)} data problem(s) found"]
        for problem in self.problems:
            where = ""
            if problem.rows:
                shown = ", ".join(str(r) for r in problem.rows)
                more = (
                    f" and {problem.count - len(problem.rows)} more"
                    if problem.count > len(problem.rows)
                    else ""
                )
                where = f" (rows {shown}{more}; row 0 is the first data row)"
            lines.append(f"  - column {problem.column!r}: {problem.message}{where}")
        return "\n".join(lines)


class DataValidationError(ProjectError, ValueError):
    def __init__(self, report: ValidationReport):
        super().__init__(report.describe_problems())
        self.report = report


def _has_two_classes(series: pd.Series) -> bool:
    return series.dropna().nunique() >= 2


def _finite(values: pd.Series) -> pd.Series:
    # A column that failed coercion reaches this check as text, where np.isinf raises and
    # pandera reported the whole column as infinite: only values that are numbers count here.
    return ~np.isinf(pd.to_numeric(values, errors="coerce").astype("float64"))


def _all_missing(features: str) -> str:
    return (
        f"all values are missing: fill them, or remove the column from data.{features} in"
        " params.yaml"
    )


def build_schema(data: DataParams) -> pa.DataFrameSchema:
    """A pandera schema for the configured columns; extra columns in the file are allowed."""
    columns: dict[str, pa.Column] = {}
    for name in data.numeric_features:
        columns[name] = pa.Column(
            "float64",
            coerce=True,
            nullable=True,
            checks=[
                pa.Check(
                    lambda s: s.notna().any(),
                    element_wise=False,
                    error=_all_missing("numeric_features"),
                ),
                pa.Check(
                    _finite,
                    error="infinite values (inf, -inf): leave the cell empty or give a number",
                ),
            ],
            title=name,
        )
    for name in data.categorical_features:
        columns[name] = pa.Column(
            nullable=True,
            checks=pa.Check(
                lambda s: s.notna().any(),
                element_wise=False,
                error=_all_missing("categorical_features"),
            ),
        )
    if data.group is not None:
        # Declared as a feature too: keep its type, but a row without a group cannot be placed.
        declared = columns.get(data.group)
        columns[data.group] = pa.Column(
            declared.dtype if declared is not None else None,
            coerce=declared is not None and declared.coerce,
            nullable=False,
            checks=pa.Check(
                lambda s: s.nunique() >= 2,
                element_wise=False,
                error="data.group needs at least two distinct values (groups) to split by",
            ),
        )
    if data.task == "classification":
        target_checks = [
            pa.Check(
                _has_two_classes,
                element_wise=False,
                error="the target needs at least two classes to train a classifier",
            )
        ]
        if data.positive_class is not None:
            positive = data.positive_class
            # YAML 1.1 (PyYAML, DVC) reads an unquoted yes/no/on/off/true/false as a boolean.
            quote = (
                " (YAML reads unquoted yes/no/on/off/true/false as a boolean: write it in quotes,"
                ' e.g. positive_class: "yes")'
                if isinstance(positive, bool)
                else ""
            )
            target_checks += [
                pa.Check(
                    lambda s: ((s == positive) | (s.astype(str) == str(positive))).any(),
                    element_wise=False,
                    error=f"positive_class {positive!r} (params.yaml data.positive_class) never"
                    f" occurs{quote}",
                ),
                pa.Check(
                    lambda s: s.dropna().nunique() <= 2,
                    element_wise=False,
                    error=TOO_MANY_CLASSES,
                ),
            ]
        columns[data.target] = pa.Column(nullable=False, checks=target_checks)
    else:
        columns[data.target] = pa.Column("float64", coerce=True, nullable=False)
    return pa.DataFrameSchema(
        columns,
        checks=pa.Check(
            lambda df: len(df) >= data.min_rows,
            error=f"fewer rows than data.min_rows={data.min_rows}",
        ),
        strict=False,
    )


def _problems_from(errors: SchemaErrors) -> list[Problem]:
    cases = errors.failure_cases.copy()
    # For a missing column pandera reports the column *name* as the failure case.
    missing = cases["check"] == "column_in_dataframe"
    cases.loc[missing, "column"] = cases.loc[missing, "failure_case"]
    # A failed coercion is also reported as a failed dtype check on the same rows: keep one.
    coerced = set(cases.loc[cases["check"].astype(str).str.startswith("coerce_dtype"), "column"])
    cases = cases[
        ~(cases["check"].astype(str).str.startswith("dtype(") & cases["column"].isin(coerced))
    ]
    problems: list[Problem] = []
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        rows = sorted(int(i) for i in group["index"].dropna().unique())
        sample = [str(v) for v in group["failure_case"].dropna().unique()[:3]]
        problems.append(
            Problem(
                column="(table)" if pd.isna(column) else str(column),
                check=str(check),
                message=_explain(str(check), sample),
                rows=rows[:MAX_ROWS_LISTED],
                count=len(rows),
            )
        )
    return problems


def _explain(check: str, sample: list[str]) -> str:
    if check == "column_in_dataframe":
        return "column is missing from the file (check the name and spelling in params.yaml)"
    if check.startswith("coerce_dtype"):
        wanted = check.split("'")[1] if "'" in check else "the declared type"
        grouped = thousands_example(pd.Series(sample))
        advice = f"; {THOUSANDS_ADVICE.format(example=grouped)}" if grouped else ""
        return f"values cannot be read as {wanted}: e.g. {', '.join(sample)}{advice}"
    if check == "not_nullable":
        return "has missing values, which are not allowed here"
    return check


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def other_delimiter(columns: list[str]) -> str | None:
    """A CSV read with commas that was written with another delimiter has one column."""
    if len(columns) == 1:
        for delimiter, name in DELIMITERS.items():
            if delimiter in columns[0]:
                return name
    return None


def _missing_column_hint(column: str, columns: list[str]) -> str:
    """A near spelling of a missing column in the file: case, spaces, a typo."""
    folded = {" ".join(c.split()).casefold(): c for c in columns}
    same = folded.get(" ".join(column.split()).casefold())
    if same is not None:
        return f"; the file has {same!r} (case or spaces differ)"
    close = difflib.get_close_matches(column, columns, n=2, cutoff=0.75)
    if close:
        return f"; did you mean {' or '.join(repr(c) for c in close)}?"
    return ""


def _target_problems(frame: pd.DataFrame, data: DataParams) -> list[Problem]:
    """Target problems whose message needs the data itself (values, counts), which a pandera
    check's fixed error text cannot name."""
    if data.target not in frame.columns:
        return []
    values = frame[data.target].dropna()
    problems = []
    if data.task == "regression" and values.nunique() == 1:
        # Trains a "perfect" model (r2 1.0) that predicts the one value it has seen.
        problems.append(
            Problem(
                column=data.target,
                check="constant_target",
                message=f"every row has the same value {plain_value(values.iloc[0])!r}: a model"
                " needs a target that varies",
            )
        )
    if data.task == "classification":
        problems += _label_spellings(values, data.target)
    return problems


def _label_spellings(labels: pd.Series, target: str) -> list[Problem]:
    """Labels that differ only in case or surrounding spaces ('Finished Late', 'finished late '):
    a classifier would learn them as separate classes."""
    counts = labels.value_counts()
    folded = pd.Series([str(label).strip().casefold() for label in counts.index], counts.index)
    problems = []
    for _, spellings in folded.groupby(folded, sort=False):
        if len(spellings) < 2:
            continue
        ways = counts[spellings.index]  # most rows first, as value_counts orders them
        written = " and ".join(f"{label!r} ({count} rows)" for label, count in ways.items())
        rows = sorted(int(i) for i in labels.index[labels.isin(ways.index[1:])])
        problems.append(
            Problem(
                column=target,
                check="label_spellings",
                message=f"one label written {len(ways)} ways, {written}: they would be separate"
                " classes; write it one way",
                rows=rows[:MAX_ROWS_LISTED],
                count=len(rows),
            )
        )
    return problems


def validate_frame(frame: pd.DataFrame, data: DataParams, path: Path) -> ValidationReport:
    """Validate ``frame`` (read from ``path``) and return the report, valid or not."""
    problems: list[Problem] = []
    try:
        build_schema(data).validate(frame, lazy=True)
    except SchemaErrors as errors:
        problems = _problems_from(errors)
    found = _target_problems(frame, data)
    if any(p.check == "label_spellings" for p in found):
        # The specific reason replaces the generic "more than two classes" hint.
        problems = [p for p in problems if p.check != TOO_MANY_CLASSES]
    problems += found
    problems += [
        Problem(
            column=name,
            check="duplicate_column",
            message="the header names this column more than once: rename the columns so that"
            " each name is unique",
        )
        for name in duplicate_columns(path, frame)
    ]
    columns = [str(c) for c in frame.columns]
    delimiter = other_delimiter(columns)
    if delimiter is not None and any(p.check == "column_in_dataframe" for p in problems):
        # One wide column holds every name: one problem says why, not one per missing column.
        problems = [p for p in problems if p.check != "column_in_dataframe"]
        problems.insert(
            0,
            Problem(
                column="(table)",
                check="delimiter",
                message=f"the file looks {delimiter}-delimited (its one column is"
                f" {columns[0][:60]!r}): save it comma-separated (spreadsheets: CSV UTF-8)",
            ),
        )
    problems = [
        replace(p, message=p.message + _missing_column_hint(p.column, columns))
        if p.check == "column_in_dataframe"
        else p
        for p in problems
    ]
    present = [c for c in data.stored_columns if c in frame.columns]
    distribution: dict[str, float] = {}
    if data.task == "classification" and data.target in frame.columns:
        shares = frame[data.target].astype(str).value_counts(normalize=True).sort_index()
        distribution = {str(k): round(float(v), 4) for k, v in shares.items()}
    return ValidationReport(
        file=str(path),
        valid=not problems,
        rows=len(frame),
        columns=len(frame.columns),
        md5=file_md5(path),
        problems=problems,
        schema={c: str(frame[c].dtype) for c in present},
        missing_values={c: int(frame[c].isna().sum()) for c in present if frame[c].isna().any()},
        target_distribution=distribution,
    )
