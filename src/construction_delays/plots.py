"""Plot data (small JSON files that ``dvc plots`` renders and diffs) and PNG images for people."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: CI runners and servers have no display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.inspection import permutation_importance

MAX_CURVE_POINTS = 200
TOP_FEATURES = 15
BEST_COLOUR, OTHER_COLOUR = "#d62728", "#1f77b4"


def _thin(frame: pd.DataFrame) -> pd.DataFrame:
    if len(frame) <= MAX_CURVE_POINTS:
        return frame
    keep = np.unique(np.linspace(0, len(frame) - 1, MAX_CURVE_POINTS).round().astype(int))
    return frame.iloc[keep]


def curve_points(
    y_true: pd.Series, score: np.ndarray, positive: Any
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ROC and precision-recall points for the positive class, thinned to a small file."""
    fpr, tpr, _ = skm.roc_curve(y_true == positive, score)
    precision, recall, _ = skm.precision_recall_curve(y_true == positive, score)
    roc = _thin(pd.DataFrame({"fpr": fpr, "tpr": tpr})).round(4)
    pr = _thin(pd.DataFrame({"recall": recall, "precision": precision})).round(4)
    return roc, pr


def average_precision(y_true: pd.Series, score: np.ndarray, positive: Any) -> float:
    """The area under the precision-recall curve (average precision), for its legend."""
    return float(skm.average_precision_score(y_true == positive, score))


def feature_importance(
    model: Any, features: pd.DataFrame, target: pd.Series, scoring: Any, seed: int
) -> pd.DataFrame:
    """Native importances (trees: impurity; linear: |coef|) or permutation importance otherwise."""
    estimator = model.named_steps["model"]
    names = list(model.named_steps["preprocess"].get_feature_names_out())
    if hasattr(estimator, "feature_importances_"):
        values, method = np.asarray(estimator.feature_importances_), "impurity"
    elif hasattr(estimator, "coef_"):
        coef = np.atleast_2d(estimator.coef_)
        values, method = np.abs(coef).mean(axis=0), "abs_coefficient"
    else:
        result = permutation_importance(
            model, features, target, scoring=scoring, n_repeats=5, random_state=seed, n_jobs=1
        )
        names, values, method = list(features.columns), result.importances_mean, "permutation"
    frame = pd.DataFrame({"feature": names, "importance": np.round(values, 5), "method": method})
    return frame.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def plot_model_comparison(scores: Mapping[str, Mapping[str, float]], best: str, path: Path) -> None:
    frame = pd.DataFrame(scores).T
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(frame.columns) + 2), 4.5))
    width = 0.8 / len(frame)
    x = np.arange(len(frame.columns))
    for offset, (name, row) in enumerate(frame.iterrows()):
        bars = ax.bar(
            x + offset * width, row.values, width, label=f"{name} (best)" if name == best else name
        )
        if name == best:
            for bar in bars:
                bar.set_edgecolor("black")
                bar.set_linewidth(1.5)
    ax.set_xticks(x + width * (len(frame) - 1) / 2, frame.columns)
    ax.set_ylabel("score on the test set")
    ax.set_title("Model comparison (test set)", pad=28)
    ax.legend(
        fontsize="small",
        ncols=len(frame),
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        frameon=False,
    )
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def plot_confusion(
    y_true: pd.Series, y_pred: np.ndarray, labels: Sequence[Any], title: str, path: Path
) -> None:
    matrix = skm.confusion_matrix(y_true, y_pred, labels=list(labels))
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    skm.ConfusionMatrixDisplay(matrix, display_labels=[str(label) for label in labels]).plot(
        ax=ax, cmap="Blues", colorbar=False, values_format="d"
    )
    ax.set_title(title)
    _save(fig, path)


