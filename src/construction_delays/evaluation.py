"""Metrics, scorers and model selection for classification and regression."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from construction_delays.config import LOWER_IS_BETTER

# CV scorer per metric name; "neg_*" scorers are flipped back to positive errors when reported.
REGRESSION_SCORERS = {
    "mae": "neg_mean_absolute_error",
    "rmse": "neg_root_mean_squared_error",
    "r2": "r2",
}


def resolve_positive_label(classes: Sequence[Any], positive_class: Any) -> Any:
    """Map the configured positive class onto the label as it appears in the data."""
    if len(classes) != 2:
        return None
    if positive_class is None:
        return sorted(classes)[-1]  # scikit-learn's own convention
    for label in classes:
        if label == positive_class or str(label) == str(positive_class):
            return label
    raise ValueError(
        f"positive_class {positive_class!r} is not one of the target classes {list(classes)}"
    )


def cv_scorers(task: str, classes: Sequence[Any], positive_label: Any) -> dict[str, Any]:
    """Scorers for GridSearchCV, keyed by our metric names."""
    if task == "regression":
        return dict(REGRESSION_SCORERS)
    if len(classes) == 2:
        return {
            "accuracy": "accuracy",
            "precision": skm.make_scorer(
                skm.precision_score, pos_label=positive_label, zero_division=0
            ),
            "recall": skm.make_scorer(skm.recall_score, pos_label=positive_label, zero_division=0),
            "f1": skm.make_scorer(skm.f1_score, pos_label=positive_label, zero_division=0),
            "roc_auc": "roc_auc",
        }
    return {
        "accuracy": "accuracy",
        "precision": skm.make_scorer(skm.precision_score, average="macro", zero_division=0),
        "recall": skm.make_scorer(skm.recall_score, average="macro", zero_division=0),
        "f1": skm.make_scorer(skm.f1_score, average="macro", zero_division=0),
        "roc_auc": "roc_auc_ovr",
    }


def cv_sign(metric: str) -> float:
    """GridSearchCV maximises; error metrics are scored negated and flipped back for reports."""
    return -1.0 if metric in LOWER_IS_BETTER else 1.0


def classification_metrics(
    y_true: pd.Series,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    classes: Sequence[Any],
    positive_label: Any,
) -> dict[str, float]:
    # Labels become integer codes first: scikit-learn sorts the labels again in every metric, and
    # sorting a million strings (a labelled batch in `mlops monitor`) took 13 s of 18; codes, 1 s.
    truth_labels = np.asarray(y_true, dtype=object)
    predicted_labels = np.asarray(y_pred, dtype=object)
    known = pd.Index(list(classes))
    found = pd.Index(pd.unique(np.concatenate([truth_labels, predicted_labels])))
    labels = known.append(found.difference(known, sort=False))  # classes first: proba's columns
    true_codes, pred_codes = labels.get_indexer(truth_labels), labels.get_indexer(predicted_labels)
    binary = len(classes) == 2
    if binary:
        # One-vs-rest on the positive class: the same numbers as pos_label on two labels, and
        # defined when new data holds a label the model never saw (it counts as negative).
        positive = labels.get_loc(positive_label)
        truth, guess, average = true_codes == positive, pred_codes == positive, {}
    else:
        truth, guess, average = true_codes, pred_codes, {"average": "macro"}
    result = {
        "accuracy": skm.accuracy_score(true_codes, pred_codes),
        "precision": skm.precision_score(truth, guess, zero_division=0, **average),
        "recall": skm.recall_score(truth, guess, zero_division=0, **average),
        "f1": skm.f1_score(truth, guess, zero_division=0, **average),
    }
    if proba is not None:
        if binary:
            result["roc_auc"] = skm.roc_auc_score(true_codes == positive, proba[:, positive])
        elif set(np.unique(true_codes)) == set(range(len(classes))):
            result["roc_auc"] = skm.roc_auc_score(
                true_codes, proba, multi_class="ovr", labels=list(range(len(classes)))
            )
    return finite(result)


def finite(scores: Mapping[str, Any]) -> dict[str, float]:
    """Scores rounded, without the undefined ones (NaN: e.g. r2 on one row): JSON has no NaN, and
    an absent metric is what the reports and gates already handle (a failed gate: "missing")."""
    rounded = {name: round(float(value), 4) for name, value in scores.items()}
    return {name: value for name, value in rounded.items() if math.isfinite(value)}


def regression_metrics(y_true: pd.Series, y_pred: np.ndarray) -> dict[str, float]:
    result = {
        "mae": skm.mean_absolute_error(y_true, y_pred),
        "rmse": skm.root_mean_squared_error(y_true, y_pred),
        "r2": skm.r2_score(y_true, y_pred),
    }
    return finite(result)


def predict_proba_or_none(model: Any, features: pd.DataFrame) -> np.ndarray | None:
    return model.predict_proba(features) if hasattr(model, "predict_proba") else None


def ranking_scores(
    model: Any, features: pd.DataFrame, proba: np.ndarray | None
) -> np.ndarray | None:
    """Scores that rank rows by class, for ROC AUC and the ROC/PR curves: the probabilities, or,
    for a binary classifier without them (LinearSVC, RidgeClassifier), its decision_function as
    two columns (AUC needs a ranking, not a probability; GridSearchCV's roc_auc does the same)."""
    if proba is not None:
        return proba
    if hasattr(model, "decision_function") and len(getattr(model, "classes_", ())) == 2:
        decision = np.asarray(model.decision_function(features), dtype=np.float64)
        return np.column_stack([-decision, decision])
    return None


def select_best(scores: Mapping[str, Mapping[str, float]], metric: str) -> str:
    """Name of the model with the best ``metric`` (ties broken by name, so the choice is stable)."""
    candidates = {name: values[metric] for name, values in scores.items() if metric in values}
    if not candidates:
        raise ValueError(f"no model reports the selection metric {metric!r}")
    if metric in LOWER_IS_BETTER:
        return min(sorted(candidates), key=lambda name: candidates[name])
    return max(sorted(candidates), key=lambda name: candidates[name])
