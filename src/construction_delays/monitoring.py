"""Drift monitoring: is the data the model now sees still like the data it learned from?

- :func:`build_profile` (run by the ``evaluate`` stage) summarises the training split and the best
  model's test-set predictions in ``reports/reference_profile.json``: quantile bins and their shares
  per numeric column, category shares per categorical column, missing shares, the label
  distribution and the test metrics. It holds no rows, is a few KB, is committed with the metrics
  and is logged to MLflow with the model, so the registry's champion carries its own reference.
- :func:`compare` checks new data against it: a batch file (CSV/Parquet, labelled or not) or the
  REST server's prediction log (``reports/predictions.jsonl``). Each feature, the predictions and
  the labels get a population stability index (PSI) on the reference's bins; missing shares are
  compared; with labels, the model's metrics are compared with its test metrics.
- The verdict is ``drift`` (alert: ``mlops monitor`` exits 1), ``warning``, ``ok``, or
  ``insufficient`` (too few rows for PSI to mean anything; no alert).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from construction_delays.config import LOWER_IS_BETTER, DataParams, MonitoringParams
from construction_delays.errors import ProjectError

PROFILE_VERSION = 1
# Shares are floored at this before the PSI's log ratio: an empty bin must not make it infinite.
EPSILON = 1e-4
MAX_CATEGORIES = 50
# PSI of two samples of the same distribution is ~ (bins - 1) * (1/n_ref + 1/n_new): a small
# reference (say 120 test-set predictions) gets fewer bins so sampling noise stays below warnings.
MIN_ROWS_PER_BIN = 20
OTHER = "(other)"


class MonitoringError(ProjectError, ValueError):
    """The reference profile or the new data cannot be used; the message names the file and field."""


# --------------------------------------------------------------------------------------------
# Distributions
# --------------------------------------------------------------------------------------------


def as_numbers(values: Any) -> np.ndarray:
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )


def as_labels(values: Any) -> pd.Series:
    """Category values as strings (missing stays missing), as the profile stores them."""
    return pd.Series(values, dtype=object).map(str, na_action="ignore")


def bin_shares(present: np.ndarray, edges: Sequence[float]) -> list[float]:
    """Shares of ``present`` in the bins ``(-inf, e0), [e0, e1), ..., [e_last, inf)``."""
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), present, side="right")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return (counts / max(len(present), 1)).round(6).tolist()


def numeric_distribution(values: Any, bins: int) -> dict[str, Any]:
    numbers = as_numbers(values)
    present = numbers[~np.isnan(numbers)]
    result: dict[str, Any] = {
        "kind": "numeric",
        "missing_share": missing_share(len(numbers), len(present)),
    }
    if present.size == 0:
        return {**result, "edges": [], "shares": []}
    # Quantile edges: equally filled bins on the reference; repeated values collapse their edges.
    bins = max(2, min(bins, present.size // MIN_ROWS_PER_BIN))
    edges = np.unique(np.quantile(present, np.linspace(0.0, 1.0, bins + 1)[1:-1]).round(6))
    return {
        **result,
        "edges": [float(e) for e in edges],
        "shares": bin_shares(present, edges),
        "mean": round(float(present.mean()), 6),
        "std": round(float(present.std()), 6),
        "min": float(present.min()),
        "max": float(present.max()),
    }


def categorical_distribution(values: Any) -> dict[str, Any]:
    labels = as_labels(values)
    present = labels.dropna()
    counts = present.value_counts(sort=True)
    shares = {
        str(k): round(v / max(len(present), 1), 6) for k, v in counts.head(MAX_CATEGORIES).items()
    }
    rest = int(counts.iloc[MAX_CATEGORIES:].sum())
    if rest:
        shares[OTHER] = round(rest / len(present), 6)
    return {
        "kind": "categorical",
        "missing_share": missing_share(len(labels), len(present)),
        "shares": shares,
    }


def missing_share(rows: int, present: int) -> float:
    return round(1 - present / max(rows, 1), 6)


def population_stability(reference: Sequence[float], current: Sequence[float]) -> float:
    """PSI = sum((cur - ref) * ln(cur / ref)) over bins; 0 for identical distributions."""
    ref = np.clip(np.asarray(reference, dtype=np.float64), EPSILON, None)
    cur = np.clip(np.asarray(current, dtype=np.float64), EPSILON, None)
    return round(float(np.sum((cur - ref) * np.log(cur / ref))), 4)


# --------------------------------------------------------------------------------------------
# The reference profile
# --------------------------------------------------------------------------------------------


def build_profile(
    *,
    train: pd.DataFrame,
    data: DataParams,
    bins: int,
    model: str,
    test_metrics: Mapping[str, float],
    predictions: np.ndarray,
    probabilities: np.ndarray | None = None,
    classes: Sequence[Any] = (),
    positive: Any = None,
) -> dict[str, Any]:
    """The reference for monitoring: training-split columns and test-set predictions of ``model``."""
    features = {
        **{name: numeric_distribution(train[name], bins) for name in data.numeric_features},
        **{name: categorical_distribution(train[name]) for name in data.categorical_features},
    }
    classification = data.task == "classification"
    prediction: dict[str, Any] = {
        "label": categorical_distribution(predictions)
        if classification
        else numeric_distribution(predictions, bins)
    }
    if probabilities is not None and positive is not None and len(classes) == 2:
        column = list(classes).index(positive)
        prediction["score"] = numeric_distribution(probabilities[:, column], bins)
    target = train[data.target]
    return {
        "version": PROFILE_VERSION,
        "task": data.task,
        "target": data.target,
        "model": model,
        "classes": [str(c) for c in classes],
        "positive_class": None if positive is None else str(positive),
        "rows": len(train),
        "prediction_rows": len(predictions),
        "bins": bins,
        "numeric_features": list(data.numeric_features),
        "categorical_features": list(data.categorical_features),
        "features": features,
        "target_distribution": categorical_distribution(target)
        if classification
        else numeric_distribution(target, bins),
        "prediction": prediction,
        "test_metrics": dict(test_metrics),
    }


def read_profile(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MonitoringError(
            f"{path}: no reference profile; run the pipeline first (`mlops run` writes it), pass"
            " --reference, or --model models:/<name>@<alias> to use the registered model's"
        )
    try:
        profile = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise MonitoringError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(profile, dict) or profile.get("version") != PROFILE_VERSION:
        raise MonitoringError(
            f"{path}: not a version-{PROFILE_VERSION} reference profile (found"
            f" version {profile.get('version') if isinstance(profile, dict) else None!r});"
            " re-run the evaluate stage to rewrite it"
        )
    return profile


# --------------------------------------------------------------------------------------------
# New data
# --------------------------------------------------------------------------------------------


@dataclass
class CurrentData:
    """The new data to judge, and what the model said about it when that is already known."""

    features: pd.DataFrame
    source: str
    predictions: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    target: pd.Series | None = None
    notes: list[str] = field(default_factory=list)
    # The checked values per column, as the model takes them (see scoring.validate_chunk).
    columns: dict[str, np.ndarray] = field(default_factory=dict)


DURATION = re.compile(r"^(?P<count>\d+)(?P<unit>[mhd])$")


def parse_since(value: str, now: dt.datetime | None = None) -> dt.datetime:
    """``7d`` / ``24h`` / ``30m`` before now, or an ISO date/time (UTC unless it says otherwise)."""
    now = now or dt.datetime.now(dt.UTC)
    match = DURATION.match(value.strip())
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match["unit"]]
        return now - dt.timedelta(**{unit: int(match["count"])})
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise MonitoringError(
            f"--since {value!r}: expected a duration like 7d, 24h, 30m or an ISO date (2026-11-01)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def read_prediction_log(
    path: Path, columns: Sequence[str], since: dt.datetime | None = None
) -> CurrentData:
    """Inputs and served predictions from the REST server's JSONL log (one request per line)."""
    records: list[Mapping[str, Any]] = []
    labels: list[Any] = []
    probabilities: list[Any] = []
    versions: Counter[str] = Counter()
    unreadable = 0
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                inputs, predicted = entry["inputs"], entry["predictions"]
                if not isinstance(inputs, list) or len(inputs) != len(predicted):
                    raise TypeError("inputs and predictions do not match")
                if not all(isinstance(record, dict) for record in inputs):
                    raise TypeError("an input is not a record")
                when = dt.datetime.fromisoformat(entry["ts"]) if since else None
            except (ValueError, KeyError, TypeError):
                unreadable += 1  # e.g. a line cut short when the server was killed mid-write
                continue
            if since and when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=dt.UTC)
                if when < since:
                    continue
            records.extend(inputs)
            labels.extend(predicted)
            probabilities.extend(entry.get("probabilities") or [None] * len(predicted))
            versions[str(entry.get("model_version"))] += len(predicted)
    notes = [f"{unreadable} unreadable line(s) skipped"] if unreadable else []
    if len(versions) > 1:
        notes.append(
            "requests served by several model versions: "
            + ", ".join(f"v{v}: {n} rows" for v, n in sorted(versions.items()))
        )
    frame = (
        pd.DataFrame.from_records(records, columns=list(columns))
        if records
        else pd.DataFrame(columns=list(columns))
    )
    scores = None
    if probabilities and all(p is not None for p in probabilities):
        try:
            scores = np.asarray(probabilities, dtype=np.float64)
        except ValueError:  # versions with different classes: no common probability columns
            notes.append("class probabilities differ in shape between requests: not checked")
    return CurrentData(
        features=frame,
        source=str(path),
        predictions=np.asarray(labels, dtype=object),
        probabilities=scores,
        notes=notes,
    )


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