def plot_curves(
    curves: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
    best: str,
    positive: Any,
    path: Path,
    areas: Mapping[str, tuple[float | None, float | None]] | None = None,
) -> None:
    """ROC and precision-recall curves side by side, the best model bold; ``areas`` (ROC AUC,
    average precision per model) go into the legends."""
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(11, 4.8))
    for name, (roc, pr) in curves.items():
        style = (
            {"linewidth": 2.5, "color": BEST_COLOUR}
            if name == best
            else {"linewidth": 1.2, "alpha": 0.8}
        )
        auc, average_precision = (areas or {}).get(name, (None, None))
        roc_label = name if auc is None else f"{name} (AUC {auc:.3f})"
        pr_label = name if average_precision is None else f"{name} (AP {average_precision:.3f})"
        roc_ax.plot(roc["fpr"], roc["tpr"], label=roc_label, **style)
        pr_ax.plot(pr["recall"], pr["precision"], label=pr_label, **style)
    roc_ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    roc_ax.set(
        xlabel="false positive rate",
        ylabel="true positive rate",
        title=f"ROC curve (positive: {positive})",
    )
    pr_ax.set(xlabel="recall", ylabel="precision", title=f"Precision-recall (positive: {positive})")
    for ax in (roc_ax, pr_ax):
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    _save(fig, path)


def plot_importance(importance: pd.DataFrame, model_name: str, path: Path) -> None:
    top = importance.head(TOP_FEATURES).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(top) + 1.5))
    ax.barh(top["feature"], top["importance"], color=OTHER_COLOUR)
    method = importance["method"].iloc[0] if len(importance) else ""
    ax.set(xlabel=f"importance ({method})", title=f"Feature importance: {model_name}")
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def plot_predictions(y_true: pd.Series, y_pred: np.ndarray, model_name: str, path: Path) -> None:
    fig, (scatter_ax, residual_ax) = plt.subplots(1, 2, figsize=(11, 4.8))
    scatter_ax.scatter(y_true, y_pred, s=10, alpha=0.6)
    low, high = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    scatter_ax.plot([low, high], [low, high], linestyle="--", color="grey")
    scatter_ax.set(xlabel="actual", ylabel="predicted", title=f"Predicted vs actual: {model_name}")
    residual_ax.hist(np.asarray(y_true) - y_pred, bins=40, color=OTHER_COLOUR)
    residual_ax.set(xlabel="residual (actual - predicted)", ylabel="rows", title="Residuals")
    for ax in (scatter_ax, residual_ax):
        ax.grid(alpha=0.3)
    _save(fig, path)


STATUS_COLOURS = {
    "ok": "#2ca02c",
    "warning": "#ff7f0e",
    "drift": BEST_COLOUR,
    "not judged": "#7f7f7f",  # monitoring.NOT_JUDGED: too few rows for a verdict
}


def plot_drift(report: Any, path: Path) -> None:
    """PSI per feature (and of the predictions and labels) against the warning and drift lines."""
    checks = [c for c in report.checks if c.psi is not None][::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * max(len(checks), 1) + 1.8))
    names = [c.name if c.group == "feature" else f"[{c.group}] {c.name}" for c in checks]
    values = [c.psi for c in checks]
    ax.barh(names, values, color=[STATUS_COLOURS[c.status] for c in checks])
    for position, check in enumerate(checks):
        label = f" {check.psi:.3f}"
        rise = check.current_missing - check.reference_missing
        if rise > report.thresholds["max_missing_increase"]:
            label += f" (missing {check.reference_missing:.0%} → {check.current_missing:.0%})"
        ax.text(check.psi, position, label, va="center", fontsize="small")
    # Log-like above 0.1: a PSI of 8 and one of 0.12 both stay readable next to the thresholds.
    ax.set_xscale("symlog", linthresh=0.1, linscale=0.5)
    ax.set_xlim(0, max([*values, 1.0]) * 4)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    warning, drift = report.thresholds["psi_warning"], report.thresholds["psi_drift"]
    ax.axvline(warning, color=STATUS_COLOURS["warning"], linestyle="--", label=f"warning {warning}")
    ax.axvline(drift, color=STATUS_COLOURS["drift"], linestyle="--", label=f"drift {drift}")
    ax.set(
        xlabel="population stability index (new data vs training data)",
        title=f"Drift: {report.verdict} ({report.rows} new rows)",
    )
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
