"""Behavioural checks: they pass a model that reacts to a feature the way the data was generated,
fail one that does not (naming the check and by how much), and bad checks in params.yaml stop
with the field named."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from construction_delays import behaviour
from construction_delays.config import ConfigError, Params, parse_params
from construction_delays.evaluation import classification_metrics
from construction_delays.gates import behaviour_gate
from construction_delays.models import build_pipeline
from construction_delays.sample_data import DELAYED, generate

from tests.conftest import reference_config

WEATHER, SLACK, REGION = "Weather Delay Days", "Project Schedules", "Site Region"


def with_behaviour(section: dict[str, Any], **data: Any) -> Params:
    raw = reference_config().model_dump(mode="json", by_alias=True)
    raw["behaviour"] = section
    raw["data"] |= data
    return parse_params(raw)


@pytest.fixture(scope="module")
def test_rows() -> tuple[pd.DataFrame, pd.Series]:
    params = reference_config()
    frame = generate(rows=1500, seed=3)
    return frame[params.data.feature_columns], frame[params.data.target]


def fitted(model: str, params: Params, rows: tuple[pd.DataFrame, pd.Series], **set_params: Any):
    pipeline, _ = build_pipeline(model, params.models[model], params.data)
    features, target = rows
    return pipeline.set_params(**set_params).fit(features, target)


@pytest.fixture(scope="module")
def logistic(test_rows: tuple[pd.DataFrame, pd.Series]) -> Any:
    # In the generator, weather delays raise the odds of a delay and schedule slack lowers them.
    return fitted("logistic_regression", reference_config(), test_rows)


def run(params: Params, model: Any, rows: tuple[pd.DataFrame, pd.Series]) -> list[Any]:
    features, target = rows
    proba = model.predict_proba(features)
    classes = list(model.classes_)
    metrics = classification_metrics(target, model.predict(features), proba, classes, DELAYED)
    return behaviour.run_checks(params, model, features, target, metrics)


def test_directional_checks_pass_the_way_the_data_was_made_and_fail_the_other_way(
    logistic: Any, test_rows: tuple[pd.DataFrame, pd.Series]
) -> None:
    params = with_behaviour(
        {
            "directional": [
                {"feature": WEATHER, "add": 3, "expect": "up"},
                {"feature": SLACK, "add": 10, "expect": "down"},
                {"feature": WEATHER, "add": 3, "expect": "down"},
            ]
        }
    )
    up, down, wrong = run(params, logistic, test_rows)
    assert up.passed and down.passed
    assert up.measures["wrong_way_share"] == 0 and up.measures["mean_change"] > 0.05
    assert down.measures["wrong_way_share"] == 0 and down.measures["mean_change"] < -0.05
    # A logistic model is monotonic: every row moves the unexpected way, except those whose
    # weather is missing (missing + 3 is still missing, imputed as before).
    features, _ = test_rows
    known = round(float(features[WEATHER].notna().mean()), 4)
    assert 0.9 < known < 1
    assert not wrong.passed and wrong.measures["wrong_way_share"] == known
    assert wrong.check == f"{WEATHER} +3 → probability down"
    assert f"{known:.1%} the other way" in wrong.value


def test_a_model_that_ignores_the_feature_fails_its_directional_check(
    test_rows: tuple[pd.DataFrame, pd.Series],
) -> None:
    """No row moves the wrong way, but none moves the right way either: that is not `up`."""
    params = with_behaviour({"directional": [{"feature": WEATHER, "add": 3, "expect": "up"}]})
    features, target = test_rows
    # Trained without the weather signal (the column is constant), the model cannot react to it.
    blind = fitted("logistic_regression", params, (features.assign(**{WEATHER: 0.0}), target))
    (result,) = run(params, blind, test_rows)
    assert result.measures["wrong_way_share"] == 0
    assert abs(result.measures["mean_change"]) < 1e-9
    assert not result.passed


def test_invariance_tolerates_small_noise_and_catches_a_change_that_matters(
    logistic: Any, test_rows: tuple[pd.DataFrame, pd.Series]
) -> None:
    params = with_behaviour(
        {
            "invariance": [
                {"feature": SLACK, "noise": 0.1},
                {"feature": SLACK, "add": 30, "max_changed": 0.05},
            ]
        }
    )
    small, large = run(params, logistic, test_rows)
    assert small.passed and small.measures["changed_share"] < 0.02
    assert not large.passed and large.measures["changed_share"] > 0.1
    # The check is its own oracle: the share of rows whose predicted class differs.
    features, _ = test_rows
    moved = features.assign(**{SLACK: features[SLACK] + 30})
    expected = np.mean(logistic.predict(features) != logistic.predict(moved))
    assert large.measures["changed_share"] == pytest.approx(expected, abs=1e-4)


def test_set_and_missing_reach_the_model_as_a_category_and_as_a_gap(
    logistic: Any, test_rows: tuple[pd.DataFrame, pd.Series]
) -> None:
    params = with_behaviour(
        {
            "invariance": [
                {"feature": REGION, "set": "Offshore", "max_changed": 1.0},
                {"feature": WEATHER, "missing": True, "max_changed": 1.0},
            ]
        }
    )
    features, _ = test_rows
    unseen = behaviour.change_feature(features, params.behaviour.invariance[0], seed=0)
    gap = behaviour.change_feature(features, params.behaviour.invariance[1], seed=0)
    assert set(unseen[REGION]) == {"Offshore"} and gap[WEATHER].isna().all()
    assert features[REGION].nunique() > 1  # the input is left as it was
    unseen_result, gap_result = run(params, logistic, test_rows)
    assert unseen_result.check == f"{REGION} = 'Offshore' → same prediction"
    assert gap_result.check == f"{WEATHER} missing → same prediction"
    assert 0 < gap_result.measures["changed_share"] < 1


def test_a_number_set_on_a_category_is_the_code_training_read() -> None:
    """`set: 3` on an integer-coded category means "3", as training reads the codes; a split
    file's text column (str dtype, not object) is a category too."""
    params = with_behaviour({"invariance": [{"feature": REGION, "set": 3}]})
    features = pd.DataFrame({REGION: pd.Series(["1", "3", None], dtype="str")})

    changed = behaviour.change_feature(features, params.behaviour.invariance[0], seed=0)

    assert changed[REGION].tolist() == ["3", "3", "3"]


