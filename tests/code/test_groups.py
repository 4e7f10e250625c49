"""`data.group`: rows that share a group (say, the activities of one project) are never split
between training and evaluation, neither by the train/test split nor by the CV folds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from construction_delays.config import ConfigError, Params, parse_params
from construction_delays.data import DataError, split_columns, split_frame
from construction_delays.gates import ScoredProblem
from construction_delays.sample_data import generate
from construction_delays.stages import load_groups, load_split
from construction_delays.training import make_cv, train_model
from construction_delays.validation import validate_frame

from tests.conftest import reference_config, small_zoo

GROUP = "Project ID"


def grouped_params(group: str | None = GROUP, **data: Any) -> Params:
    raw = reference_config().model_dump(mode="json")
    raw["data"] |= {"group": group, **data}
    raw["cv"] |= {"n_jobs": 1}
    return parse_params(raw)


def grouped_regression_params() -> Params:
    raw = reference_config().model_dump(mode="json")
    raw["data"] |= {"group": GROUP, "task": "regression", "target": "Delay (days)"}
    raw["data"]["positive_class"] = None
    raw["models"] = small_zoo("regression")
    raw["evaluate"] = {"metric": "r2"}
    raw["gates"] |= {"metrics": {}, "max_regression": {"r2": 0.02}}
    raw["monitoring"]["max_metric_drop"] = {"r2": 0.05}
    return parse_params(raw)


def grouped_frame(rows: int = 1000, groups: int = 83, seed: int = 3) -> pd.DataFrame:
    frame = generate(rows=rows, seed=seed)
    frame[GROUP] = [f"P{i % groups:03d}" for i in range(rows)]
    return frame


def test_whole_groups_go_to_one_side_of_the_split_in_about_the_configured_share() -> None:
    params = grouped_params()
    frame = grouped_frame()

    train, test = split_frame(frame, params.data, params.split, seed=42)

    assert not set(train[GROUP]) & set(test[GROUP])
    assert len(train) + len(test) == len(frame)
    assert len(test) / len(frame) == pytest.approx(params.split.test_size, abs=0.02)
    again, _ = split_frame(frame, params.data, params.split, seed=42)
    pd.testing.assert_frame_equal(train, again)
    other, _ = split_frame(frame, params.data, params.split, seed=43)
    assert set(other[GROUP]) != set(train[GROUP])


def test_without_enough_groups_the_split_and_the_folds_say_which_setting_to_change() -> None:
    params = grouped_params()
    one_group = grouped_frame(rows=200, groups=1)
    with pytest.raises(DataError, match=r"data\.group 'Project ID' has 1 group"):
        split_frame(one_group, params.data, params.split, seed=42)

    folds = params.cv.folds  # as the project configures it
    few = grouped_frame(rows=200, groups=folds - 1)
    features, target = few[params.data.feature_columns], few[params.data.target]
    name = next(iter(params.enabled_models))
    with pytest.raises(
        ValueError,
        match=rf"has {folds - 1} groups in the training split, fewer than cv\.folds={folds}",
    ):
        train_model(name, params, features, target, groups=few[GROUP])
    with pytest.raises(ValueError, match="no groups were given"):
        train_model(name, params, features, target)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_no_cv_fold_validates_on_a_group_it_trained_on(task: str) -> None:
    frame = grouped_frame()
    params = grouped_regression_params() if task == "regression" else grouped_params()
    target = frame[params.data.target]

    folds = list(make_cv(params).split(frame, target, groups=frame[GROUP]))

    assert len(folds) == params.cv.folds
    for fit_rows, validation_rows in folds:
        assert not set(frame[GROUP].iloc[fit_rows]) & set(frame[GROUP].iloc[validation_rows])
    assert sorted(np.concatenate([v for _, v in folds])) == list(range(len(frame)))


def test_grouped_cv_scores_a_model_on_unseen_groups_not_on_memorised_ones() -> None:
    """Each project's outcome depends on the project (an identifying site code), not on signal a
    new project would share. Row-wise folds let a tree memorise the code; grouped folds do not."""
    rng = np.random.default_rng(0)
    projects = 80
    frame = grouped_frame(rows=projects * 10, groups=projects)
    code = {f"P{i:03d}": rng.uniform(0, 1000) for i in range(projects)}
    outcome = {p: ("Delayed" if rng.random() < 0.5 else "On Schedule") for p in code}
    frame["Project Schedules"] = frame[GROUP].map(code)
    frame["Schedule Adherence"] = frame[GROUP].map(outcome)
    raw = grouped_params().model_dump(mode="json")
    raw["data"] |= {"numeric_features": ["Project Schedules"], "categorical_features": []}
    raw["behaviour"] = {}  # its checks name the features left out here
    raw["models"] = {
        "tree": {
            "estimator": "sklearn.tree.DecisionTreeClassifier",
            "params": {"random_state": 0},
            "grid": {"max_depth": [None]},
        }
    }
    grouped = parse_params(raw)
    raw["data"]["group"] = None
    row_wise = parse_params(raw)
    features, target = frame[["Project Schedules"]], frame["Schedule Adherence"]

    memorised = train_model("tree", row_wise, features, target).summary["cv"]["f1"]["mean"]
    honest = train_model("tree", grouped, features, target, groups=frame[GROUP])
    assert memorised > 0.95
    assert honest.summary["cv"]["f1"]["mean"] < 0.75


def test_the_split_files_keep_the_group_but_the_model_never_sees_it(tmp_path: Path) -> None:
    params = grouped_params()
    frame = grouped_frame(rows=100)
    path = tmp_path / "train.parquet"
    split_columns(frame, params.data).to_parquet(path, index=False)

    features, target = load_split(params, path)

    assert list(features.columns) == params.data.feature_columns
    assert target.name == params.data.target
    assert list(load_groups(params, path)) == list(frame[GROUP])
    assert load_groups(grouped_params(group=None), path) is None


def test_a_group_that_is_also_a_feature_is_stored_once_and_used_by_both() -> None:
    params = grouped_params(group="Site Region")
    frame = grouped_frame(rows=400)

    stored = split_columns(frame, params.data)
    train, test = split_frame(frame, params.data, params.split, seed=42)

    assert list(stored.columns).count("Site Region") == 1
    assert "Site Region" in params.data.feature_columns
    assert not set(train["Site Region"]) & set(test["Site Region"])


def test_validation_names_rows_without_a_group_and_a_missing_group_column(tmp_path: Path) -> None:
    params = grouped_params()
    frame = grouped_frame(rows=200)
    frame.loc[[3, 7], GROUP] = None
    report = validate_frame(frame, params.data, _saved(frame, tmp_path))
    assert not report.valid
    [problem] = report.problems
    assert (problem.column, problem.rows) == (GROUP, [3, 7])

    report = validate_frame(frame.drop(columns=[GROUP]), params.data, _saved(frame, tmp_path))
    assert [p.column for p in report.problems] == [GROUP]
    assert "missing from the file" in report.problems[0].message

    single = grouped_frame(rows=200, groups=1)
    report = validate_frame(single, params.data, _saved(single, tmp_path))
    assert "at least two distinct values" in report.problems[0].message


def test_the_target_cannot_be_the_group() -> None:
    with pytest.raises(ConfigError, match="group 'Schedule Adherence' is the target"):
        grouped_params(group="Schedule Adherence")


def _saved(frame: pd.DataFrame, directory: Path) -> Path:
    path = directory / "data.csv"
    frame.to_csv(path, index=False)
    return path


def test_scores_on_unseen_groups_are_not_gated_against_scores_on_random_rows() -> None:
    from construction_delays.report import Champion, Snapshot, compute_gates

    grouped = grouped_params()
    metric = grouped.evaluate.metric
    tolerance = grouped.gates.max_regression[metric]
    honest = {metric: 0.40, "roc_auc": 0.60}
    inflated = {metric: 0.90, "roc_auc": 0.95}
    current = Snapshot(None, metrics={"test": honest}, validation={"rows": 5000})
    ungrouped_data = {**grouped.data.model_dump(mode="json"), "group": None}
    main = Snapshot("main", metrics={"test": inflated}, params={"data": ungrouped_data})
    champion = Champion(inflated, "v3", ScoredProblem.of({**ungrouped_data}))

    results, notes = compute_gates(grouped, current, main, champion)

    assert not [r for r in results if " vs " in r.gate]
    assert len(notes) == 2
    assert (
        "`main` was tested on rows drawn at random and this run on whole groups of 'Project ID'"
        in notes[0]
    )
    assert notes[1].startswith("the registry's champion v3 was tested on rows drawn at random")

    # The same kind of split on both sides is compared as before, and the drop fails the gate.
    same = Snapshot("main", metrics={"test": inflated}, params={"data": grouped.data.model_dump()})
    results, notes = compute_gates(grouped, current, same, None)
    [versus_main] = [r for r in results if r.gate == f"{metric} vs main"]
    assert not notes and not versus_main.passed and tolerance < 0.5


def test_a_run_logs_its_group_only_when_it_has_one() -> None:
    from construction_delays.tracking import flat_params

    assert flat_params(grouped_params())["group"] == GROUP
    assert "group" not in flat_params(grouped_params(group=None))
    assert ScoredProblem.of(flat_params(grouped_params(group=None))) == ScoredProblem(
        "classification", grouped_params().data.target, None
    )


@pytest.mark.parametrize("group", [GROUP, None])
def test_the_model_card_says_whether_the_test_groups_were_unseen(group: str | None) -> None:
    from construction_delays.modelcard import CardInputs, build_model_card

    card = build_model_card(
        CardInputs(
            name="model",
            version="2",
            run_id="r",
            estimator="tree",
            task="classification",
            target="late",
            positive_class="yes",
            lineage={},
            validation={},
            metrics={"f1": 0.5},
            per_class={},
            test_rows=120,
            gates=[],
            verdict="promoted to champion",
            group=group,
        )
    )
    unseen = "(120 rows; whole groups of `Project ID` that training never saw)."
    assert (unseen in card) == (group is not None)
    assert ("(120 rows)." in card) == (group is None)
