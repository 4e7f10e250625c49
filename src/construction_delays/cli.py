"""`mlops`: the project's command line. Make targets and CI workflows call these commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from construction_delays.config import load_params
from construction_delays.console import console
from construction_delays.errors import ProjectError, reported

app = typer.Typer(
    help="GitOps MLOps project: data, pipeline, tracking and registry.", no_args_is_help=True
)
data_app = typer.Typer(help="Materialise or generate the dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")

ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read")]
RUN_INFO = Path("reports/mlflow_run.json")
METRICS = Path("reports/metrics.json")


class CommandError(ProjectError):
    pass


class GateFailedError(ProjectError):
    pass


def tool_env() -> dict[str, str]:
    """Environment for DVC and stage subprocesses: this interpreter's bin dir first, no telemetry."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DVC_NO_ANALYTICS", "1")
    return env


def dvc(*args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["dvc", *args], env=tool_env(), text=True, capture_output=capture, check=False
    )
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip() if capture else ""
        raise CommandError(
            f"`dvc {' '.join(args)}` failed (exit {result.returncode}) {detail}".strip()
        )
    return result


@data_app.command("generate")
@reported
def data_generate(
    out: Annotated[Path, typer.Option(help="CSV or Parquet file to write")],
    rows: Annotated[int, typer.Option(min=1)] = 5000,
    seed: int = 42,
) -> None:
    """Write the deterministic synthetic construction-activity dataset."""
    from construction_delays.sample_data import write_sample

    write_sample(out, rows=rows, seed=seed)
    console.print(f"wrote {rows} rows to {out}")


@data_app.command("pull")
@reported
def data_pull(params_file: ParamsOption = Path("params.yaml")) -> None:
    """Fetch data.dvc's data from the DVC remote, or regenerate the sample and check its hash."""
    from construction_delays.datasets import materialise

    console.print(materialise(load_params(params_file), Path.cwd(), dvc))


@data_app.command("push")
@reported
def data_push() -> None:
    """Push data and pipeline outputs to the DVC remote; a no-op (with a note) when none is set."""
    if not dvc("remote", "list", capture=True).stdout.strip():
        console.print("no DVC remote configured: nothing pushed (`dvc remote add -d <name> <url>`)")
        return
    dvc("push")


@app.command()
@reported
def check(params_file: ParamsOption = Path("params.yaml")) -> None:
    """Validate params.yaml, every enabled model and its grid, and the data, without training."""
    from construction_delays.data import read_table
    from construction_delays.models import build_estimator
    from construction_delays.validation import DataValidationError, validate_frame

    params = load_params(params_file)
    for name, spec in params.enabled_models.items():
        build_estimator(name, spec, params.data.task)
    console.print(
        f"[green]✓[/] {params_file}: valid, {len(params.enabled_models)} model(s) enabled"
    )
    path = Path(params.data.path)
    report = validate_frame(read_table(path), params.data, path)
    if not report.valid:
        raise DataValidationError(report)
    console.print(f"[green]✓[/] {path}: {report.rows} rows valid")


@app.command()
@reported
def run(
    params_file: ParamsOption = Path("params.yaml"),
    register_model: Annotated[
        bool, typer.Option("--register/--no-register", help="register the best model")
    ] = True,
) -> None:
    """Materialise the data, reproduce the DVC pipeline and register the best model as `challenger`."""
    from construction_delays.datasets import materialise

    params = load_params(params_file)
    console.print(materialise(params, Path.cwd(), dvc))
    result = dvc("repro", check=False)
    if result.returncode != 0:
        # DVC deletes a stage's outputs before running it; put back what dvc.lock last recorded so
        # a failed run never costs the last good model.
        dvc("checkout", "--quiet", check=False)
        raise CommandError(
            "the pipeline failed (see the stage output above); the last good outputs are kept"
        )
    if register_model:
        register(params_file)
    summary()


@app.command()
@reported
def register(params_file: ParamsOption = Path("params.yaml")) -> None:
    """Register the last pipeline run's best model as a new version with alias `challenger`."""
    from construction_delays.registry import register_challenger

    params = load_params(params_file)
    outcome = register_challenger(params, Path.cwd(), RUN_INFO)
    verb = "registered" if outcome["created"] else "already registered"
    console.print(
        f"[green]✓[/] {verb}: {outcome['name']} version {outcome['version']} @{outcome['alias']}"
    )


@app.command()
@reported
def report(
    base: Annotated[str, typer.Option(help="git ref to compare against")] = "main",
    out: Annotated[Path, typer.Option(help="Markdown file to write")] = Path("report.md"),
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """Write the PR report (metrics/params/data vs BASE, gates, plots) and reports/gates.json."""
    from construction_delays.files import write_json
    from construction_delays.report import GATES_FILE, build_report, gates_payload

    markdown, gates = build_report(Path.cwd(), load_params(params_file), base)
    out.write_text(markdown, encoding="utf-8")
    write_json(Path(GATES_FILE), gates_payload(gates))
    failed = sum(not g.passed for g in gates)
    console.print(f"report written to {out.resolve()} ({failed} gate(s) failed)")


@app.command()
@reported
def gates(
    base: Annotated[str, typer.Option(help="git ref to compare against")] = "main",
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """Check the quality gates of params.yaml; exit 1 naming each failed gate."""
    from construction_delays.gates import all_passed
    from construction_delays.report import build_report

    _, results = build_report(Path.cwd(), load_params(params_file), base)
    for result in results:
        mark = "[green]✓[/]" if result.passed else "[red]✗[/]"
        console.print(f"{mark} {result.gate}: {result.value} (needs {result.threshold})")
    if not all_passed(results):
        raise GateFailedError(
            f"{sum(not r.passed for r in results)} quality gate(s) failed (params.yaml gates:)"
        )


@app.command()
@reported
def promote(params_file: ParamsOption = Path("params.yaml")) -> None:
    """Promote @challenger to @champion if it passes the gates and is not worse than the champion."""
    from construction_delays.files import write_json
    from construction_delays.registry import promote_challenger

    outcome = promote_challenger(load_params(params_file), Path.cwd())
    write_json(Path("reports/promotion.json"), outcome)
    if outcome["promoted"]:
        console.print(
            f"[green]✓[/] {outcome['name']} v{outcome['champion']} is now @champion ({outcome['reason']})"
        )
    else:
        console.print(
            f"{outcome['name']} v{outcome['challenger']} stays @challenger: {outcome['reason']}"
        )


@app.command()
@reported
def param(
    key: Annotated[str, typer.Argument(help="dotted key, e.g. report.publish_images")],
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """Print one validated value of params.yaml (lower-case JSON), for workflows and scripts."""
    import json

    value: object = load_params(params_file).model_dump(mode="json")
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise CommandError(f"{params_file}: no key {key!r}")
        value = value[part]
    print(value if isinstance(value, str) else json.dumps(value))


@app.command()
def summary() -> None:
    """Print the models table of the last evaluation and where the outputs are."""
    from construction_delays.reporting import print_summary

    print_summary(METRICS, RUN_INFO)


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 5000,
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
) -> None:
    """Open the MLflow UI on the project's tracking store."""
    from construction_delays.tracking import LOCAL_ARTIFACTS, redact, tracking_uri

    uri = tracking_uri(Path.cwd())
    console.print(f"MLflow UI for {redact(uri)} on http://{host}:{port}")
    command = ["mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    if uri.startswith("sqlite:"):
        command += ["--default-artifact-root", (Path.cwd() / LOCAL_ARTIFACTS).resolve().as_uri()]
    os.execvpe(command[0], command, tool_env())


if __name__ == "__main__":
    app()