def test_noise_is_seeded_so_a_rerun_measures_the_same() -> None:
    params = with_behaviour({"invariance": [{"feature": SLACK, "noise": 2}]})
    features = generate(rows=50, seed=1)[params.data.feature_columns]
    check = params.behaviour.invariance[0]
    first, again = (behaviour.change_feature(features, check, seed=5) for _ in range(2))
    pd.testing.assert_frame_equal(first, again)
    shift = first[SLACK] - features[SLACK]
    assert shift.abs().max() <= 2 and shift.abs().min() > 0


def test_the_baseline_is_the_best_constant_prediction_of_the_metric() -> None:
    target = pd.Series(["On Schedule"] * 70 + [DELAYED] * 30)

    def best(metric: str) -> tuple[str, float]:
        raw = reference_config().model_dump(mode="json", by_alias=True)
        raw["evaluate"]["metric"] = metric
        return behaviour.constant_baseline(target, parse_params(raw))

    assert best("accuracy") == ("always 'On Schedule'", 0.7)
    # F1 of the positive class: always predicting it has precision 0.3 and recall 1.
    assert best("f1") == (f"always {DELAYED!r}", round(2 * 0.3 / 1.3, 4))
    assert best("roc_auc")[1] == 0.5

    raw = reference_config().model_dump(mode="json", by_alias=True)
    raw["data"]["positive_class"] = True
    raw["evaluate"]["metric"] = "accuracy"
    flags = pd.Series(np.array([False] * 70 + [True] * 30))  # a bool target, as pandas reads it
    assert behaviour.constant_baseline(flags, parse_params(raw)) == ("always False", 0.7)


def test_min_lift_fails_a_model_no_better_than_a_constant(
    logistic: Any, test_rows: tuple[pd.DataFrame, pd.Series]
) -> None:
    params = with_behaviour({"min_lift": 0.05})
    features, target = test_rows
    (real,) = run(params, logistic, test_rows)
    assert real.passed and real.measures["lift"] > 0.05
    _, baseline = behaviour.constant_baseline(target, params)
    (flat,) = behaviour.run_checks(params, logistic, features, target, {"f1": baseline + 0.01})
    assert not flat.passed and flat.measures["lift"] == pytest.approx(0.01)


def test_regression_invariance_counts_moves_beyond_a_tenth_of_the_target_spread() -> None:
    from construction_delays.sample_data import REGRESSION_TARGET

    raw = reference_config().model_dump(mode="json", by_alias=True)
    raw["data"] |= {"task": "regression", "target": REGRESSION_TARGET, "positive_class": None}
    raw["models"] = {"ridge": {"estimator": "sklearn.linear_model.Ridge"}}
    raw["evaluate"]["metric"] = "rmse"
    raw["gates"], raw["monitoring"] = {}, {}
    raw["behaviour"] = {
        "directional": [{"feature": WEATHER, "add": 3, "expect": "up"}],
        "invariance": [{"feature": SLACK, "noise": 1}],
    }
    params = parse_params(raw)
    frame = generate(rows=800, seed=2)
    features, target = frame[params.data.feature_columns], frame[REGRESSION_TARGET]
    pipeline, _ = build_pipeline("ridge", params.models["ridge"], params.data)
    model = pipeline.fit(features, target)
    up, same = behaviour.run_checks(params, model, features, target, {})
    assert up.passed and up.check == f"{WEATHER} +3 → prediction up"
    tolerance = round(0.1 * float(target.std()), 6)
    assert f"moved by more than {tolerance:g}" in same.threshold
    assert same.passed


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"feature": "Colour", "add": 1, "expect": "up"}, r"directional\.0\.feature: 'Colour'"),
        ({"feature": REGION, "add": 1, "expect": "up"}, r"directional\.0\.add: 'Site Region' is"),
        (
            {"feature": WEATHER, "add": 1, "set": 2, "expect": "up"},
            r"exactly one of .*'add', 'set'",
        ),
        ({"feature": WEATHER, "expect": "up"}, r"exactly one of .*none"),
        (
            {"feature": WEATHER, "set": "high", "expect": "up"},
            r"directional\.0\.set: .* is numeric",
        ),
        ({"feature": WEATHER, "add": 1, "expect": "sideways"}, r"directional\.0\.expect"),
    ],
)
def test_a_bad_check_names_its_field(check: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        with_behaviour({"directional": [check]})


def test_the_gate_names_each_failed_check_and_fails_without_a_report() -> None:
    passed = {"check": "a → probability up", "value": "0.0% the other way", "passed": True}
    failed = {"check": "b → same prediction", "value": "12.0% changed class", "passed": False}
    ok = behaviour_gate({"checks": [passed, passed]})
    assert ok.passed and ok.value == "2 of 2 passed"
    bad = behaviour_gate({"checks": [passed, failed]})
    assert not bad.passed
    assert bad.value == "1 of 2 passed; failed: b → same prediction: 12.0% changed class"
    assert not behaviour_gate(None).passed
