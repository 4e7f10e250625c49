"""One function per DVC stage. ``pipelines/*.py`` parse arguments and call these; paths always come
from dvc.yaml so they are written in exactly one place.

Heavy imports (scikit-learn, matplotlib, MLflow) happen inside the stages that need them: each DVC
stage is a fresh process and start-up time is a real share of a small pipeline's wall time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from construction_delays.config import Params
from construction_delays.console import console, stdout_is_terminal
from construction_delays.data import read_table, split_columns, split_frame, text_columns
from construction_delays.files import read_json, write_json
from construction_delays.validation import DataValidationError, validate_frame

TRAIN_FILE, TEST_FILE = "train.parquet", "test.parquet"
MODEL_FILE, SUMMARY_FILE, CV_RESULTS_FILE, SKIPPED_FILE = (
    "model.skops",
    "summary.json",
    "cv_results.csv",
    "SKIPPED",
)


def validate(params: Params, data_path: Path, report_path: Path) -> None:
    """Validate the raw data; always write the report, then fail if it lists problems."""
    frame = read_table(data_path, text_columns(params.data))
    report = validate_frame(frame, params.data, data_path)
    write_json(report_path, report.to_dict())
    if not report.valid:
        raise DataValidationError(report)
    console.print(
        f"[green]✓[/] {data_path}: {report.rows} rows, {report.columns} columns, no problems"
    )


def split(params: Params, data_path: Path, out_dir: Path) -> None:
    frame = read_table(data_path, text_columns(params.data))
    train, test = split_frame(frame, params.data, params.split, params.base.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, part in ((TRAIN_FILE, train), (TEST_FILE, test)):
        split_columns(part, params.data).to_parquet(out_dir / name, index=False)
    group = params.data.group
    groups = (
        f" ({train[group].nunique()} and {test[group].nunique()} whole groups of {group!r})"
        if group is not None
        else ""
    )
    console.print(
        f"[green]✓[/] split {len(frame)} rows: {len(train)} train, {len(test)} test{groups}"
        f" -> {out_dir}"
    )


def load_split(params: Params, path: Path) -> tuple[Any, Any]:
    """(features, target) of a split file; a group column that is not a feature is left out."""
    frame, data = read_split(path), params.data
    extra = [c for c in frame.columns if c not in data.feature_columns]
    return frame.drop(columns=extra), frame[data.target]


def load_groups(params: Params, path: Path) -> Any:
    """The ``data.group`` column of a split file, or None when the project has no groups."""
    if params.data.group is None:
        return None
    return read_split(path)[params.data.group]


def read_split(path: Path) -> Any:
    import pandas as pd

    return pd.read_parquet(path)


def train(
    params: Params,
    model_name: str,
    train_path: Path,
    out_dir: Path,
    timings_path: Path | None = None,
) -> None:
    """Tune one model of the zoo; a disabled model leaves a marker so DVC's foreach stays uniform.

    ``out_dir`` gets only what the inputs determine (the model file is byte-reproducible), so a
    rerun on unchanged inputs reproduces the hash dvc.lock records and DVC skips what follows.
    How long it took goes to ``timings_path``, outside the stage's outputs (`log_run` logs it).
    """
    if model_name not in params.models:
        raise KeyError(f"params.yaml: models.{model_name}: no such model")
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.iterdir():
        stale.unlink()
    if not params.models[model_name].enabled:
        (out_dir / SKIPPED_FILE).write_text("disabled in params.yaml\n", encoding="utf-8")
        console.print(f"[dim]- {model_name}: disabled in params.yaml, skipped[/]")
        return

    from construction_delays.persistence import file_sha256, save_model
    from construction_delays.training import TIMING_COLUMNS, train_model

    features, target = load_split(params, train_path)
    groups = load_groups(params, train_path)
    spec = params.models[model_name]
    grid_size = 1
    for values in spec.grid.values():
        grid_size *= len(values)
    console.print(
        f"[bold]{model_name}[/] ({spec.estimator}): {grid_size} candidate(s) x {params.cv.folds} folds"
        f" = {grid_size * params.cv.folds} fits on {len(features)} rows"
    )
    # A terminal gets live bars of the CV fits; logs (CI) get a line per fit.
    result = train_model(
        model_name,
        params,
        features,
        target,
        verbose=2,
        groups=groups,
        progress_bars=stdout_is_terminal(),
    )
    model_path = save_model(result.model, out_dir / MODEL_FILE)
    write_json(out_dir / SUMMARY_FILE, result.summary)
    cv_results = result.cv_results
    columns = [
        c
        for c in cv_results.columns
        if c.startswith(("param_", "mean_", "std_", "rank_")) and c not in TIMING_COLUMNS
    ]
    cv_results[columns].to_csv(out_dir / CV_RESULTS_FILE, index=False)
    if timings_path is not None:
        # model_sha256: the model file these times belong to (a run-cache restore brings back an
        # earlier run's model files, not its times).
        record = {"model": model_name, "model_sha256": file_sha256(model_path)}
        write_json(timings_path, record | result.timings())
    metric = params.evaluate.metric
    console.print(
        f"[green]✓[/] {model_name}: CV {metric} {result.summary['cv'][metric]['mean']:.4f}"
        f" ± {result.summary['cv'][metric]['std']:.4f} in {result.fit_seconds:.1f}s,"
        f" best params {result.summary['best_params']}"
    )


def evaluate(
    params: Params,
    test_path: Path,
    models_dir: Path,
    metrics_path: Path,
    plots_dir: Path,
    figures_dir: Path,
    train_path: Path | None = None,
    profile_path: Path | None = None,
) -> None:
    """Score every trained model on the held-out test set, pick the best, write metrics and plots;
    with ``train_path`` and ``profile_path``, the reference profile for drift monitoring too."""
    import pandas as pd

    from construction_delays import plots
    from construction_delays.evaluation import (
        classification_metrics,
        finite,
        predict_proba_or_none,
        ranking_scores,
        regression_metrics,
        resolve_positive_label,
        select_best,
    )
    from construction_delays.persistence import load_model

    features, target = load_split(params, test_path)
    task, metric = params.data.task, params.evaluate.metric
    trained = {name: models_dir / name for name in params.enabled_models}
    summaries = {name: read_json(path / SUMMARY_FILE) for name, path in trained.items()}
    models = {name: load_model(path / MODEL_FILE) for name, path in trained.items()}

    test_scores: dict[str, dict[str, float]] = {}
    predictions: dict[str, Any] = {}
    probabilities: dict[str, Any] = {}
    rankings: dict[str, Any] = {}
    classes: list[Any] = []
    positive = None
    if task == "classification":
        classes = sorted(set(pd.unique(target)) | {c for m in models.values() for c in m.classes_})
        positive = resolve_positive_label(classes, params.data.positive_class)
    for name, model in models.items():
        predictions[name] = model.predict(features)
        if task == "classification":
            probabilities[name] = predict_proba_or_none(model, features)
            rankings[name] = ranking_scores(model, features, probabilities[name])
            test_scores[name] = classification_metrics(
                target, predictions[name], rankings[name], list(model.classes_), positive
            )
        else:
            test_scores[name] = regression_metrics(target, predictions[name])

    # Select on cross-validated score: choosing on the test set would leak it into the choice.
    cv_selection = {name: {metric: s["cv"][metric]["mean"]} for name, s in summaries.items()}
    best = select_best(cv_selection, metric)

    write_json(
        metrics_path,
        {
            "best_model": best,
            "selection_metric": metric,
            "test_rows": len(features),
            "test": test_scores[best],
            "cv": finite({m: v["mean"] for m, v in summaries[best]["cv"].items()}),
            "models": {
                name: {
                    "test": test_scores[name],
                    "cv": finite({m: v["mean"] for m, v in summaries[name]["cv"].items()}),
                }
                for name in models
            },
        },
    )

    write_json(
        plots_dir / "model_comparison.json",
        [{"model": name, **scores} for name, scores in test_scores.items()],
    )
    plots.plot_model_comparison(test_scores, best, figures_dir / "model_comparison.png")
    best_model = models[best]
    if task == "classification":
        write_json(
            plots_dir / "confusion_matrix.json",
            [
                {"actual": str(a), "predicted": str(p)}
                for a, p in zip(target, predictions[best], strict=True)
            ],
        )
        plots.plot_confusion(
            target,
            predictions[best],
            classes,
            f"Confusion matrix: {best} (test set)",
            figures_dir / "confusion_matrix.png",
        )
        if len(classes) == 2:
            curves, areas = {}, {}
            for name, scores in rankings.items():
                if scores is not None:
                    column = list(models[name].classes_).index(positive)
                    curves[name] = plots.curve_points(target, scores[:, column], positive)
                    areas[name] = (  # the table's AUC; AP only for the legend
                        test_scores[name].get("roc_auc"),
                        plots.average_precision(target, scores[:, column], positive),
                    )
            if best in curves:
                write_json(plots_dir / "roc.json", curves[best][0].to_dict("records"))
                write_json(plots_dir / "precision_recall.json", curves[best][1].to_dict("records"))
            plots.plot_curves(curves, best, positive, figures_dir / "roc_pr_curves.png", areas)
    else:
        write_json(
            plots_dir / "predictions.json",
            [
                {"actual": round(float(a), 4), "predicted": round(float(p), 4)}
                for a, p in zip(target, predictions[best], strict=True)
            ],
        )
        plots.plot_predictions(
            target, predictions[best], best, figures_dir / "predicted_vs_actual.png"
        )

    from construction_delays.evaluation import cv_scorers

    scoring = cv_scorers(
        task, list(best_model.classes_) if task == "classification" else [], positive
    )[metric]
    importance = plots.feature_importance(best_model, features, target, scoring, params.base.seed)
    write_json(
        plots_dir / "feature_importance.json",
        importance.head(plots.TOP_FEATURES).to_dict("records"),
    )
    plots.plot_importance(importance, best, figures_dir / "feature_importance.png")
    if train_path is not None and profile_path is not None:
        from construction_delays.monitoring import build_profile

        train_frame = pd.read_parquet(train_path)
        write_json(
            profile_path,
            build_profile(
                train=train_frame,
                data=params.data,
                bins=params.monitoring.bins,
                model=best,
                test_metrics=test_scores[best],
                predictions=predictions[best],
                probabilities=probabilities.get(best),
                classes=list(best_model.classes_) if task == "classification" else [],
                positive=positive,
            ),
        )
    console.print(
        f"[green]✓[/] evaluated {len(models)} model(s) on {len(features)} test rows; best: [bold]{best}[/]"
    )


def behaviour(
    params: Params, test_path: Path, models_dir: Path, metrics_path: Path, out_path: Path
) -> None:
    """Run the behavioural checks of ``behaviour:`` on the best model (``metrics_path`` names it)
    and write the report. Failed checks do not fail the stage: the `behaviour` gate judges them,
    like the metric gates judge the metrics."""
    from construction_delays import behaviour as checks
    from construction_delays.persistence import load_model

    metrics = read_json(metrics_path)
    best = metrics["best_model"]
    results: list[Any] = []
    if params.behaviour.configured:
        features, target = load_split(params, test_path)
        model = load_model(models_dir / best / MODEL_FILE)
        results = checks.run_checks(params, model, features, target, metrics["test"])
    write_json(out_path, checks.report(best, int(metrics["test_rows"]), results))
    if not results:
        console.print("[dim]- behaviour: no checks in params.yaml[/]")
        return
    failed = [r for r in results if not r.passed]
    for result in failed:
        console.print(
            f"[red]✗[/] behaviour: {result.check}: {result.value} (needs {result.threshold})"
        )
    mark = "[green]✓[/]" if not failed else "[yellow]![/]"
    console.print(
        f"{mark} behaviour of {best}: {len(results) - len(failed)} of {len(results)} check(s) passed"
        + (" (the `behaviour` gate fails)" if failed and params.gates.behaviour else "")
    )
