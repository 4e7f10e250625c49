"""The pull-request report: this branch against a base ref (main), as Markdown CML can post.

Everything comes from small files in git (reports/*.json, params.yaml) read at the base ref with
`git show`, so the report needs no DVC pull and renders the same locally (`make report`) and in CI.
Charts are Markdown tables and a mermaid chart, which GitHub renders natively; plot images are
linked only when `report.publish_images` opts in to CML's public upload.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from construction_delays.config import LOWER_IS_BETTER, Params
from construction_delays.errors import ProjectError
from construction_delays.gates import (
    GateResult,
    ScoredProblem,
    all_passed,
    behaviour_gate,
    committed_results_gate,
    evaluate_gates,
    problem_change,
)
from construction_delays.lockcheck import (
    git_bytes,
    stale_results,
    unreproduced_outputs,
    unrun_changes,
)

METRICS_FILE, VALIDATION_FILE, PARAMS_FILE, BEHAVIOUR_FILE = (
    "reports/metrics.json",
    "reports/validation.json",
    "params.yaml",
    "reports/behaviour.json",
)
RUN_INFO_FILE, GATES_FILE = "reports/mlflow_run.json", "reports/gates.json"
PROFILE_FILE, TRAIN_SPLIT = "reports/reference_profile.json", "outputs/split/train.parquet"
FIGURES = {
    "Model comparison": "reports/figures/model_comparison.png",
    "Confusion matrix": "reports/figures/confusion_matrix.png",
    "ROC and precision-recall": "reports/figures/roc_pr_curves.png",
    "Predicted vs actual": "reports/figures/predicted_vs_actual.png",
    "Feature importance": "reports/figures/feature_importance.png",
}
EPSILON = 5e-5


@dataclass
class Snapshot:
    """The report inputs at one revision (or the working tree when ``ref`` is None)."""

    ref: str | None
    metrics: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    behaviour: dict[str, Any] = field(default_factory=dict)


def git_show(root: Path, ref: str, path: str) -> str | None:
    content = git_bytes(root, ref, path)
    return None if content is None else content.decode("utf-8")


def load_snapshot(root: Path, ref: str | None) -> Snapshot:
    def read(path: str) -> str | None:
        if ref is None:
            file = root / path
            return file.read_text(encoding="utf-8") if file.is_file() else None
        return git_show(root, ref, path)

    snapshot = Snapshot(ref)
    if (text := read(METRICS_FILE)) is not None:
        snapshot.metrics = json.loads(text)
    if (text := read(VALIDATION_FILE)) is not None:
        snapshot.validation = json.loads(text)
    if (text := read(PARAMS_FILE)) is not None:
        snapshot.params = yaml.safe_load(text) or {}
    if (text := read(BEHAVIOUR_FILE)) is not None:
        snapshot.behaviour = json.loads(text)
    return snapshot


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): tree}


def arrow(metric: str, change: float) -> str:
    if abs(change) < EPSILON:
        return "="
    better = change < 0 if metric in LOWER_IS_BETTER else change > 0
    return (
        f"{'🟢 ▲' if change > 0 else '🔴 ▼'}" if better else f"{'🔴 ▲' if change > 0 else '🔴 ▼'}"
    )


def metric_rows(current: dict[str, float], base: dict[str, float]) -> list[str]:
    rows = []
    for metric, value in current.items():
        if metric in base:
            change = value - base[metric]
            rows.append(
                f"| {metric} | {base[metric]:.4f} | {value:.4f} | {arrow(metric, change)} {change:+.4f} |"
            )
        else:
            rows.append(f"| {metric} | – | {value:.4f} | new |")
    return rows


@dataclass(frozen=True)
class Champion:
    metrics: dict[str, float]
    label: str  # "v3"
    problem: ScoredProblem  # what its logged test scores are about


def champion_metrics(params: Params, root: Path) -> Champion | None:
    """Test metrics of the registry's `champion`, if the registry has one (else None)."""
    from construction_delays.tracking import store_missing, tracking_uri

    if store_missing(root):
        return None
    uri = tracking_uri(root)
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=uri)
    try:
        version = client.get_model_version_by_alias(params.mlflow.registered_model, "champion")
        run = client.get_run(version.run_id)
    except MlflowException:
        return None
    metrics = {
        k.removeprefix("test_"): v for k, v in run.data.metrics.items() if k.startswith("test_")
    }
    return Champion(metrics, f"v{version.version}", ScoredProblem.of(run.data.params))


