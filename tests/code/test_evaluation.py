"""Metrics against hand-computed values, best-model selection and positive-label resolution."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from construction_delays.evaluation import (
    classification_metrics,
    cv_sign,
    finite,
    predict_proba_or_none,
    ranking_scores,
    regression_metrics,
    resolve_positive_label,
    select_best,
)

# Binary: positive "Delayed" sorts FIRST, so its probability is column 0 (not scikit-learn's
# default positive, the last label). TP = rows 0, 3; FP = row 1; FN = row 2; TN = row 4.
BINARY_TRUE = pd.Series(["Delayed", "On Schedule", "Delayed", "Delayed", "On Schedule"])
BINARY_PRED = np.array(["Delayed", "Delayed", "On Schedule", "Delayed", "On Schedule"])
BINARY_CLASSES = ["Delayed", "On Schedule"]
P_DELAYED = np.array([0.9, 0.6, 0.4, 0.8, 0.2])
BINARY_PROBA = np.column_stack([P_DELAYED, 1 - P_DELAYED])


def test_binary_metrics_with_string_labels_use_the_positive_class() -> None:
    result = classification_metrics(
        BINARY_TRUE, BINARY_PRED, BINARY_PROBA, BINARY_CLASSES, "Delayed"
    )
    # precision = 2/3, recall = 2/3; ROC AUC: 5 of the 6 (positive, negative) pairs are ordered.
    assert result == {
        "accuracy": 0.6,
        "precision": 0.6667,
        "recall": 0.6667,
        "f1": 0.6667,
        "roc_auc": 0.8333,
    }


def test_binary_metrics_follow_a_different_positive_class() -> None:
    result = classification_metrics(
        BINARY_TRUE, BINARY_PRED, BINARY_PROBA, BINARY_CLASSES, "On Schedule"
    )
    # "On Schedule" as positive: TP = row 4, FP = row 2, FN = row 1 -> precision = recall = 1/2.
    assert result == {
        "accuracy": 0.6,
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "roc_auc": 0.8333,
    }


def test_binary_metrics_without_probabilities_have_no_roc_auc() -> None:
    result = classification_metrics(BINARY_TRUE, BINARY_PRED, None, BINARY_CLASSES, "Delayed")
    assert set(result) == {"accuracy", "precision", "recall", "f1"}


def test_binary_metrics_with_int_labels_and_str_positive_class() -> None:
    y_true = pd.Series([1, 0, 1, 1, 0])
    y_pred = np.array([1, 1, 0, 1, 0])
    positive = resolve_positive_label([0, 1], "1")
    # Columns follow the classes [0, 1]: P(1) is column 1.
    proba = np.column_stack([1 - P_DELAYED, P_DELAYED])

    result = classification_metrics(y_true, y_pred, proba, [0, 1], positive)
    assert result["precision"] == 0.6667
    assert result["recall"] == 0.6667
    assert result["roc_auc"] == 0.8333


MULTI_TRUE = pd.Series(["a", "b", "c", "a", "b", "c"])
MULTI_PRED = np.array(["a", "b", "c", "b", "b", "a"])


def test_multiclass_metrics_are_macro_averaged() -> None:
    proba = np.array(
        [
            [0.7, 0.2, 0.1],
            [0.1, 0.8, 0.1],
            [0.2, 0.2, 0.6],
            [0.4, 0.5, 0.1],
            [0.1, 0.6, 0.3],
            [0.5, 0.1, 0.4],
        ]
    )
    result = classification_metrics(MULTI_TRUE, MULTI_PRED, proba, ["a", "b", "c"], None)
    # Per class (precision, recall, f1): a (1/2, 1/2, 1/2), b (2/3, 1, 4/5), c (1, 1/2, 2/3).
    assert result["accuracy"] == 0.6667
    assert result["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3, abs=1e-4)
    assert result["recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3, abs=1e-4)
    assert result["f1"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3, abs=1e-4)
    # One-vs-rest AUC, share of (positive, negative) pairs ordered: a 7/8 (its row 3 scores
    # 0.4 < row 5's 0.5), b 8/8, c 8/8; macro average.
    assert result["roc_auc"] == pytest.approx((7 / 8 + 1 + 1) / 3, abs=1e-4)


def test_multiclass_roc_auc_skipped_when_a_class_is_absent_from_y_true() -> None:
    y_true = pd.Series(["a", "b", "a", "b"])
    proba = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.3, 0.3, 0.4]])
    result = classification_metrics(
        y_true, np.array(["a", "b", "a", "c"]), proba, ["a", "b", "c"], None
    )
    assert "roc_auc" not in result
    assert result["accuracy"] == 0.75


def test_regression_metrics_against_hand_computed_values() -> None:
    y_true = pd.Series([3.0, -0.5, 2.0, 7.0])
    y_pred = np.array([2.5, 0.0, 2.0, 8.0])
    # errors 0.5, 0.5, 0, 1: MAE = 2/4; MSE = 1.5/4; total sum of squares around 2.875 = 29.1875.
    result = regression_metrics(y_true, y_pred)

    assert result == {
        "mae": 0.5,
        "rmse": round(math.sqrt(0.375), 4),
        "r2": round(1 - 1.5 / 29.1875, 4),
    }
    assert result["rmse"] == 0.6124
    assert result["r2"] == 0.9486


def test_select_best_higher_is_better() -> None:
    scores = {"tree": {"f1": 0.71}, "forest": {"f1": 0.78}, "linear": {"f1": 0.64}}
    assert select_best(scores, "f1") == "forest"


@pytest.mark.parametrize("metric", ["mae", "rmse"])
def test_select_best_lower_is_better(metric: str) -> None:
    scores = {"tree": {metric: 2.5}, "forest": {metric: 1.75}, "linear": {metric: 3.0}}
    assert select_best(scores, metric) == "forest"
    assert cv_sign(metric) == -1.0


def test_select_best_r2_is_higher_is_better() -> None:
    assert select_best({"a": {"r2": 0.2}, "b": {"r2": 0.9}}, "r2") == "b"
    assert cv_sign("r2") == 1.0


@pytest.mark.parametrize("metric", ["f1", "rmse"])
def test_select_best_ties_are_broken_by_name_whatever_the_order(metric: str) -> None:
    tied = {"zeta": {metric: 0.5}, "alpha": {metric: 0.5}, "mid": {metric: 0.5}}
    assert select_best(tied, metric) == "alpha"
    assert select_best(dict(reversed(list(tied.items()))), metric) == "alpha"


def test_select_best_ignores_models_without_the_metric() -> None:
    scores = {"a": {"accuracy": 0.99}, "b": {"f1": 0.1, "accuracy": 0.5}}
    assert select_best(scores, "f1") == "b"


def test_select_best_without_the_metric_raises() -> None:
    with pytest.raises(ValueError, match=r"no model reports the selection metric 'roc_auc'"):
        select_best({"a": {"f1": 0.5}}, "roc_auc")


def test_resolve_positive_label_int_labels_str_positive() -> None:
    label = resolve_positive_label([0, 1], "1")
    assert label == 1
    assert type(label) is int


def test_resolve_positive_label_str_labels_int_positive() -> None:
    label = resolve_positive_label(["0", "1"], 0)
    assert label == "0"
    assert type(label) is str


def test_resolve_positive_label_defaults_and_multiclass() -> None:
    assert resolve_positive_label(["Delayed", "On Schedule"], None) == "On Schedule"
    assert resolve_positive_label(["a", "b", "c"], "a") is None


def test_resolve_positive_label_unknown_class() -> None:
    with pytest.raises(ValueError, match=r"positive_class 'Late' is not one of the target classes"):
        resolve_positive_label(["Delayed", "On Schedule"], "Late")


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("unseen", [False, True])
def test_metrics_match_scikit_learn_on_the_labels_themselves(n_classes: int, unseen: bool) -> None:
    """Coded labels are an implementation detail: the numbers are scikit-learn's on the strings.
    A label the model never saw (a typo in a labelled batch) counts as a miss, and, for a binary
    model, as a negative."""
    from sklearn import metrics as skm

    rng = np.random.default_rng(n_classes)
    classes = ["alpha", "beta", "gamma"][:n_classes]
    y_true = pd.Series(rng.choice(classes, size=500))
    if unseen:
        y_true[::50] = "typo"
    y_pred = rng.choice(classes, size=500)
    positive = "beta" if n_classes == 2 else None
    got = classification_metrics(y_true, y_pred, None, classes, positive)
    if n_classes == 2:
        truth, guess, average = y_true == "beta", y_pred == "beta", {}
    else:
        truth, guess, average = y_true, y_pred, {"average": "macro"}
    expected = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(truth, guess, zero_division=0, **average),
        "recall": skm.recall_score(truth, guess, zero_division=0, **average),
        "f1": skm.f1_score(truth, guess, zero_division=0, **average),
    }
    assert got == {k: round(float(v), 4) for k, v in expected.items()}
    if n_classes == 2 and not unseen:  # one-vs-rest is exactly pos_label on the strings
        assert got["f1"] == round(skm.f1_score(y_true, y_pred, pos_label="beta"), 4)


def test_a_binary_model_without_probabilities_is_ranked_by_its_decision_function() -> None:
    """LinearSVC has no predict_proba: its test ROC AUC comes from the decision function, as
    GridSearchCV's roc_auc scorer does, and equals sklearn's on the same scores."""
    from sklearn.metrics import roc_auc_score
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(0)
    features = pd.DataFrame({"x": rng.normal(size=300), "noise": rng.normal(size=300)})
    target = pd.Series(
        np.where(features["x"] + rng.normal(scale=0.8, size=300) > 0, "Delayed", "On Schedule")
    )
    model = LinearSVC().fit(features, target)
    assert predict_proba_or_none(model, features) is None
    scores = ranking_scores(model, features, None)
    result = classification_metrics(
        target, model.predict(features), scores, list(model.classes_), "Delayed"
    )
    # classes_ sorts "Delayed" first: decision_function is the score of "On Schedule".
    expected = roc_auc_score(target == "Delayed", -model.decision_function(features))
    assert result["roc_auc"] == round(expected, 4) and result["roc_auc"] > 0.8


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_undefined_metrics_are_left_out_not_written_as_nan() -> None:
    """metrics.json would hold a bare NaN, which is not JSON; an absent metric fails its gate."""
    one_class = classification_metrics(
        pd.Series(["a", "a"]),
        np.array(["a", "b"]),
        np.array([[0.6, 0.4], [0.3, 0.7]]),
        ["a", "b"],
        "b",
    )
    assert one_class == {"accuracy": 0.5, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert regression_metrics(pd.Series([3.0]), np.array([2.5])) == {"mae": 0.5, "rmse": 0.5}
    assert finite({"f1": 0.123456, "cv": float("nan"), "x": float("inf")}) == {"f1": 0.1235}