NOT_JUDGED = "not judged"  # a check's status when the batch is too small for any verdict


@dataclass
class Check:
    """One column (or the predictions, or the labels) against its reference distribution."""

    name: str
    group: str  # feature | prediction | target
    kind: str  # numeric | categorical
    psi: float | None
    reference_missing: float
    current_missing: float
    status: str
    change: str


@dataclass
class MetricCheck:
    metric: str
    reference: float
    current: float
    allowed_drop: float | None
    status: str


@dataclass
class DriftReport:
    verdict: str  # ok | warning | drift | insufficient
    reasons: list[str]
    source: str
    rows: int
    reference: dict[str, Any]
    thresholds: dict[str, Any]
    checks: list[Check]
    metrics: list[MetricCheck]
    notes: list[str]

    @property
    def features(self) -> list[Check]:
        return [c for c in self.checks if c.group == "feature"]

    @property
    def drifted_features(self) -> list[Check]:
        return [c for c in self.features if c.status == "drift"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reasons": self.reasons,
            "source": self.source,
            "rows": self.rows,
            "reference": self.reference,
            "thresholds": self.thresholds,
            "drifted_features": [c.name for c in self.drifted_features],
            "checks": [asdict(c) for c in self.checks],
            "metrics": [asdict(m) for m in self.metrics],
            "notes": self.notes,
        }

    def to_markdown(self) -> str:
        icon = {"ok": "✅", "warning": "⚠️", "drift": "❌", "insufficient": "⏸️"}[self.verdict]
        ref = self.reference
        lines = [
            f"## Drift monitor: {self.verdict} {icon}",
            "",
            f"New data: `{self.source}` ({self.rows} rows). Reference: the training split of"
            f" `{ref.get('model')}` ({ref.get('rows')} rows; predictions on"
            f" {ref.get('prediction_rows')} test rows), from `{ref.get('profile')}`.",
            "",
        ]
        lines += [f"- {reason}" for reason in self.reasons] + ([""] if self.reasons else [])
        lines += [
            "| check | kind | PSI | missing (training → now) | status | change |",
            "|:---|:---|---:|---:|:---|:---|",
        ]
        for c in self.checks:
            name = (
                markdown_cell(c.name)
                if c.group == "feature"
                else f"*{c.group}: {markdown_cell(c.name)}*"
            )
            psi = "" if c.psi is None else f"{c.psi:.3f}"
            missing = f"{c.reference_missing:.1%} → {c.current_missing:.1%}"
            lines.append(
                f"| {name} | {c.kind} | {psi} | {missing} | {c.status} | {markdown_cell(c.change)} |"
            )
        if self.metrics:
            lines += [
                "",
                "| metric | at training (test set) | now | allowed drop | status |",
                "|:---|---:|---:|---:|:---|",
            ]
            for m in self.metrics:
                allowed = "" if m.allowed_drop is None else f"{m.allowed_drop:g}"
                lines.append(
                    f"| {m.metric} | {m.reference:.4f} | {m.current:.4f} | {allowed} | {m.status} |"
                )
        t = self.thresholds
        lines += [
            "",
            f"PSI: warning ≥ {t['psi_warning']}, drift ≥ {t['psi_drift']}; a missing share up by"
            f" more than {t['max_missing_increase']:.0%} counts as drift; alert when ≥"
            f" {t['max_drifted_share']:.0%} of the features drift, or the predictions, the labels"
            f" or a metric do (`monitoring:` in params.yaml).",
        ]
        lines += [f"\n_Note: {note}_" for note in self.notes]
        return "\n".join(lines) + "\n"


