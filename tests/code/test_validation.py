"""Data validation: one report lists every problem, with columns and offending rows; file errors."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from construction_delays.config import DataParams, Params
from construction_delays.data import DataError, read_table
from construction_delays.sample_data import DELAYED, ON_SCHEDULE, TARGET, generate
from construction_delays.validation import (
    DataValidationError,
    ValidationReport,
    validate_frame,
)

from tests.conftest import reference_config


@pytest.fixture(scope="module")
def params() -> Params:
    return reference_config()


@pytest.fixture(scope="module")
def data(params: Params) -> DataParams:
    return params.data


@pytest.fixture(scope="module")
def good_frame() -> pd.DataFrame:
    return generate(rows=200, seed=11)


def validate_file(frame: pd.DataFrame, data: DataParams, path: Path) -> ValidationReport:
    """Round-trip through a real CSV file, as the validate stage does."""
    frame.to_csv(path, index=False)
    return validate_frame(read_table(path), data, path)


def checks_by_column(report: ValidationReport) -> set[tuple[str, str]]:
    return {(problem.column, problem.check) for problem in report.problems}


def test_good_frame_is_valid(tmp_path: Path, good_frame: pd.DataFrame, data: DataParams) -> None:
    path = tmp_path / "good.csv"
    report = validate_file(good_frame, data, path)

    assert report.valid, report.describe_problems()
    assert report.problems == []
    assert report.rows == 200
    assert report.columns == len(good_frame.columns)
    assert report.md5 == hashlib.md5(path.read_bytes()).hexdigest()
    assert set(report.target_distribution) == {DELAYED, ON_SCHEDULE}
    assert sum(report.target_distribution.values()) == pytest.approx(1.0, abs=1e-3)
    expected_missing = {c: int(n) for c, n in good_frame.isna().sum().items() if n}
    assert report.missing_values == expected_missing
    assert set(report.schema) == {*data.feature_columns, data.target}
    assert report.to_dict()["valid"] is True


def test_every_problem_is_reported_at_once(
    tmp_path: Path, good_frame: pd.DataFrame, data: DataParams
) -> None:
    frame = good_frame.drop(columns=["Activity Type"])
    frame["Crew Size"] = frame["Crew Size"].astype(object)
    frame.loc[[4, 150], "Crew Size"] = ["twelve", "?"]
    frame.loc[9, TARGET] = np.nan
    frame["Site Region"] = np.nan
    path = tmp_path / "bad.csv"

    report = validate_file(frame, data, path)

    assert not report.valid
    found = checks_by_column(report)
    assert ("Activity Type", "column_in_dataframe") in found
    assert ("Crew Size", "coerce_dtype('float64')") in found
    assert (TARGET, "not_nullable") in found
    all_missing = (
        "all values are missing: fill them, or remove the column from data.categorical_features"
        " in params.yaml"
    )
    assert ("Site Region", all_missing) in found
    by_check = {(p.column, p.check): p for p in report.problems}
    assert by_check[("Crew Size", "coerce_dtype('float64')")].rows == [4, 150]
    assert by_check[(TARGET, "not_nullable")].rows == [9]

    text = report.describe_problems()
    assert text.startswith(f"{path}: {len(report.problems)} data problem(s) found")
    assert "column 'Activity Type': column is missing from the file" in text
    assert "column 'Crew Size': values cannot be read as float64: e.g. twelve, ?" in text
    assert "(rows 4, 150; row 0 is the first data row)" in text
    assert f"column '{TARGET}': has missing values" in text
    assert f"column 'Site Region': {all_missing}" in text

    error = DataValidationError(report)
    assert str(error) == text
    assert error.report is report


def test_missing_columns_are_each_named(
    tmp_path: Path, good_frame: pd.DataFrame, data: DataParams
) -> None:
    frame = good_frame.drop(columns=["Crew Size", "Site Region", TARGET])
    report = validate_file(frame, data, tmp_path / "bad.csv")

    assert checks_by_column(report) == {
        ("Crew Size", "column_in_dataframe"),
        ("Site Region", "column_in_dataframe"),
        (TARGET, "column_in_dataframe"),
    }


def test_a_missing_column_says_what_the_file_has_instead(
    tmp_path: Path, good_frame: pd.DataFrame, data: DataParams
) -> None:
    renamed = good_frame.rename(columns={"Crew Size": "crew  size", "Site Region": "Site Regoin"})
    report = validate_file(renamed, data, tmp_path / "typos.csv")
    messages = {p.column: p.message for p in report.problems}
    assert messages["Crew Size"].endswith("; the file has 'crew  size' (case or spaces differ)")
    assert messages["Site Region"].endswith("; did you mean 'Site Regoin'?")

    semicolons = tmp_path / "export.csv"
    good_frame.to_csv(semicolons, index=False, sep=";")
    report = validate_frame(read_table(semicolons), data, semicolons)
    assert not report.valid
    (problem,) = report.problems  # one reason, not one per column
    assert problem.message.startswith("the file looks semicolon-delimited (its one column is")


def test_many_offending_rows_are_truncated_with_a_count(
    tmp_path: Path, good_frame: pd.DataFrame, data: DataParams
) -> None:
    frame = good_frame.copy()
    frame["Subcontractor Count"] = frame["Subcontractor Count"].astype(object)
    bad_rows = list(range(20, 45))
    frame.loc[bad_rows, "Subcontractor Count"] = "unknown"

    report = validate_file(frame, data, tmp_path / "bad.csv")
    problem = next(p for p in report.problems if p.check.startswith("coerce_dtype"))

    assert problem.column == "Subcontractor Count"
    assert problem.rows == bad_rows[:10]
    assert problem.count == 25
    assert "and 15 more" in report.describe_problems()


def test_single_class_target_is_reported(
    tmp_path: Path, good_frame: pd.DataFrame, data: DataParams
) -> None:
    frame = good_frame.assign(**{TARGET: DELAYED})
    report = validate_file(frame, data, tmp_path / "one_class.csv")

    assert not report.valid
    assert [(p.column, p.message) for p in report.problems] == [
        (TARGET, "the target needs at least two classes to train a classifier")
    ]


def test_positive_class_that_never_occurs_is_reported(
    tmp_path: Path, good_frame: pd.DataFrame, data: DataParams
) -> None:
    frame = good_frame.assign(**{TARGET: good_frame[TARGET].replace({DELAYED: "Late"})})
    report = validate_file(frame, data, tmp_path / "renamed.csv")

    assert not report.valid
    assert len(report.problems) == 1
    assert report.problems[0].column == TARGET
    assert re.search(
        r"positive_class 'Delayed' \(params\.yaml data\.positive_class\) never occurs",
        report.problems[0].message,
    )


def test_infinite_numbers_are_reported_with_their_rows(
    tmp_path: Path, good_frame: pd.DataFrame, data: DataParams
) -> None:
    frame = good_frame.copy()
    frame.loc[[3, 7], "Crew Size"] = [np.inf, -np.inf]
    report = validate_file(frame, data, tmp_path / "inf.csv")

    assert not report.valid
    (problem,) = report.problems
    assert problem.column == "Crew Size" and "infinite values" in problem.message
    assert sorted(problem.rows) == [3, 7]


def test_a_third_class_with_a_positive_class_set_is_reported(
    tmp_path: Path, good_frame: pd.DataFrame, data: DataParams
) -> None:
    """A third label would otherwise train a silent multiclass model."""
    frame = good_frame.copy()
    frame.loc[:4, TARGET] = "Cancelled"
    report = validate_file(frame, data, tmp_path / "third.csv")

    assert not report.valid
    (problem,) = report.problems
    assert problem.column == TARGET and "more than two classes" in problem.message


@pytest.mark.parametrize("positive_class", [DELAYED, None])
def test_a_label_written_two_ways_is_reported_with_both_spellings(
    tmp_path: Path, good_frame: pd.DataFrame, data: DataParams, positive_class: str | None
) -> None:
    frame = good_frame.copy()
    frame.loc[[2, 5, 9], TARGET] = "delayed "
    delayed = int((frame[TARGET] == DELAYED).sum())
    settings = data.model_copy(update={"positive_class": positive_class})
    report = validate_file(frame, settings, tmp_path / "typo.csv")

    assert not report.valid
    (problem,) = report.problems  # the specific reason, not "more than two classes" as well
    assert problem.column == TARGET and problem.rows == [2, 5, 9]
    assert (
        f"one label written 2 ways, 'Delayed' ({delayed} rows) and 'delayed ' (3 rows)"
        in problem.message
    )


def test_an_unquoted_yes_as_positive_class_gets_a_hint(
    tmp_path: Path, good_frame: pd.DataFrame, data: DataParams
) -> None:
    frame = good_frame.assign(**{TARGET: good_frame[TARGET].map({DELAYED: "yes"}).fillna("no")})
    yes_unquoted = data.model_copy(update={"positive_class": True})  # what YAML makes of `yes`
    report = validate_file(frame, yes_unquoted, tmp_path / "yes_no.csv")

    assert not report.valid
    assert 'write it in quotes, e.g. positive_class: "yes"' in report.problems[0].message


def test_too_few_rows_is_a_table_problem(
    tmp_path: Path, good_frame: pd.DataFrame, data: DataParams
) -> None:
    report = validate_file(good_frame.head(data.min_rows - 1), data, tmp_path / "small.csv")

    assert [(p.column, p.message) for p in report.problems] == [
        ("(table)", f"fewer rows than data.min_rows={data.min_rows}")
    ]


@pytest.fixture(scope="module")
def regression_data(params: Params) -> DataParams:
    raw = params.model_dump()
    raw["data"].update(
        task="regression",
        positive_class=None,
        target="Planned Duration (days)",
        numeric_features=["Crew Size"],
        categorical_features=["Site Region"],
    )
    raw["evaluate"]["metric"] = "mae"
    raw["gates"] = {"metrics": {"mae": 10.0}}
    raw["monitoring"] = {}
    raw["behaviour"] = {}  # its checks name the features left out here
    return Params.model_validate(raw).data


def test_regression_target_must_be_numeric(
    tmp_path: Path, good_frame: pd.DataFrame, regression_data: DataParams
) -> None:
    data = regression_data
    frame = good_frame.copy()
    frame["Planned Duration (days)"] = frame["Planned Duration (days)"].astype(object)
    frame.loc[3, "Planned Duration (days)"] = "long"

    report = validate_file(frame, data, tmp_path / "regression.csv")

    assert ("Planned Duration (days)", "coerce_dtype('float64')") in checks_by_column(report)
    assert report.target_distribution == {}


def test_read_table_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.csv"
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: file not found"):
        read_table(path)


def test_read_table_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: file is empty"):
        read_table(path)


def test_read_table_header_only_csv(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("Crew Size,Site Region,Schedule Adherence\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: has a header but no rows"):
        read_table(path)


def test_read_table_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"this is not parquet at all")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: cannot be parsed"):
        read_table(path)


def test_read_table_non_utf8_csv_says_how_to_save_it(
    tmp_path: Path, good_frame: pd.DataFrame
) -> None:
    path = tmp_path / "excel.csv"
    good_frame.assign(note="année").to_csv(path, index=False, encoding="cp1252")
    with pytest.raises(
        DataError, match=r"utf-8.*: the file is not UTF-8 text; save it as CSV UTF-8"
    ):
        read_table(path)


def test_read_table_parquet_roundtrip(tmp_path: Path, good_frame: pd.DataFrame) -> None:
    path = tmp_path / "data.parquet"
    good_frame.to_parquet(path, index=False)
    pd.testing.assert_frame_equal(read_table(path), good_frame)


def test_a_constant_regression_target_is_reported(
    tmp_path: Path, good_frame: pd.DataFrame, regression_data: DataParams
) -> None:
    """It would train a "perfect" model (r2 1.0) that always predicts that value."""
    frame = good_frame.assign(**{regression_data.target: 100.5})
    report = validate_file(frame, regression_data, tmp_path / "constant.csv")

    assert not report.valid
    assert [(p.column, p.message) for p in report.problems] == [
        (
            regression_data.target,
            "every row has the same value 100.5: a model needs a target that varies",
        )
    ]


@pytest.mark.parametrize("name", ["dup.csv", "dup.csv.gz"])
def test_a_column_name_repeated_in_the_header_is_reported(
    tmp_path: Path, good_frame: pd.DataFrame, data: DataParams, name: str
) -> None:
    """pandas reads the second one as 'Crew Size.1': it trained, then scoring could not find it."""
    frame = good_frame.copy()
    frame.insert(1, "Crew Size.1", frame["Crew Size"])
    path = tmp_path / name
    frame.rename(columns={"Crew Size.1": "Crew Size"}).to_csv(path, index=False)
    report = validate_frame(read_table(path), data, path)

    assert not report.valid
    assert [(p.column, p.check) for p in report.problems] == [("Crew Size", "duplicate_column")]
    assert "rename the columns" in report.problems[0].message


def test_numbers_with_thousands_separators_get_the_fix_and_no_false_infinities(
    tmp_path: Path, good_frame: pd.DataFrame, data: DataParams
) -> None:
    frame = good_frame.copy()
    frame["Crew Size"] = [f"{v * 1000:,.0f}" if v == v else "" for v in frame["Crew Size"]]
    report = validate_file(frame, data, tmp_path / "grouped.csv")

    (problem,) = report.problems  # no "infinite values" problem for a column of text
    assert problem.column == "Crew Size" and problem.check == "coerce_dtype('float64')"
    example = next(v for v in frame["Crew Size"] if v)
    assert "," in example and problem.message.endswith(
        f"; numbers written with thousands separators (e.g. {example!r}): re-export the file"
        " without them"
    )
