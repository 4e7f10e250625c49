"""What a person sees at the end of a run: the models table, the best marked, and where things are."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from construction_delays.console import console
from construction_delays.files import read_json

if TYPE_CHECKING:
    from construction_delays.adopt import AdoptionPlan


def confusion_classes(metrics_path: Path) -> set[str]:
    """The classes of the best model's confusion matrix (plot data written beside the metrics)."""
    path = metrics_path.parent / "plots" / "confusion_matrix.json"
    rows = read_json(path) if path.is_file() else []
    return {str(row.get("actual")) for row in rows if isinstance(row, dict)}


def print_summary(metrics_path: Path, run_info_path: Path) -> None:
    if not metrics_path.is_file():
        console.print(f"no {metrics_path} yet: run `mlops run` first")
        return
    metrics = read_json(metrics_path)
    best, selection = metrics["best_model"], metrics["selection_metric"]
    names = list(next(iter(metrics["models"].values()))["test"])
    table = Table(
        title=f"Models on the test set ({metrics['test_rows']} rows); best by CV {selection}"
    )
    table.add_column("model", no_wrap=True)
    table.add_column(f"CV {selection}", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for model, scores in metrics["models"].items():
        marker = " ★" if model == best else ""
        style = "bold green" if model == best else None
        table.add_row(
            f"{model}{marker}",
            f"{scores['cv'][selection]:.4f}",
            *(f"{scores['test'].get(n, float('nan')):.4f}" for n in names),
            style=style,
        )
    console.print(table)
    if "f1" in names and (classes := len(confusion_classes(metrics_path))) > 2:
        console.print(f"precision, recall, f1: macro averages over the {classes} classes")
    console.print("plots:   reports/figures/*.png (data for `dvc plots show`: reports/plots/)")
    console.print(f"model:   outputs/models/{best}/model.skops")
    behaviour_path = metrics_path.with_name("behaviour.json")
    if behaviour_path.is_file() and (checks := read_json(behaviour_path).get("checks")):
        failed = [c["check"] for c in checks if not c["passed"]]
        verdict = (
            f"[green]{len(checks)} of {len(checks)} checks passed[/]"
            if not failed
            else f"[red]{len(failed)} of {len(checks)} checks failed[/]: {'; '.join(failed)}"
        )
        console.print(f"behaviour: {verdict} ({behaviour_path})")
    if run_info_path.is_file():
        from construction_delays.tracking import server_run_url

        info = read_json(run_info_path)
        if link := server_run_url(info):  # a server has its own UI: link the run there
            console.print(f"MLflow:  run {info['run_id']} at {link}", soft_wrap=True)
        else:
            console.print(
                f"MLflow:  run {info['run_id']} in {info['tracking_uri']} (`make ui` to browse)"
            )


def print_adoption(plan: AdoptionPlan) -> None:
    """What `mlops data adopt` read from the file and what it will write to params.yaml."""
    from rich.markup import escape

    table = Table(
        title=f"{escape(str(plan.source))}: {plan.rows} rows, {len(plan.columns) + 1} columns"
    )
    for name, justify in (
        ("column", "left"),
        ("role", "left"),
        ("dtype", "left"),
        ("missing", "right"),
        ("distinct", "right"),
        ("note", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    styles = {"numeric": "green", "categorical": "cyan", "excluded": "dim", "group": "magenta"}
    for column in plan.columns:
        table.add_row(
            escape(column.name),
            column.role,
            column.dtype,
            f"{column.missing_share:.1%}",
            str(column.distinct),
            escape(column.note),
            style=styles[column.role],
        )
    console.print(table)
    console.print(f"target:  {escape(plan.target)} -> {plan.task} ({plan.task_reason})")
    if plan.classes:
        shares = ", ".join(f"{escape(label)} {count}" for label, count in plan.classes.items())
        console.print(f"classes: {shares}")
    if plan.positive_class is not None:
        console.print(
            f"positive class: {escape(str(plan.positive_class))} (--positive-class to choose another)"
        )
    for change in plan.changes:
        console.print(f"params:  {escape(change)}")
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
