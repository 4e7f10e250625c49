"""Quality gates: thresholds from params.yaml (`gates:`), checked against the run's metrics, the
base branch (main) and, when the registry has one, the champion.

Gates are data in params.yaml, so loosening one shows up in the pull request's diff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from construction_delays.config import LOWER_IS_BETTER, GateParams


@dataclass(frozen=True)
class GateResult:
    gate: str
    threshold: str
    value: str
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _minimum_gate(metric: str, bound: float, value: float | None) -> GateResult:
    lower = metric in LOWER_IS_BETTER
    passed = value is not None and (value <= bound if lower else value >= bound)
    return GateResult(
        gate=f"{metric} (test)",
        threshold=f"{'≤' if lower else '≥'} {bound:g}",
        value="missing" if value is None else f"{value:.4f}",
        passed=passed,
    )


def _regression_gate(
    metric: str, tolerance: float, value: float | None, reference: float, against: str
) -> GateResult:
    lower = metric in LOWER_IS_BETTER
    if value is None:
        return GateResult(f"{metric} vs {against}", f"within {tolerance:g}", "missing", False)
    change = value - reference
    worse_by = change if lower else -change
    return GateResult(
        gate=f"{metric} vs {against}",
        threshold=f"{'rise' if lower else 'drop'} ≤ {tolerance:g}",
        value=f"{change:+.4f} ({reference:.4f} → {value:.4f})",
        passed=worse_by <= tolerance + 1e-12,
    )


@dataclass(frozen=True)
class ScoredProblem:
    """What a model's test scores are about: the target, the task, and whether the test rows
    belong to groups training never saw (``data.group``) or were drawn row by row."""

    task: str | None
    target: str | None
    group: str | None = None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ScoredProblem:
        """From a ``data:`` section of params.yaml, or from a run's logged MLflow params (which
        carry ``group`` only when one was set)."""
        return cls(data.get("task", "classification"), data.get("target"), data.get("group"))


def _split_kind(group: str | None) -> str:
    return f"on whole groups of {group!r}" if group else "on rows drawn at random"


def problem_change(current: ScoredProblem, reference: ScoredProblem, against: str) -> str | None:
    """Why ``against``'s metrics cannot be compared with the current run's; None when they can.

    A model of another target (or the same target as another task) is not better or worse than
    this one; nor are scores on unseen groups comparable with scores on random rows, which credit a
    model for recognising groups it trained on. No regression gate compares such runs; merging the
    change is the decision (the absolute gates still apply).
    """
    if reference.target is None or reference == current:
        return None
    if (reference.task, reference.target) != (current.task, current.target):
        return (
            f"{against} predicts {reference.target!r} ({reference.task}) and this run"
            f" {current.target!r} ({current.task}): different problems, so no regression gate"
            " compares them"
        )
    return (
        f"{against} was tested {_split_kind(reference.group)} and this run"
        f" {_split_kind(current.group)} (data.group): the scores measure different things, so no"
        " regression gate compares them"
    )


def model_gates(
    gates: GateParams, test: dict[str, float], references: dict[str, dict[str, float]]
) -> list[GateResult]:
    """Metric gates. ``references`` maps a name ("main", "champion v3") to its test metrics."""
    results = [
        _minimum_gate(metric, bound, test.get(metric)) for metric, bound in gates.metrics.items()
    ]
    for against, reference in references.items():
        for metric, tolerance in gates.max_regression.items():
            if metric in reference:
                results.append(
                    _regression_gate(
                        metric, tolerance, test.get(metric), reference[metric], against
                    )
                )
    return results


def evaluate_gates(
    gates: GateParams,
    metrics: dict[str, Any],
    validation: dict[str, Any],
    references: dict[str, dict[str, float]],
) -> list[GateResult]:
    """Metric gates on the run's best model plus the data gates on its validation report."""
    results = model_gates(gates, metrics.get("test", {}), references)
    if gates.data.min_rows is not None:
        rows = int(validation.get("rows", 0))
        results.append(
            GateResult(
                "data rows", f"≥ {gates.data.min_rows}", str(rows), rows >= gates.data.min_rows
            )
        )
    if gates.data.max_missing_share is not None:
        rows = max(int(validation.get("rows", 0)), 1)
        missing = validation.get("missing_values", {})
        worst_column, worst = max(missing.items(), key=lambda item: item[1], default=("", 0))
        share = worst / rows
        results.append(
            GateResult(
                "data missing values (worst column)",
                f"≤ {gates.data.max_missing_share:.0%}",
                f"{share:.1%} ({worst_column})" if worst else f"{share:.1%}",  # none: no column
                share <= gates.data.max_missing_share,
            )
        )
    results.append(
        GateResult(
            "data validation",
            "no problems",
            f"{len(validation.get('problems', []))} problem(s)",
            bool(validation.get("valid")),
        )
    )
    return results


def committed_results_gate(stale: list[str]) -> GateResult:
    """``stale``: what :func:`lockcheck.stale_results` found ([] when the results are current)."""
    shown = "; ".join(stale[:3]) + (f"; and {len(stale) - 3} more" if len(stale) > 3 else "")
    return GateResult(
        "committed results",
        "dvc.lock and reports/ match the commit",
        f"stale: {shown}" if stale else "current",
        not stale,
    )


def behaviour_gate(report: Mapping[str, Any] | None) -> GateResult:
    """One gate over the behavioural checks of ``report`` (reports/behaviour.json, or the checks
    `mlops promote` ran), naming each failed one; a missing report fails."""
    gate, threshold = "behaviour", "every check of `behaviour:` passes"
    if not report:
        return GateResult(
            gate, threshold, "reports/behaviour.json missing: run `make repro`", False
        )
    checks = report.get("checks", [])
    failed = [f"{c['check']}: {c['value']}" for c in checks if not c["passed"]]
    value = f"{len(checks) - len(failed)} of {len(checks)} passed"
    return GateResult(
        gate, threshold, value + (f"; failed: {'; '.join(failed)}" if failed else ""), not failed
    )


def all_passed(results: list[GateResult]) -> bool:
    return all(result.passed for result in results)
