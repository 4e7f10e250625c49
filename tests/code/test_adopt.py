"""`mlops data adopt`: what it infers from a table, and how it rewrites params.yaml."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from construction_delays.adopt import (
    AdoptionError,
    choose_positive_class,
    classify_column,
    edit_params_text,
    infer_task,
    leakage_warnings,
    plan_adoption,
)
from construction_delays.config import parse_params
from construction_delays.model_zoos import MODEL_ZOOS

from tests.conftest import ROOT

PARAMS_TEXT = (ROOT / "params.yaml").read_text()
CURRENT_TASK = yaml.safe_load(PARAMS_TEXT)["data"].get("task", "classification")
OTHER_TASK = "regression" if CURRENT_TASK == "classification" else "classification"


def top_level_block(text: str, key: str) -> str:
    match = re.search(rf"^{key}:\n(?:(?:[ #].*)?\n)*?(?=^\S)", text, re.MULTILINE)
    assert match is not None, key
    return match.group(0).rstrip("\n") + "\n"


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["on time", "late", "late"], "classification"),
        ([0, 1, 1, 0], "classification"),
        ([True, False, True], "classification"),
        ([1, 2, 3, 2, 1], "classification"),  # few whole numbers: labels
        ([0.5, 1.25, 3.0, 2.2], "regression"),
        (list(range(100)), "regression"),  # many whole numbers: a quantity
    ],
)
def test_task_is_inferred_from_the_target(values: list[object], task: str) -> None:
    assert infer_task(pd.Series(values, name="y"), None)[0] == task


def test_a_requested_task_wins_but_regression_needs_numbers() -> None:
    assert infer_task(pd.Series([0, 1, 0], name="y"), "regression")[0] == "regression"
    with pytest.raises(AdoptionError, match="'y' is not numeric"):
        infer_task(pd.Series(["a", "b"], name="y"), "regression")


def test_positive_class_is_the_rarer_one_or_the_requested_label_with_its_type() -> None:
    target = pd.Series(["ok", "late", "ok", "ok"])
    assert choose_positive_class(target, None) == "late"
    numbers = pd.Series([0, 0, 1, 0, 1, 1, 1])
    assert choose_positive_class(numbers, None) == 0
    chosen = choose_positive_class(numbers, "1")
    assert chosen == 1 and type(chosen) is int  # written to YAML as a number, like the data
    assert choose_positive_class(pd.Series(["a", "b", "c"]), None) is None  # multiclass
    with pytest.raises(AdoptionError, match=r"--positive-class 'yes' is not one of .*'ok', 'late'"):
        choose_positive_class(target, "yes")


ROWS = 60


@pytest.mark.parametrize(
    ("values", "role", "note"),
    [
        (np.linspace(0, 1, ROWS), "numeric", ""),
        ([1, 2] * (ROWS // 2), "numeric", ""),
        ([str(x / 4) for x in range(ROWS)], "numeric", "numbers stored as text"),
        (["a", "b", "c"] * (ROWS // 3), "categorical", ""),
        (["same"] * ROWS, "excluded", "constant"),
        ([None] * ROWS, "excluded", "every value is missing"),
        (list(range(ROWS, 0, -1)), "excluded", "an identifier"),  # a shuffled row counter
        ([True, False, False] * (ROWS // 3), "numeric", ""),
        (["Jan", "Feb", "Mar", "Apr"] * (ROWS // 4), "categorical", ""),  # words, not dates
        ([f"note {i}" for i in range(ROWS)], "excluded", "free text"),
        ([f"c{i % 55}" for i in range(ROWS)], "excluded", "55 distinct values"),
        (
            [str(d.date()) for d in pd.date_range("2025-01-01", periods=ROWS)],
            "excluded",
            "dates",
        ),
        # Few distinct values were kept as categories, many excluded with advice to keep them.
        (["1,200", "3,400", "12,000"] * (ROWS // 3), "excluded", "thousands separators"),
        ([f"{950 + 5 * i:,}" for i in range(ROWS)], "excluded", "(e.g. '1,000'): re-export"),
    ],
)
def test_each_column_gets_a_role_and_a_reason_when_left_out(
    values: list[object], role: str, note: str
) -> None:
    plan = classify_column(pd.Series(values, name="column"), ROWS)
    assert plan.role == role
    assert note in plan.note


def test_identifier_names_and_forced_roles() -> None:
    ids = pd.Series(np.random.default_rng(0).permutation(1000)[:ROWS] * 7, name="Activity ID")
    assert classify_column(ids, ROWS).role == "excluded"
    assert classify_column(ids.rename("duration"), ROWS).role == "numeric"
    codes = pd.Series([10, 20, 30] * (ROWS // 3), name="zone code")
    assert classify_column(codes, ROWS, forced="categorical").role == "categorical"
    with pytest.raises(AdoptionError, match=r"--numeric 'grade': 1 value\(s\) are not numbers"):
        classify_column(pd.Series(["1", "2", "A"], name="grade"), 3, forced="numeric")
    with pytest.raises(AdoptionError, match=r"e.g. '1,500': numbers written with thousands sep"):
        classify_column(pd.Series(["999", "1,500"], name="price"), 2, forced="numeric")


def test_a_feature_that_gives_the_target_away_is_flagged() -> None:
    frame = pd.DataFrame(
        {
            "status after completion": ["closed late", "closed ok"] * 20,
            "crew": list(range(40)),
            "y": ["late", "ok"] * 20,
        }
    )
    plans = [classify_column(frame[c], len(frame)) for c in ("status after completion", "crew")]
    warnings = leakage_warnings(frame, "y", "classification", plans)
    assert len(warnings) == 1 and "'status after completion' determines the target" in warnings[0]


def edited(task: str, **overrides: object) -> tuple[str, list[str]]:
    arguments: dict[str, object] = {
        "data_path": "data/mine.csv",
        "target": "outcome",
        "task": task,
        "positive_class": None,
        "numeric": ["yes", "1.5", "size (m2)"],
        "categorical": ["null", "zone: north"],
        "rows": 150,
        "worst_missing_share": 0.32,
    }
    return edit_params_text(PARAMS_TEXT, **{**arguments, **overrides})  # type: ignore[arg-type]


def test_edited_params_keep_comments_and_read_back_exactly() -> None:
    text, changes = edited(CURRENT_TASK)
    raw = yaml.safe_load(text)  # PyYAML, as load_params and DVC read it (YAML 1.1)
    assert raw["data"]["numeric_features"] == ["yes", "1.5", "size (m2)"]
    assert raw["data"]["categorical_features"] == ["null", "zone: north"]
    assert raw["data"]["sample"] is None and "positive_class" not in raw["data"]
    assert raw["gates"]["metrics"] == {}
    assert raw["gates"]["data"] == {"min_rows": 150, "max_missing_share": 0.35}
    assert raw["models"] == yaml.safe_load(PARAMS_TEXT)["models"]  # same task: the zoo is kept
    # Every comment line of the original survives, and sections stay separated by a blank line.
    for line in PARAMS_TEXT.splitlines():
        if line.lstrip().startswith("#"):
            assert line in text.splitlines()
    assert "\n\nsplit:\n" in text and "\n\nmlflow:\n" in text
    parse_params(raw)
    if yaml.safe_load(PARAMS_TEXT)["gates"].get("metrics"):  # after an adoption: already cleared
        assert any("gates.metrics: cleared" in change for change in changes)


def test_another_task_brings_its_zoo_and_metric_settings() -> None:
    positive = "late" if OTHER_TASK == "classification" else None
    text, changes = edited(OTHER_TASK, positive_class=positive)
    params = parse_params(yaml.safe_load(text))
    assert params.data.task == OTHER_TASK
    assert top_level_block(text, "models") == MODEL_ZOOS[OTHER_TASK]
    assert params.data.positive_class == positive
    metric = {"classification": "f1", "regression": "r2"}[OTHER_TASK]
    assert params.evaluate.metric == metric
    assert metric in params.gates.max_regression and metric in params.monitoring.max_metric_drop
    assert any(f"task changed from {CURRENT_TASK}" in change for change in changes)
    assert any("mlflow.registered_model stays" in change for change in changes)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"row id": range(1, 41), "y": ["a", "b"] * 20},
            r"no usable feature columns \('row id': an identifier",
        ),
        ({"size": [3, 5, 8, 13] * 10, "y": ["a"] * 40}, "target 'y' has a single class 'a'"),
        (
            {"size": [3, 5, 8, 13] * 10, "y": [100.5] * 40},
            "target 'y' has the same value 100.5 in every row: a model needs a target that varies",
        ),
        ({"size": [3, 5, 8, 13] * 10, "y": [1.5, 2.5] * 20}, None),  # regression: valid
    ],
)
def test_the_plan_refuses_tables_it_cannot_train_on(
    tmp_path: Path, table: dict[str, object], message: str | None
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS_TEXT)
    pd.DataFrame(table).to_csv(tmp_path / "mine.csv", index=False)
    if message is None:
        plan = plan_adoption(tmp_path, params, tmp_path / "mine.csv", "y", task="regression")
        assert plan.data_path == "data/mine.csv" and plan.task == "regression"
        assert any(w.startswith("only 40 rows: the test split holds about") for w in plan.warnings)
        assert params.read_text() == PARAMS_TEXT  # planning writes nothing
        return
    with pytest.raises(AdoptionError, match=message):
        plan_adoption(tmp_path, params, tmp_path / "mine.csv", "y")


def test_a_repeated_identifier_is_offered_as_the_group_and_group_writes_data_group(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    rows = 120
    table = pd.DataFrame(
        {
            "project_id": [f"P{i % 24:02d}" for i in range(rows)],
            "crew": rng.integers(2, 20, rows),
            "late": rng.choice(["yes", "no"], rows),
        }
    )
    table.to_csv(tmp_path / "mine.csv", index=False)
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS_TEXT)

    suggested = plan_adoption(tmp_path, params, tmp_path / "mine.csv", "late")
    [column] = [c for c in suggested.columns if c.name == "project_id"]
    assert column.role == "excluded" and "--group 'project_id'" in column.note
    assert yaml.safe_load(suggested.params_text)["data"].get("group") is None
    assert not any(w.startswith("only") for w in suggested.warnings)  # 120 rows: enough

    grouped = plan_adoption(tmp_path, params, tmp_path / "mine.csv", "late", group="project_id")
    [column] = [c for c in grouped.columns if c.name == "project_id"]
    assert column.role == "group"
    data = parse_params(yaml.safe_load(grouped.params_text)).data
    assert data.group == "project_id" and "project_id" not in data.feature_columns
    assert any("data.group: 'project_id'" in change for change in grouped.changes)

    # Re-adopting another file without --group clears the old group rather than keep a stale one.
    params.write_text(grouped.params_text)
    ungrouped = plan_adoption(tmp_path, params, tmp_path / "mine.csv", "late", drop=["project_id"])
    assert yaml.safe_load(ungrouped.params_text)["data"].get("group") is None

    with pytest.raises(AdoptionError, match="--group 'projectid' is not a column"):
        plan_adoption(tmp_path, params, tmp_path / "mine.csv", "late", group="projectid")
    with pytest.raises(AdoptionError, match="--group names the column that groups rows"):
        plan_adoption(tmp_path, params, tmp_path / "mine.csv", "late", group="late")


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_the_smoke_request_sends_integer_codes_as_training_reads_them(
    tmp_path: Path, suffix: str
) -> None:
    """Codes 1-5 with missing values are floats to pandas (4.0) but "4" to training: the smoke
    request must send "4", or the deployed model meets an unknown category and still passes."""
    rng = np.random.default_rng(1)
    rows = 80
    codes = rng.integers(1, 6, rows).astype(float)
    codes[::7] = np.nan
    table = pd.DataFrame(
        {"size": rng.normal(0, 1, rows), "store_code": codes, "y": rng.choice(["a", "b"], rows)}
    )
    source = tmp_path / f"mine.{suffix}"
    if suffix == "csv":
        table.assign(store_code=table["store_code"].astype("Int64")).to_csv(source, index=False)
    else:
        table.to_parquet(source, index=False)  # float codes: 4.0
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS_TEXT)

    plan = plan_adoption(tmp_path, params, source, "y", categorical=["store_code"])

    sent = [record["store_code"] for record in plan.smoke_records]
    known = {str(int(code)) for code in codes[~np.isnan(codes)]}
    assert len(sent) == 2 and all(isinstance(code, str) and code in known for code in sent)


def numbered_rows(count: int, row: Callable[[int], str]) -> str:
    return "".join(f"{row(i)}\n" for i in range(count))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # pandas would read the second 'size' as 'size.1', a feature no scorer finds.
        (
            "size,size,y\n" + numbered_rows(40, lambda i: f"{i % 7},{i % 5},{'ab'[i % 2]}"),
            "column 'size': the header names this column more than once",
        ),
        (
            "size,y\n"
            + numbered_rows(40, lambda i: f"{i % 7},{['Late', 'late ', 'On time'][i % 3]}"),
            r"one label written 2 ways, 'Late' \(14 rows\) and 'late ' \(13 rows\)",
        ),
    ],
)
def test_the_plan_refuses_tables_validation_rejects(
    tmp_path: Path, text: str, message: str
) -> None:
    from construction_delays.validation import DataValidationError

    params = tmp_path / "params.yaml"
    params.write_text(PARAMS_TEXT)
    (tmp_path / "mine.csv").write_text(text)
    with pytest.raises(DataValidationError, match=message):
        plan_adoption(tmp_path, params, tmp_path / "mine.csv", "y")
