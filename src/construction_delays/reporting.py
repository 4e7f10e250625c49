"""What a person sees at the end of a run: the models table, the best marked, and where things are."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from construction_delays.console import console
from construction_delays.files import read_json


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
    console.print("plots:   reports/figures/*.png (data for `dvc plots show`: reports/plots/)")
    console.print(f"model:   outputs/models/{best}/model.skops")
    if run_info_path.is_file():
        info = read_json(run_info_path)
        console.print(
            f"MLflow:  run {info['run_id']} in {info['tracking_uri']} (`make ui` to browse)"
        )
