"""Behavioural checks of a trained model (in the spirit of CheckList): does it beat the best
constant prediction, and does it react to a change of one feature the way the domain says it
must (directional) or must not (invariance)? Metrics say how often a model is right; these say
whether it is right for reasons people can accept, and catch a model that learnt a leak or an
artefact of the data before it is promoted.

The checks are data in params.yaml (``behaviour:``), run on the held-out test rows by the
`behaviour` stage and again by `mlops promote` on the model it is about to promote.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from construction_delays.config import (
    LOWER_IS_BETTER,
    DirectionalCheck,
    FeatureChange,
    InvarianceCheck,
    Params,
)
from construction_delays.data import category_text
from construction_delays.errors import ProjectError
from construction_delays.evaluation import (
    classification_metrics,
    regression_metrics,
    resolve_positive_label,
)
from construction_delays.files import plain_value

# A move smaller than this is no move (float noise of a refit, ties of a tree).
MOVE_EPSILON = 1e-9
# Regression invariance without a `tolerance`: moves within this share of the target's standard
# deviation count as unchanged.
DEFAULT_TOLERANCE_SHARE = 0.1


class BehaviourError(ProjectError):
    """A check that cannot run on this model (e.g. a directional check on a model without
    probabilities)."""


@dataclass(frozen=True)
class CheckResult:
    check: str
    kind: str
    threshold: str
    value: str
    passed: bool
    measures: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def change_feature(features: pd.DataFrame, change: FeatureChange, seed: int) -> pd.DataFrame:
    """A copy of ``features`` with ``change`` applied to its column on every row."""
    changed = features.copy()
    column = change.feature
    kind = change.change_kind
    if kind in ("set", "missing"):
        value = np.nan if kind == "missing" else change.set_to
        if isinstance(value, str) or not pd.api.types.is_numeric_dtype(changed[column]):
            # A category (object or str dtype, as read from a split file): `set: 3` in
            # params.yaml means the code training read as "3".
            value = category_text(value)
            changed[column] = pd.Series([value] * len(changed), index=changed.index, dtype=object)
        else:
            changed[column] = float(value)
        return changed
    values = pd.to_numeric(changed[column], errors="coerce").astype(float)
    if kind == "add":
        changed[column] = values + change.add
    elif kind == "multiply":
        changed[column] = values * change.multiply
    else:
        rng = np.random.default_rng(seed)
        changed[column] = values + rng.uniform(-change.noise, change.noise, size=len(values))
    return changed


def _score_column(model: Any, params: Params, class_: Any) -> int:
    """Which ``predict_proba`` column a directional check on a classifier watches."""
    classes = list(model.classes_)
    if class_ is None:
        if len(classes) != 2:
            raise BehaviourError(
                "params.yaml: behaviour.directional: a multiclass model needs `class:` (whose"
                f" probability should move), one of {classes}"
            )
        class_ = resolve_positive_label(classes, params.data.positive_class)
    for index, label in enumerate(classes):
        if label == class_ or str(label) == str(class_):
            return index
    raise BehaviourError(
        f"params.yaml: behaviour.directional: class {class_!r} is not one of the model's {classes}"
    )


def _scores(model: Any, features: pd.DataFrame, params: Params, class_: Any) -> np.ndarray:
    if params.data.task == "regression":
        return np.asarray(model.predict(features), dtype=float)
    if not hasattr(model, "predict_proba"):
        raise BehaviourError(
            f"{type(model).__name__} has no predict_proba: a directional check needs probabilities"
        )
    return model.predict_proba(features)[:, _score_column(model, params, class_)]


def directional(
    model: Any, features: pd.DataFrame, check: DirectionalCheck, params: Params
) -> CheckResult:
    """Share of rows whose score moves against ``check.expect``; the mean move must go its way."""
    before = _scores(model, features, params, check.class_)
    after = _scores(model, change_feature(features, check, params.base.seed), params, check.class_)
    sign = 1.0 if check.expect == "up" else -1.0
    moves = sign * (after - before)
    wrong = float(np.mean(moves < -MOVE_EPSILON))
    mean_move = float(np.mean(moves))
    passed = wrong <= check.max_violations and mean_move > MOVE_EPSILON
    what = "prediction" if params.data.task == "regression" else "probability"
    return CheckResult(
        check=f"{check.label} → {what} {check.expect}",
        kind="directional",
        threshold=f"≤ {check.max_violations:.0%} of rows the other way; mean move {check.expect}",
        value=f"{wrong:.1%} the other way; mean move {sign * mean_move:+.4f}",
        passed=passed,
        measures={"wrong_way_share": round(wrong, 4), "mean_change": round(sign * mean_move, 6)},
    )


def invariance(
    model: Any, features: pd.DataFrame, target: pd.Series, check: InvarianceCheck, params: Params
) -> CheckResult:
    """Share of rows whose prediction changes (class, or value beyond ``tolerance``)."""
    before = model.predict(features)
    after = model.predict(change_feature(features, check, params.base.seed))
    if params.data.task == "regression":
        tolerance = check.tolerance
        if tolerance is None:  # scale-free default: a tenth of the target's spread
            tolerance = round(DEFAULT_TOLERANCE_SHARE * float(target.std()), 6)
        changed = np.abs(np.asarray(after, float) - np.asarray(before, float)) > tolerance
        unit = f"moved by more than {tolerance:g}"
    else:
        changed = np.asarray(before, dtype=object) != np.asarray(after, dtype=object)
        unit = "changed class"
    share = float(np.mean(changed))
    return CheckResult(
        check=f"{check.label} → same prediction",
        kind="invariance",
        threshold=f"≤ {check.max_changed:.0%} of rows {unit}",
        value=f"{share:.1%} {unit}",
        passed=share <= check.max_changed,
        measures={"changed_share": round(share, 4)},
    )


def constant_baseline(target: pd.Series, params: Params) -> tuple[str, float]:
    """The best score of ``evaluate.metric`` any constant prediction reaches on ``target``.

    The constants are chosen with the test labels themselves (each class, with the class shares as
    probabilities; the mean and the median), so the baseline is optimistic: a model that beats it
    has learnt something from the features.
    """
    metric = params.evaluate.metric
    rows = len(target)
    if params.data.task == "regression":
        candidates = {
            f"always {value:.4g} ({name})": regression_metrics(target, np.full(rows, value))[metric]
            for name, value in (("mean", target.mean()), ("median", target.median()))
        }
    else:
        classes = sorted(pd.unique(target), key=str)
        positive = resolve_positive_label(classes, params.data.positive_class)
        shares = target.value_counts(normalize=True).reindex(classes).to_numpy()
        proba = np.tile(shares, (rows, 1))
        candidates = {}
        for label in classes:
            guess = np.full(rows, label, dtype=object)
            scores = classification_metrics(target, guess, proba, classes, positive)
            candidates[f"always {plain_value(label)!r}"] = scores[metric]  # True, not np.True_
    pick = min if metric in LOWER_IS_BETTER else max
    name = pick(candidates, key=lambda key: candidates[key])
    return name, candidates[name]


def lift_check(value: float, target: pd.Series, params: Params, min_lift: float) -> CheckResult:
    metric = params.evaluate.metric
    baseline_name, baseline = constant_baseline(target, params)
    lift = baseline - value if metric in LOWER_IS_BETTER else value - baseline
    return CheckResult(
        check=f"{metric} beats the best constant prediction",
        kind="baseline",
        threshold=f"by ≥ {min_lift:g}",
        value=f"{value:.4f} vs {baseline:.4f} ({baseline_name}): {lift:+.4f}",
        passed=lift >= min_lift - 1e-12,
        measures={"value": value, "baseline": baseline, "lift": round(lift, 4)},
    )


def run_checks(
    params: Params,
    model: Any,
    features: pd.DataFrame,
    target: pd.Series,
    metrics: dict[str, float],
) -> list[CheckResult]:
    """Every check of ``behaviour:`` on ``model``; ``metrics``: its scores on these rows."""
    behaviour = params.behaviour
    results = []
    if behaviour.min_lift is not None:
        metric = params.evaluate.metric
        if metric not in metrics:
            raise BehaviourError(f"behaviour.min_lift: the model has no {metric!r} score")
        results.append(lift_check(metrics[metric], target, params, behaviour.min_lift))
    results += [directional(model, features, check, params) for check in behaviour.directional]
    results += [
        invariance(model, features, target, check, params) for check in behaviour.invariance
    ]
    return results


def report(model_name: str, rows: int, results: list[CheckResult]) -> dict[str, Any]:
    """reports/behaviour.json."""
    return {
        "model": model_name,
        "rows": rows,
        "passed": all(r.passed for r in results),
        "checks": [r.to_dict() for r in results],
    }