def markdown_cell(text: str) -> str:
    """Data (column names, categories) inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _status(psi: float | None, thresholds: MonitoringParams) -> str:
    if psi is None:
        return "ok"
    if psi >= thresholds.psi_drift:
        return "drift"
    return "warning" if psi >= thresholds.psi_warning else "ok"


def _numeric_check(
    name: str, group: str, reference: Mapping[str, Any], values: Any, thresholds: MonitoringParams
) -> Check:
    numbers = as_numbers(values)
    present = numbers[~np.isnan(numbers)]
    missing = missing_share(len(numbers), len(present))
    psi: float | None = None
    change = ""
    if present.size and reference.get("shares"):
        psi = population_stability(reference["shares"], bin_shares(present, reference["edges"]))
        change = f"mean {reference['mean']:.4g} → {present.mean():.4g}"
        outside = np.mean((present < reference["min"]) | (present > reference["max"]))
        if outside >= 0.01:
            change += f"; {outside:.0%} outside the training range"
    elif not present.size:
        change = "no values"
    status = _status(psi, thresholds)
    return _with_missing(
        Check(name, group, "numeric", psi, reference["missing_share"], missing, status, change),
        thresholds,
        present.size,
    )


def _categorical_check(
    name: str, group: str, reference: Mapping[str, Any], values: Any, thresholds: MonitoringParams
) -> Check:
    labels = as_labels(values)
    present = labels.dropna()
    known = dict(reference["shares"])
    counts = present.value_counts()
    current = dict.fromkeys(known, 0.0)
    unseen: dict[str, float] = {}
    for value, count in counts.items():
        share = count / max(len(present), 1)
        if value in known:
            current[value] += share
        elif OTHER in known:
            current[OTHER] += share
        else:
            unseen[str(value)] = share
    psi: float | None = None
    change = ""
    if len(present):
        psi = population_stability(
            [*known.values(), 0.0], [*current.values(), sum(unseen.values())]
        )
        shifts = sorted(known, key=lambda k: abs(current[k] - known[k]), reverse=True)
        if shifts:
            top = shifts[0]
            change = f"{top!r} {known[top]:.0%} → {current[top]:.0%}"
        if unseen:
            seen = ", ".join(
                f"{k!r} {v:.0%}" for k, v in sorted(unseen.items(), key=lambda kv: -kv[1])[:3]
            )
            change += f"; new: {seen}" if change else f"new: {seen}"
    else:
        change = "no values"
    missing = missing_share(len(labels), len(present))
    check = Check(
        name,
        group,
        "categorical",
        psi,
        reference["missing_share"],
        missing,
        _status(psi, thresholds),
        change,
    )
    return _with_missing(check, thresholds, len(present))


def _with_missing(check: Check, thresholds: MonitoringParams, present: int) -> Check:
    """A column that lost its values (more missing, or none at all) counts as drifted."""
    if (
        present == 0
        or check.current_missing - check.reference_missing > thresholds.max_missing_increase
    ):
        check.status = "drift"
        note = f"missing {check.reference_missing:.0%} → {check.current_missing:.0%}"
        check.change = f"{note}; {check.change}" if check.change and present else note
    return check


def _distribution_check(
    name: str, group: str, reference: Mapping[str, Any], values: Any, thresholds: MonitoringParams
) -> Check:
    check = _numeric_check if reference["kind"] == "numeric" else _categorical_check
    return check(name, group, reference, values, thresholds)


def compare(
    profile: Mapping[str, Any],
    current: CurrentData,
    thresholds: MonitoringParams,
    *,
    current_metrics: Mapping[str, float] | None = None,
    profile_source: str = "",
) -> DriftReport:
    """Judge ``current`` against ``profile`` with the thresholds of ``monitoring:`` in params.yaml."""
    frame = current.features
    checks = [
        _distribution_check(name, "feature", reference, frame[name], thresholds)
        for name, reference in profile["features"].items()
    ]
    prediction = profile.get("prediction") or {}
    if current.predictions is not None and "label" in prediction:
        checks.append(
            _distribution_check(
                "predicted class" if profile["task"] == "classification" else "predicted value",
                "prediction",
                prediction["label"],
                current.predictions,
                thresholds,
            )
        )
    classes = profile.get("classes") or []
    if (
        current.probabilities is not None
        and "score" in prediction
        and profile.get("positive_class") in classes
        and current.probabilities.ndim == 2
        and current.probabilities.shape[1] == len(classes)
    ):
        column = classes.index(profile["positive_class"])
        checks.append(
            _distribution_check(
                f"P({profile['positive_class']})",
                "prediction",
                prediction["score"],
                current.probabilities[:, column],
                thresholds,
            )
        )
    if current.target is not None:
        # Labels arrive late: rows without one yet are not a drift of the labels.
        labelled = current.target.dropna()
        if len(labelled) < len(current.target):
            current.notes.append(
                f"{len(current.target) - len(labelled)} of {len(current.target)} rows have no"
                " label yet: the label and metric checks use the labelled ones"
            )
        checks.append(
            _distribution_check(
                profile["target"],
                "target",
                profile["target_distribution"],
                labelled,
                thresholds,
            )
        )

    metric_checks = _metric_checks(
        profile.get("test_metrics") or {}, current_metrics or {}, thresholds
    )
    rows = len(frame)
    reasons: list[str] = []
    drifted = [c for c in checks if c.group == "feature" and c.status == "drift"]
    share = len(drifted) / max(len(profile["features"]), 1)
    if drifted and share >= thresholds.max_drifted_share:
        reasons.append(
            f"{len(drifted)} of {len(profile['features'])} features drifted ({share:.0%} ≥"
            f" {thresholds.max_drifted_share:.0%}): " + ", ".join(c.name for c in drifted)
        )
    # One reason per kind: the predicted class and P(positive) drifting together is one finding.
    for group, what in (("prediction", "the predictions"), ("target", "the labels")):
        moved = [c for c in checks if c.group == group and c.status == "drift"]
        if moved:
            reasons.append(
                f"{what} drifted: "
                + ", ".join(
                    f"{c.name} ({f'PSI {c.psi:.3f}' if c.psi is not None else 'no values'};"
                    f" {c.change})"
                    for c in moved
                )
            )
    for m in metric_checks:
        if m.status == "drift":
            reasons.append(
                f"{m.metric} {m.current:.4f} against {m.reference:.4f} at training: worse by more"
                f" than the allowed {m.allowed_drop:g}"
            )
    if rows < thresholds.min_rows:
        verdict = "insufficient"
        reasons = [
            f"{rows} rows, fewer than monitoring.min_rows ({thresholds.min_rows}): too few to judge drift"
        ]
        # The PSI values stay for reference; a per-check "drift" under this verdict would read as
        # an alarm the verdict does not raise.
        for check in (*checks, *metric_checks):
            check.status = NOT_JUDGED
    elif reasons:
        verdict = "drift"
    elif any(c.status != "ok" for c in checks):
        verdict = "warning"
        reasons = [
            "shifting, below the alert level: "
            + ", ".join(f"{c.name} ({c.status})" for c in checks if c.status != "ok")
        ]
    else:
        verdict = "ok"
    notes = list(current.notes)
    if current.predictions is None:
        notes.append("no model to predict with: prediction drift not checked (pass --model)")
    return DriftReport(
        verdict=verdict,
        reasons=reasons,
        source=current.source,
        rows=rows,
        reference={
            "model": profile.get("model"),
            "rows": profile.get("rows"),
            "prediction_rows": profile.get("prediction_rows"),
            "profile": profile_source,
        },
        thresholds=thresholds.model_dump(),
        checks=checks,
        metrics=metric_checks,
        notes=notes,
    )


def _metric_checks(
    reference: Mapping[str, float], current: Mapping[str, float], thresholds: MonitoringParams
) -> list[MetricCheck]:
    checks = []
    for metric, value in current.items():
        if metric not in reference or not math.isfinite(value):
            continue
        allowed = thresholds.max_metric_drop.get(metric)
        drop = value - reference[metric] if metric in LOWER_IS_BETTER else reference[metric] - value
        status = "drift" if allowed is not None and drop > allowed + 1e-12 else "ok"
        checks.append(MetricCheck(metric, reference[metric], value, allowed, status))
    return checks


# --------------------------------------------------------------------------------------------
# Running a check: reference, model and new data from the command line's arguments
# --------------------------------------------------------------------------------------------

PROFILE_ARTIFACT = "reports/reference_profile.json"
DEFAULT_PROFILE = Path(PROFILE_ARTIFACT)
PREDICTION_LOG_SUFFIX = ".jsonl"


@dataclass
class Reference:
    profile: dict[str, Any]
    source: str
    scorer: Any = None  # scoring.Scorer, when a model is available to predict with
    notes: list[str] = field(default_factory=list)


def resolve_reference(
    root: Path, params: Any, *, model: str | None, reference: Path | None, need_model: bool
) -> Reference:
    """The profile to compare with and the model to predict with.

    ``--model models:/name@alias`` uses that version's own profile (logged with its run) unless
    ``--reference`` is given; otherwise the profile is ``reports/reference_profile.json`` and the
    model the local one it names (``outputs/models/<name>``), when it is there.
    """
    from construction_delays.scoring import load_scorer

    if model and model.startswith("models:/"):
        scorer = load_scorer(model, root, params)  # its metadata names the run holding the profile
        if reference is not None:
            profile, source = read_profile(reference), str(reference)
        else:
            run_id, version = scorer.metadata.get("run_id"), scorer.metadata.get("version")
            profile = _registered_profile(root, model, run_id)
            source = f"{model} (version {version}, run {run_id})"
        return Reference(profile, source, scorer if need_model else None)
    path = reference or root / DEFAULT_PROFILE
    profile = read_profile(path)
    if not need_model:
        return Reference(profile, str(path))
    if model:
        given = Path(model)
        name = given.name if given.suffix != ".skops" else given.parent.name
        notes = []
        if profile.get("model") and name != profile.get("model"):
            notes.append(
                f"the reference profile holds the predictions of {profile.get('model')!r}, and"
                f" --model {model} is another model: a prediction drift may only be the models'"
                " difference"
            )
        return Reference(profile, str(path), load_scorer(model, root, params), notes=notes)
    local = root / "outputs" / "models" / str(profile.get("model")) / "model.skops"
    if local.is_file():
        return Reference(profile, str(path), load_scorer(str(local), root, params))
    return Reference(
        profile,
        str(path),
        notes=[f"{local.relative_to(root)} not found: predictions not checked (pass --model)"],
    )


def _registered_profile(root: Path, model: str, run_id: str | None) -> dict[str, Any]:
    import tempfile

    import mlflow
    from mlflow.exceptions import MlflowException

    from construction_delays.tracking import use_store

    use_store(root)
    with tempfile.TemporaryDirectory(prefix="mlops-monitor-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=PROFILE_ARTIFACT, dst_path=tmp
            )
        except (MlflowException, OSError):
            raise MonitoringError(
                f"{model}: its run {run_id} has no {PROFILE_ARTIFACT} (logged before monitoring"
                " existed?); pass --reference with a profile written by the evaluate stage"
            ) from None
        return read_profile(Path(local))


def load_current(
    path: Path, profile: Mapping[str, Any], *, since: dt.datetime | None = None
) -> CurrentData:
    """The new data: a CSV/Parquet batch (labels used when it has the target column) or the
    server's JSONL prediction log; values are checked as the scorer checks them."""
    from construction_delays.scoring import (
        FeatureSchema,
        check_input_file,
        describe_problems,
        frame_from_columns,
        validate_chunk,
    )

    schema = FeatureSchema(
        tuple(profile["numeric_features"]), tuple(profile["categorical_features"]), "profile"
    )
    if path.suffix == PREDICTION_LOG_SUFFIX:
        if not path.is_file():
            raise MonitoringError(f"{path}: prediction log not found (`mlops serve` writes it)")
        current = read_prediction_log(path, schema.columns, since)
    else:
        if since is not None:
            raise MonitoringError("--since applies to the server's prediction log (.jsonl) only")
        try:
            check_input_file(path, schema.columns, None)
        except ProjectError as error:
            raise MonitoringError(str(error)) from None
        from construction_delays.data import read_table

        frame = read_table(path, schema.categorical)  # as the scorer reads them: text
        target = profile["target"]
        labels = frame[target] if target in frame.columns and frame[target].notna().any() else None
        current = CurrentData(frame[schema.columns], str(path), target=labels)
    columns, problems = validate_chunk(current.features, schema, 0)
    if problems:
        raise MonitoringError(
            describe_problems(path, problems).replace("nothing was written", "nothing was judged")
        )
    current.columns = columns
    current.features = frame_from_columns(columns, schema)
    return current