def _problem(params: Params) -> ScoredProblem:
    return ScoredProblem.of(params.data.model_dump())


def same_problem(params: Params, other: ScoredProblem) -> bool:
    """Whether scores of ``other`` measure the same problem as this run's (gates.problem_change)."""
    return problem_change(_problem(params), other, "") is None


def compute_gates(
    params: Params,
    current: Snapshot,
    base: Snapshot,
    champion: Champion | None,
    stale: list[str] | None = None,
) -> tuple[list[GateResult], list[str]]:
    """The gates, and notes on the references left out because they predict something else.

    ``stale``: what of the commit's results is out of date (None: not checked).
    """
    problem = _problem(params)
    references: dict[str, dict[str, float]] = {}
    notes = []
    if base.metrics.get("test"):
        base_problem = ScoredProblem.of(base.params.get("data") or {})
        if note := problem_change(problem, base_problem, f"`{base.ref}`"):
            notes.append(note)
        else:
            references[f"{base.ref}"] = base.metrics["test"]
    if champion is not None:
        label = f"champion {champion.label}"
        if note := problem_change(problem, champion.problem, f"the registry's {label}"):
            notes.append(note)
        else:
            references[label] = champion.metrics
    results = evaluate_gates(params.gates, current.metrics, current.validation, references)
    if params.gates.behaviour and params.behaviour.configured:
        results.append(behaviour_gate(current.behaviour))
    if stale is not None:
        results.append(committed_results_gate(stale))
        if stale:
            notes.append(
                "This commit's `dvc.lock` and `reports/` are not what its code, params and data"
                " produce: run `make repro` and commit them (after the merge, main's committed"
                " metrics are what the next pull request is compared with)"
            )
    return results, notes


def _gates_section(results: list[GateResult]) -> list[str]:
    failed = [r for r in results if not r.passed]
    verdict = (
        "✅ **All quality gates passed**"
        if not failed
        else f"❌ **{len(failed)} quality gate(s) failed**"
    )
    lines = [verdict, "", "| gate | threshold | value | result |", "|---|---|---|---|"]
    lines += [
        f"| {r.gate} | {r.threshold} | {r.value} | {'✅ pass' if r.passed else '❌ fail'} |"
        for r in results
    ]
    return lines


def _metrics_section(current: Snapshot, base: Snapshot, comparable: bool = True) -> list[str]:
    """``comparable``: False when the base predicts something else (gates.problem_change); its
    scores are then not shown beside this branch's, as a delta of unrelated numbers reads as a
    verdict (a green ▲ for a model of another target)."""
    metrics, base_metrics = current.metrics, base.metrics if comparable else {}
    best, base_best = metrics.get("best_model", "?"), base.metrics.get("best_model", "–")
    test = metrics.get("test", {})
    lines = [
        "### Metrics (held-out test set, best model)",
        "",
        f"Best model: **{best}** (selected by cross-validated `{metrics.get('selection_metric')}`); on {base.ref}: {base_best}.",
        "",
    ]
    if comparable:
        lines += [
            f"| metric | {base.ref} | this branch | change |",
            "|---|---:|---:|---:|",
            *metric_rows(test, base_metrics.get("test", {})),
        ]
    else:
        lines += [
            f"_Not comparable with `{base.ref}` (another problem, see above): this branch's"
            " scores only._",
            "",
            "| metric | this branch |",
            "|---|---:|",
            *(f"| {metric} | {value:.4f} |" for metric, value in test.items()),
        ]
    models = metrics.get("models", {})
    if models:
        names = list(next(iter(models.values()))["test"])
        lines += ["", "<details><summary>Every model (test set)</summary>", ""]
        lines += [f"| model | {' | '.join(names)} |", "|---|" + "---:|" * len(names)]
        base_models = base_metrics.get("models", {})
        for model, scores in models.items():
            cells = []
            for name in names:
                value = scores["test"].get(name)
                previous = base_models.get(model, {}).get("test", {}).get(name)
                change = "" if previous is None or value is None else f" ({value - previous:+.4f})"
                cells.append("–" if value is None else f"{value:.4f}{change}")
            star = " ★" if model == best else ""
            lines.append(f"| {model}{star} | {' | '.join(cells)} |")
        lines += ["", "</details>"]
        if comparable:  # a chart of this branch alone would add nothing to the table
            lines += ["", *_mermaid_chart(current, base)]
    return lines


def _mermaid_chart(current: Snapshot, base: Snapshot) -> list[str]:
    """A bar chart GitHub renders natively: no image leaves the repository."""
    test = current.metrics.get("test", {})
    names = [m for m in test if m not in LOWER_IS_BETTER]  # one 0..1 axis
    if not names:
        return []
    base_test = base.metrics.get("test", {})
    lines = [
        "```mermaid",
        "xychart-beta",
        f'    title "Best model, test set: {base.ref} (first bar) vs this branch (second bar)"',
        f"    x-axis [{', '.join(names)}]",
        '    y-axis "score" 0 --> 1',
    ]
    if all(n in base_test for n in names):
        lines.append(f"    bar [{', '.join(f'{base_test[n]:.4f}' for n in names)}]")
    lines += [f"    bar [{', '.join(f'{test[n]:.4f}' for n in names)}]", "```"]
    return lines


def _params_section(current: Snapshot, base: Snapshot) -> list[str]:
    now, before = flatten(current.params), flatten(base.params)
    changed = sorted(k for k in now.keys() | before.keys() if now.get(k) != before.get(k))
    if not changed:
        return ["### Params", "", f"No change against {base.ref}."]
    lines = ["### Params changed", "", f"| param | {base.ref} | this branch |", "|---|---|---|"]
    for key in changed:
        lines.append(f"| `{key}` | {_cell(before.get(key, '–'))} | {_cell(now.get(key, '–'))} |")
    return lines