def labelled_metrics(
    profile: Mapping[str, Any], current: CurrentData, scorer: Any
) -> dict[str, float]:
    """The model's metrics on labelled new data (rows whose label is missing are left out)."""
    from construction_delays.evaluation import (
        classification_metrics,
        regression_metrics,
        resolve_positive_label,
    )

    if current.target is None or current.predictions is None:
        return {}
    known = current.target.notna().to_numpy()
    target = current.target[known]
    predictions = current.predictions[known]
    if profile["task"] == "regression":
        return regression_metrics(target, predictions.astype(np.float64))
    classes = list(scorer.classes) if scorer is not None else []
    if target.dtype == object and classes and not isinstance(classes[0], str):
        target = target.astype(type(classes[0]))
    if classes and len(target) and not set(pd.unique(target)) & set(classes):
        shown = sorted(map(str, pd.unique(target)))[:5]
        raise MonitoringError(
            f"{profile['target']}: none of the labels {shown} is a class of the model"
            f" {sorted(map(str, classes))}; write the labels as the training data does"
        )
    positive = resolve_positive_label(classes, profile.get("positive_class"))
    probabilities = current.probabilities[known] if current.probabilities is not None else None
    return classification_metrics(target, predictions, probabilities, classes, positive)


def check(
    root: Path,
    params: Any,
    input_path: Path,
    *,
    model: str | None = None,
    reference: Path | None = None,
    since: str | None = None,
) -> DriftReport:
    """``mlops monitor``: judge ``input_path`` against the reference; nothing is written here."""
    is_log = input_path.suffix == PREDICTION_LOG_SUFFIX
    resolved = resolve_reference(
        root, params, model=model, reference=reference, need_model=not is_log
    )
    current = load_current(
        input_path, resolved.profile, since=parse_since(since) if since else None
    )
    current.notes.extend(resolved.notes)
    scorer = resolved.scorer
    if scorer is not None and current.predictions is None and len(current.features):
        missing = [c for c in scorer.schema.columns if c not in current.columns]
        if missing:
            raise MonitoringError(
                f"{scorer.metadata.get('source')}: the model needs column(s) {missing} that the"
                f" reference profile {resolved.source} does not describe; pass the matching"
                " --reference"
            )
        prediction = scorer.predictor.predict(current.columns)
        current.predictions, current.probabilities = prediction.labels, prediction.probabilities
    return compare(
        resolved.profile,
        current,
        params.monitoring,
        current_metrics=labelled_metrics(resolved.profile, current, scorer),
        profile_source=resolved.source,
    )


def write_report(report: DriftReport, out_dir: Path) -> dict[str, Path]:
    """drift.json, drift_report.md and drift.png in ``out_dir``; the step summary on GitHub."""
    import os

    from construction_delays import plots
    from construction_delays.files import write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": write_json(out_dir / "drift.json", report.to_dict()),
        "markdown": out_dir / "drift_report.md",
        "figure": out_dir / "drift.png",
    }
    markdown = report.to_markdown()
    paths["markdown"].write_text(markdown, encoding="utf-8")
    plots.plot_drift(report, paths["figure"])
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with Path(summary).open("a", encoding="utf-8") as handle:
            handle.write(markdown)
    return paths