def _cell(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def _behaviour_section(current: Snapshot, base: Snapshot, comparable: bool = True) -> list[str]:
    """The behavioural checks of this branch's best model, beside main's result of the same check
    (not when main's model predicts something else: a check of the same name measures another
    model)."""
    checks = current.behaviour.get("checks", [])
    if not checks:
        return []
    before = {c["check"]: c for c in base.behaviour.get("checks", [])} if comparable else {}
    lines = [
        f"### Behaviour ({current.behaviour.get('model')}, {current.behaviour.get('rows')} test rows)",
        "",
        f"| check | needs | {base.ref} | this branch | result |",
        "|---|---|---|---|---|",
    ]
    for check in checks:
        old = before.get(check["check"])
        lines.append(
            f"| {check['check']} | {check['threshold']} | {old['value'] if old else '–'}"
            f" | {check['value']} | {'✅ pass' if check['passed'] else '❌ fail'} |"
        )
    return [*lines, ""]


def _data_section(current: Snapshot, base: Snapshot) -> list[str]:
    now, before = current.validation, base.validation
    if not now:
        return []
    lines = ["### Data", "", f"| | {base.ref} | this branch |", "|---|---|---|"]
    lines.append(f"| file | {before.get('file', '–')} | {now.get('file')} |")
    lines.append(f"| rows | {before.get('rows', '–')} | {now.get('rows')} |")
    lines.append(f"| md5 | `{before.get('md5', '–')}` | `{now.get('md5')}` |")
    missing_now, missing_before = (
        sum(now.get("missing_values", {}).values()),
        sum(before.get("missing_values", {}).values()),
    )
    lines.append(f"| missing values | {missing_before if before else '–'} | {missing_now} |")
    if now.get("target_distribution"):
        dist = ", ".join(f"{k}: {v:.1%}" for k, v in now["target_distribution"].items())
        base_dist = (
            ", ".join(f"{k}: {v:.1%}" for k, v in before.get("target_distribution", {}).items())
            or "–"
        )
        lines.append(f"| target classes | {base_dist} | {dist} |")
    schema_now, schema_before = now.get("schema", {}), before.get("schema", {})
    if before and schema_now != schema_before:
        added = sorted(set(schema_now) - set(schema_before))
        removed = sorted(set(schema_before) - set(schema_now))
        retyped = sorted(
            c for c in set(schema_now) & set(schema_before) if schema_now[c] != schema_before[c]
        )
        lines += [
            "",
            f"Schema changed: added {added or '–'}, removed {removed or '–'}, dtype changed {retyped or '–'}.",
        ]
    problems = now.get("problems", [])
    lines += [
        "",
        "**Validation:** "
        + ("✅ no problems found" if not problems else f"❌ {len(problems)} problem(s)"),
    ]
    lines += [f"- `{p['column']}`: {p['message']}" for p in problems]
    return lines


def _training_drift_section(root: Path, base_ref: str, params: Params) -> list[str]:
    """This branch's training split against the base branch's reference profile (PSI per column on
    the base's bins): how far the data the new model learns from moved. Informational, not a gate."""
    import pandas as pd

    from construction_delays.monitoring import (
        PROFILE_VERSION,
        CurrentData,
        compare,
        markdown_cell,
    )

    text, split = git_show(root, base_ref, PROFILE_FILE), root / TRAIN_SPLIT
    if text is None or not split.is_file():
        return []
    profile = json.loads(text)
    if profile.get("version") != PROFILE_VERSION:
        return []
    frame = pd.read_parquet(split)
    shared = {name: ref for name, ref in profile["features"].items() if name in frame.columns}
    target = profile["target"] if profile["target"] in frame.columns else None
    report = compare(
        {**profile, "features": shared, "prediction": {}},
        CurrentData(frame[list(shared)], TRAIN_SPLIT, target=frame[target] if target else None),
        params.monitoring,
    )
    checks = [c for c in report.checks if c.psi is not None or c.status != "ok"]
    if not checks:
        return []
    t = params.monitoring
    lines = [
        "",
        f"**Training data vs `{base_ref}`'s** (population stability index on `{base_ref}`'s bins;"
        f" ≥ {t.psi_warning} shifting, ≥ {t.psi_drift} drifted; informational):",
    ]
    if report.verdict == "insufficient":  # every check "not judged"
        return [*lines, f"not judged: {report.reasons[0]}."]
    moved = [c for c in checks if c.status != "ok"]
    if not moved:
        largest = max(checks, key=lambda c: c.psi or 0.0)
        if not largest.psi:
            return [*lines, "no column moved."]
        return [*lines, f"no column moved (largest: `{largest.name}`, {largest.psi:.3f})."]
    lines += ["", "| column | PSI | status | change |", "|---|---:|---|---|"]
    lines += [
        f"| `{markdown_cell(c.name)}` | {'' if c.psi is None else f'{c.psi:.3f}'} | {c.status}"
        f" | {markdown_cell(c.change)} |"
        for c in sorted(moved, key=lambda c: -(c.psi or 0.0))
    ]
    return lines


def _reproducibility_section(root: Path) -> list[str]:
    """Whether the outputs are byte for byte what the commit's `dvc.lock` records (informational:
    training is reproducible on one platform and library build, not across CPUs)."""
    compared, differing = unreproduced_outputs(root)
    if not compared:
        return []
    if not differing:
        return [
            "### Reproducibility",
            "",
            f"✅ All {compared} outputs (split, models, metrics, plots) are byte for byte the ones"
            " this commit's `dvc.lock` records.",
            "",
        ]
    shown = ", ".join(f"`{item}`" for item in differing[:5])
    more = f" and {len(differing) - 5} more" if len(differing) > 5 else ""
    return [
        "### Reproducibility",
        "",
        f"⚠️ {len(differing)} of {compared} outputs differ from the ones this commit's `dvc.lock`"
        f" records although their code, params and data did not change: {shown}{more}. Outputs"
        " are a function of their inputs on one platform and library build, so the commit was"
        " most likely run on another kind of machine (floating-point results can differ between"
        " CPUs). Informational: the gates judge this run's own results.",
        "",
    ]


def _links_section(root: Path, publish_images: bool) -> list[str]:
    lines = ["### Plots", ""]
    present = {title: path for title, path in FIGURES.items() if (root / path).is_file()}
    if publish_images:
        lines += [f"**{title}**\n\n![{title}](./{path})\n" for title, path in present.items()]
    else:
        run_url = _workflow_run_url()
        where = (
            f"the `model-report` artifact of [this workflow run]({run_url})"
            if run_url
            else "`reports/figures/`"
        )
        lines.append(
            f"Images ({', '.join(present) or 'none'}) are in {where}; they are not uploaded to a third-party host."
        )
    run_info = root / RUN_INFO_FILE
    if run_info.is_file():
        from construction_delays.tracking import server_run_url

        info = json.loads(run_info.read_text(encoding="utf-8"))
        if link := server_run_url(info):
            lines += ["", f"MLflow run: [{info['run_id']}]({link})"]
        else:
            lines += ["", f"MLflow run `{info['run_id']}` (local store)."]
    return lines


def _workflow_run_url() -> str | None:
    server, repo, run = (
        os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


class ReportError(ProjectError, ValueError):
    pass


def check_base_ref(root: Path, base_ref: str) -> None:
    """A ref git does not know would read as "no metrics on it": a first model, every gate against
    the base passing. Outside a git repository there is nothing to compare, which is allowed."""

    def git(*args: str) -> int:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, check=False).returncode

    if git("rev-parse", "--git-dir") != 0:
        return
    if git("rev-parse", "--verify", "--quiet", f"{base_ref}^{{commit}}") != 0:
        raise ReportError(
            f"--base {base_ref}: not a commit in this repository; fetch it first (in CI: checkout"
            " with fetch-depth: 0, then `git branch main origin/main`) or name another (BASE=...)"
        )


class BuiltReport(NamedTuple):
    markdown: str
    gates: list[GateResult]
    notes: list[str]  # why a reference is not gated against (another problem), stale results


def build_report(
    root: Path, params: Params, base_ref: str, with_champion: bool = True
) -> BuiltReport:
    """The report for the working tree against ``base_ref``, its gate results and notes."""
    check_base_ref(root, base_ref)
    current, base = load_snapshot(root, None), load_snapshot(root, base_ref)
    if not current.metrics:
        raise FileNotFoundError(
            f"{root / METRICS_FILE}: no metrics yet; run the pipeline first (`make repro`)"
        )
    champion = champion_metrics(params, root) if with_champion else None
    # Results on disk older than the inputs (no `make repro` since an edit) cannot be compared
    # with the commit; said first, as the reason every other comparison may be off too.
    stale = unrun_changes(root) + stale_results(root) if params.gates.committed_results else None
    gates, notes = compute_gates(params, current, base, champion, stale)
    branch = subprocess.run(
        ["git", "rev-parse", "--abbrev-ref", "HEAD"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    lines = [
        f"## Model report: `{branch or 'working tree'}` vs `{base_ref}`",
        "",
        *_gates_section(gates),
        "",
        *(f"_{note}._\n" for note in notes),
    ]
    if not base.metrics:
        lines += [
            f"_No metrics on `{base_ref}` yet: this is the first model; nothing to compare against._",
            "",
        ]
    comparable = same_problem(params, ScoredProblem.of(base.params.get("data") or {}))
    lines += [*_metrics_section(current, base, comparable), ""]
    if champion is not None and same_problem(params, champion.problem):
        lines += [
            f"### Registry champion ({champion.label})",
            "",
            "| metric | champion | this branch | change |",
            "|---|---:|---:|---:|",
        ]
        lines += [*metric_rows(current.metrics.get("test", {}), champion.metrics), ""]
    elif champion is not None:
        lines += [
            f"### Registry champion ({champion.label})",
            "",
            "_Not comparable (another problem, see above): no scores side by side._",
            "",
        ]
    lines += [
        *_behaviour_section(current, base, comparable),
        *_params_section(current, base),
        "",
        *_data_section(current, base),
        *(_training_drift_section(root, base_ref, params) if current.validation else []),
        "",
        *(_reproducibility_section(root) if not stale else []),
        *_links_section(root, params.report.publish_images),
    ]
    return BuiltReport("\n".join(lines) + "\n", gates, notes)


def gates_payload(results: list[GateResult]) -> dict[str, Any]:
    return {"passed": all_passed(results), "gates": [r.to_dict() for r in results]}
