"""`mlops`: the project's command line. Make targets and CI workflows call these commands."""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from construction_delays.config import Params, load_params
from construction_delays.console import console
from construction_delays.errors import EXIT_CHECK_FAILED, ProjectError, reported

app = typer.Typer(
    help="GitOps MLOps project: data, pipeline, tracking and registry.", no_args_is_help=True
)
data_app = typer.Typer(help="Materialise or generate the dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")

ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read")]
RUN_INFO = Path("reports/mlflow_run.json")
METRICS = Path("reports/metrics.json")


class Task(StrEnum):
    classification = "classification"
    regression = "regression"


class CommandError(ProjectError):
    pass


class GateFailedError(ProjectError):
    # Exit 1, not 2: a script can tell "a gate failed" from "params.yaml is wrong".
    exit_code = EXIT_CHECK_FAILED


def dvc(*args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess[str]:
    """``dvc <args>``, run in this process (no second interpreter start-up); see dvc_in_process."""
    from construction_delays import dvc_in_process

    try:
        return dvc_in_process.dvc(*args, check=check, capture=capture)
    except ProjectError as error:
        raise CommandError(str(error)) from None


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


@data_app.command("adopt")
@reported
def data_adopt(
    source: Annotated[Path, typer.Argument(envvar="ADOPT_FILE", help="your CSV or Parquet file")],
    target: Annotated[
        str, typer.Option("--target", "-t", envvar="ADOPT_TARGET", help="the column to predict")
    ],
    task: Annotated[
        Task | None,
        typer.Option(help="default: inferred from the target (text or few whole numbers: classes)"),
    ] = None,
    positive_class: Annotated[
        str | None,
        typer.Option(
            help="binary classification: the class that counts as positive (default: the rarer)"
        ),
    ] = None,
    numeric: Annotated[list[str], typer.Option(help="force a column to be a numeric feature")] = [],  # noqa: B006
    categorical: Annotated[
        list[str], typer.Option(help="force a column to be a categorical feature")
    ] = [],  # noqa: B006
    drop: Annotated[
        list[str], typer.Option(help="leave a column out (e.g. one known after the outcome)")
    ] = [],  # noqa: B006
    max_categories: Annotated[
        int, typer.Option(min=2, help="text columns with more distinct values are left out")
    ] = 50,
    group: Annotated[
        str | None,
        typer.Option(
            envvar="ADOPT_GROUP",
            help="column tying rows together (e.g. a project id): each group whole in train or"
            " test and in one CV fold",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="show what would change; change nothing")] = False,
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """Use your own table: infer the task and features, write them into params.yaml (comments kept),
    put the file under data/ and `dvc add` it. Validated before anything changes."""
    from construction_delays.adopt import apply_adoption, plan_adoption
    from construction_delays.reporting import print_adoption

    old = load_params(params_file)
    plan = plan_adoption(
        Path.cwd(),
        params_file,
        source,
        target,
        task=task.value if task else None,
        positive_class=positive_class,
        numeric=numeric,
        categorical=categorical,
        drop=drop,
        max_categories=max_categories,
        group=group,
    )
    print_adoption(plan)
    if dry_run:
        console.print("dry run: nothing changed")
        return
    done, next_step = apply_adoption(plan, Path.cwd(), params_file, old, dvc)
    for line in done:
        console.print(f"[green]✓[/] {line}")
    console.print(f"next: {next_step}")


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
    from construction_delays.data import read_table, text_columns
    from construction_delays.models import build_estimator
    from construction_delays.validation import DataValidationError, validate_frame

    params = load_params(params_file)
    for name, spec in params.enabled_models.items():
        build_estimator(name, spec, params.data.task)
    console.print(
        f"[green]✓[/] {params_file}: valid, {len(params.enabled_models)} model(s) enabled"
    )
    path = Path(params.data.path)
    report = validate_frame(read_table(path, text_columns(params.data)), params.data, path)
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
    isolated: Annotated[
        bool,
        typer.Option(
            "--isolated",
            help="run every stage in its own process, exactly as `dvc repro` (slower start-up)",
        ),
    ] = False,
) -> None:
    """Materialise the data, reproduce the DVC pipeline and register the best model as `challenger`."""
    from construction_delays.batch import collector_paused

    with collector_paused():  # a bounded batch job: see construction_delays.batch
        run_pipeline(params_file, register_model, isolated)


def run_pipeline(params_file: Path, register_model: bool, isolated: bool) -> None:
    from construction_delays.datasets import materialise, pull_missing_outputs
    from construction_delays.last_good import LastGoodState

    params = load_params(params_file)
    console.print(materialise(params, Path.cwd(), dvc))
    if pulled := pull_missing_outputs(Path.cwd(), dvc):
        console.print(pulled)
    interrupt_on_sigterm()
    last_good = LastGoodState(Path.cwd())
    last_good.save()
    returncode = 1  # until the repro says otherwise (an interrupt skips the assignment)
    try:
        returncode = reproduce(params, isolated)
    finally:
        if returncode != 0:
            # DVC locks each stage as it succeeds and deletes a stage's outputs before running it:
            # put back everything the last good run recorded, so a failed run never leaves new
            # models next to old metrics, nor costs the last good model.
            # dvc.yaml's outputs only: the data is the user's input, never rolled back.
            last_good.restore(lambda: dvc("checkout", "--quiet", "dvc.yaml", check=False))
        last_good.discard()
    if returncode != 0:
        raise CommandError(
            "the pipeline failed (see the stage output above); the last good outputs and"
            " dvc.lock are restored"
        )
    if register_model:
        relog_for_this_store(Path.cwd())
        register(params_file)
    summary()
    if params.gates.committed_results:
        hint_uncommitted_results(Path.cwd())


def reproduce(params: Params, isolated: bool) -> int:
    """`dvc repro`; unless ``isolated``, with the stages in this process. Returns the exit code."""
    from construction_delays import dvc_in_process

    if isolated:
        returncode = dvc("repro", check=False).returncode
    else:
        from construction_delays.warmup import Warmup

        # Once the first grid search runs, the main thread only waits on its workers: prepare
        # what evaluate and log_run need in the meantime.
        enabled = [spec.estimator for spec in params.models.values() if spec.enabled]
        warmup = Warmup(Path.cwd(), enabled)

        def before_stage(argv: list[str]) -> None:
            warmup.before_stage(argv)
            if warmup.started and Path(argv[0]).stem != "train":  # the train stages are done
                from construction_delays.training import release_cv_workers

                release_cv_workers()

        try:
            returncode = dvc_in_process.repro(before_stage=before_stage)
        finally:
            warmup.join()
    return returncode


def check_port_free(host: str, port: int) -> None:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise CommandError(
                f"cannot listen on {host}:{port} ({error.strerror}); choose another --port"
                " (or PORT) or stop what uses it"
            ) from None


def interrupt_on_sigterm() -> None:
    """CI cancels a job, and `kill` stops a process, with SIGTERM, which by default ends Python on
    the spot: a stage half-way through leaves its output folder empty. Handled as Ctrl-C instead,
    so DVC stops the stage and the last good outputs are put back."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def relog_for_this_store(root: Path) -> None:
    """The store is not a DVC input, so after MLFLOW_TRACKING_URI changes `log_run` stays cached
    and its run lives in the other store: log it again (nothing retrains; seconds)."""
    from construction_delays.files import read_json
    from construction_delays.tracking import redact, tracking_uri

    if not (root / RUN_INFO).is_file():
        return
    logged_to = read_json(root / RUN_INFO).get("tracking_uri")
    current = redact(tracking_uri(root))
    if logged_to != current:
        console.print(f"the last run was logged to {logged_to}: logging it to {current} too")
        dvc("repro", "--force", "--single-item", "log_run")


def hint_uncommitted_results(root: Path) -> None:
    """After a run, say when dvc.lock and reports/ differ from the last commit's: the pull
    request's `committed results` gate will ask for them. Best effort: never fails the run."""
    from construction_delays.lockcheck import stale_results

    if not (root / ".git").exists():
        return
    try:
        stale = stale_results(root)
    except (OSError, ValueError):  # yaml's errors are ValueErrors too
        return
    if stale:
        more = f" and {len(stale) - 1} more" if len(stale) > 1 else ""
        console.print(
            f"[yellow]![/] dvc.lock and reports/ differ from the last commit's ({stale[0]}{more}):"
            " commit them with your change; the pull request's `committed results` gate checks them"
        )


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

    markdown, gates, _ = build_report(Path.cwd(), load_params(params_file), base)
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
    from rich.markup import escape

    from construction_delays.gates import all_passed
    from construction_delays.report import build_report

    _, results, notes = build_report(Path.cwd(), load_params(params_file), base)
    for note in notes:  # a "vs main" gate left out says why, rather than silently missing
        console.print(f"[dim]note: {escape(note)}[/]", soft_wrap=True)
    for result in results:
        mark = "[green]✓[/]" if result.passed else "[red]✗[/]"
        console.print(f"{mark} {result.gate}: {result.value} (needs {result.threshold})")
    if not all_passed(results):
        raise GateFailedError(
            f"{sum(not r.passed for r in results)} quality gate(s) failed (params.yaml gates:)"
        )


@app.command()
@reported
def promote(
    params_file: ParamsOption = Path("params.yaml"),
    test: Annotated[Path, typer.Option(help="held-out split both models are scored on")] = Path(
        "outputs/split/test.parquet"
    ),
    validation: Annotated[Path, typer.Option(help="data validation report")] = Path(
        "reports/validation.json"
    ),
    card: Annotated[Path, typer.Option(help="model card to write")] = Path("reports/model_card.md"),
    out: Annotated[Path, typer.Option(help="outcome JSON to write")] = Path(
        "reports/promotion.json"
    ),
) -> None:
    """Promote @challenger to @champion if it passes the gates and beats the re-scored champion.

    The champion is re-scored on the same test split; a challenger that fails stays @challenger
    (exit 0, with the reason in the output and reports/promotion.json)."""
    from construction_delays.files import write_json
    from construction_delays.registry import PromotionInputs, promote_challenger

    inputs = PromotionInputs(test=test, validation=validation, card=card)
    outcome = promote_challenger(load_params(params_file), Path.cwd(), inputs)
    write_json(out, outcome)
    github_output(
        promoted=str(outcome["promoted"]).lower(),
        champion=outcome["champion"] or "",
        challenger=outcome["challenger"],
    )
    if outcome["promoted"]:
        console.print(
            f"[green]✓[/] {outcome['name']} v{outcome['champion']} is now @champion ({outcome['reason']})"
        )
    else:
        console.print(
            f"{outcome['name']} v{outcome['challenger']} stays @challenger: {outcome['reason']}",
            soft_wrap=True,
        )


@app.command("model-card")
@reported
def model_card(
    version: Annotated[
        int, typer.Option(envvar="MODEL_VERSION", min=1, help="registry version to release")
    ],
    out: Annotated[Path, typer.Option(help="where the card is (and goes)")] = Path(
        "reports/model_card.md"
    ),
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """Make --out the model card of VERSION, for its release: kept when it already is (the card
    `mlops promote` wrote when it evaluated VERSION), else the one logged with VERSION in the
    registry; GITHUB_OUTPUT found=true|false."""
    from construction_delays.modelcard import card_title
    from construction_delays.registry import fetch_version_card

    params = load_params(params_file)
    title = card_title(params.mlflow.registered_model, version)
    first = out.read_text(encoding="utf-8").partition("\n")[0] if out.is_file() else None
    if first == title:
        source = "kept (it is that version's: `mlops promote` wrote it)"
    elif fetch_version_card(params, Path.cwd(), version, out):
        source = "logged with the version in the registry"
    else:
        github_output(found="false")
        console.print(
            f"[yellow]![/] no model card of v{version} here: {out} is"
            f" {repr(first) if first else 'missing'}, and the registry does not hold that"
            " version's card (without a tracking server each CI job has its own store)",
            soft_wrap=True,
        )
        return
    github_output(found="true")
    console.print(f"[green]✓[/] {out}: the model card of v{version}, {source}")


def github_output(**values: object) -> None:
    """Append ``key=value`` lines to $GITHUB_OUTPUT when a GitHub Actions step runs this."""
    target = os.environ.get("GITHUB_OUTPUT")
    if target:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.writelines(f"{key}={value}\n" for key, value in values.items())


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
    if uri.startswith(("http://", "https://")):
        # A tracking server serves its own UI; `mlflow ui` only opens a database or folder store.
        console.print(f"MLFLOW_TRACKING_URI is a tracking server: its UI is at {redact(uri)}")
        return
    console.print(f"MLflow UI for {redact(uri)} on http://{host}:{port}")
    # One worker: MLflow's default of 4 processes each import MLflow (~20 s before the first
    # answer on 2 cores) and each prints the same warning; one person browsing needs one.
    command = ["mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    command += ["--workers", "1"]
    if uri.startswith("sqlite:"):
        command += ["--default-artifact-root", (Path.cwd() / LOCAL_ARTIFACTS).resolve().as_uri()]
    from construction_delays.dvc_in_process import tool_env

    env = tool_env()
    # MLflow's server imports starlette.middleware.wsgi, deprecated: a warning for MLflow's
    # maintainers, not for someone opening the UI. Appended, so a user's own filters still apply.
    env["PYTHONWARNINGS"] = ",".join(
        filter(None, (env.get("PYTHONWARNINGS"), "ignore:starlette.middleware.wsgi is deprecated"))
    )
    os.execvpe(command[0], command, env)


def known_champion(params: Params) -> int | None:
    """@champion's version when the registry holds the model (a tracking server, or the local
    store of this machine); None where it cannot be known (a CI job without a tracking server)."""
    from construction_delays.registry import champion_version, holds_model

    if not holds_model(params, Path.cwd()):
        return None
    return champion_version(params, Path.cwd())


def resolved_model_version(params: Params, model_version: int | None) -> int:
    """``model_version`` (warning when the registry cannot confirm it), else @champion's."""
    from construction_delays.registry import champion_version, verify_version

    version = model_version or champion_version(params, Path.cwd())
    if version is None:
        raise CommandError("no --model-version given and the registry has no @champion")
    if model_version is not None and not verify_version(params, Path.cwd(), model_version):
        console.print(
            f"[yellow]![/] {params.mlflow.registered_model} is not in this registry: version"
            f" {model_version} not checked"
        )
    return version


@app.command()
@reported
def deploy(
    env: Annotated[
        str, typer.Option("--env", envvar="DEPLOY_ENV", help="overlay: staging or production")
    ],
    model_version: Annotated[
        int | None,
        typer.Option(envvar="MODEL_VERSION", min=1, help="registry version (default: @champion)"),
    ] = None,
    image_tag: Annotated[
        str | None, typer.Option(envvar="IMAGE_TAG", help="image tag (default: unchanged)")
    ] = None,
    image_digest: Annotated[
        str | None,
        typer.Option(
            envvar="IMAGE_DIGEST", help="sha256:... the tag was pushed as (default: none, tag only)"
        ),
    ] = None,
    image_name: Annotated[
        str | None,
        typer.Option(envvar="IMAGE_NAME", help="image repository, e.g. ghcr.io/acme/app"),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            envvar="DEPLOY_FROM",
            help="deploy what this environment's overlay runs (model version and image), e.g."
            " staging; a model version or image given is what was approved: refuse unless it"
            " still runs that",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="only say what would change (GITHUB_OUTPUT changes, model-changed)"
        ),
    ] = False,
    commit: Annotated[bool, typer.Option("--commit/--no-commit", help="git commit it")] = False,
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """Point deploy/overlays/ENV at a model version (and image); optionally commit it."""
    from construction_delays.deployment import (
        SourceMovedError,
        follow,
        overlay_values,
        pending_changes,
    )
    from construction_delays.deployment import deploy as deploy_overlay

    params = load_params(params_file)
    if source is not None:
        # The values given are what was approved: deploy them only if `source` still runs them.
        given = {
            "model-version": str(model_version) if model_version else None,
            "image-tag": image_tag,
            "image-digest": image_digest,
            "image-name": image_name,
        }
        expect = {key: value for key, value in given.items() if value}
        try:
            followed = follow(Path.cwd(), source, expect, known_champion(params))
        except SourceMovedError as error:
            if not check:
                raise
            github_output(changes="false", model_changed="false")
            console.print(f"nothing to deploy to {env}: {error}", soft_wrap=True)
            return
        version = int(followed["model-version"])
        image_tag = followed["image-tag"] or None
        image_digest = followed["image-digest"] or None
        image_name = followed["image-name"] or None
    else:
        version = resolved_model_version(params, model_version)
    if check:
        values = overlay_values(
            params.mlflow.registered_model, version, image_tag, image_digest, image_name
        )
        changes = pending_changes(Path.cwd(), env, values)
        github_output(
            changes=str(bool(changes)).lower(),
            model_changed=str("model-version" in changes).lower(),
            model_version=version,
            image_tag=image_tag or "",
            image_digest=image_digest or "",
        )
        if not changes:
            console.print(f"{env} already runs v{version} with that image: nothing to deploy")
        for key, (now, then) in changes.items():
            console.print(f"{env}: {key} {now or '(empty)'} -> {then or '(empty)'} (not written)")
        return
    outcome = deploy_overlay(
        Path.cwd(),
        env,
        params.mlflow.registered_model,
        version,
        image_tag or None,
        commit,
        image_digest=image_digest or None,
        image_name=image_name or None,
    )
    state = f"committed {outcome['commit'][:12]}" if outcome["commit"] else "not committed"
    if not outcome["changed"]:
        state = "already deployed, nothing to change"
    console.print(f"[green]✓[/] {env}: {outcome['model_uri']} ({state})")


@app.command()
@reported
def rollback(
    to: Annotated[
        int | None,
        typer.Option(envvar="ROLLBACK_TO", min=1, help="version to return to (default: @previous)"),
    ] = None,
    commit: Annotated[bool, typer.Option("--commit/--no-commit", help="git commit it")] = True,
    push: Annotated[
        str | None,
        typer.Option(
            envvar="ROLLBACK_PUSH",
            help="push the commit to this branch of origin; if the push fails, the registry is"
            " put back too",
        ),
    ] = None,
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """Move @champion back to @previous (or --to N) and point the overlays at it, in one commit."""
    from construction_delays.deployment import rollback as roll_back

    outcome = roll_back(load_params(params_file), Path.cwd(), to, commit=commit, push_to=push)
    github_output(champion=outcome["champion"], commit=outcome.get("commit") or "")
    if not outcome["changed"] and not outcome["files"]:
        console.print(f"{outcome['name']} v{outcome['champion']} already is @champion and deployed")
        return
    commit_note = f", commit {outcome['commit'][:12]}" if outcome["commit"] else ""
    console.print(
        f"[green]✓[/] {outcome['name']}: @champion v{outcome['from']} -> v{outcome['champion']},"
        f" @previous v{outcome['previous']}; manifests: {', '.join(outcome['files']) or 'unchanged'}"
        f"{commit_note}"
    )


@app.command()
@reported
def smoke(
    url: Annotated[str, typer.Option(envvar="SMOKE_URL", help="base URL of the deployed server")],
    payload: Annotated[Path, typer.Option(help="JSON body for POST /predict")] = Path(
        "deploy/smoke/request.json"
    ),
    wait: Annotated[float, typer.Option(help="seconds to wait for /ready")] = 300.0,
    expect_version: Annotated[
        str | None,
        typer.Option(
            envvar="EXPECT_MODEL_VERSION",
            help="also wait until /metadata names this model version (the one just deployed)",
        ),
    ] = None,
) -> None:
    """Smoke-test a deployment: wait for GET /ready (and the expected model version), then POST
    /predict must answer 200 JSON."""
    import json

    from construction_delays.deployment import smoke_test

    outcome = smoke_test(
        url, json.loads(payload.read_text(encoding="utf-8")), wait, expect_version=expect_version
    )
    serving = f", serving version {expect_version}" if expect_version else ""
    console.print(
        f"[green]✓[/] {outcome['url']}: ready{serving}, /predict answered", soft_wrap=True
    )


# The Dockerfile's base-image build args, as `make` and the workflows pass them (empty: unset).
PythonImageOption = Annotated[
    str | None, typer.Option(envvar="PYTHON_IMAGE", help="build-arg PYTHON_IMAGE, if passed")
]
UvImageOption = Annotated[
    str | None, typer.Option(envvar="UV_IMAGE", help="build-arg UV_IMAGE, if passed")
]


@app.command("image-check")
@reported
def image_check(
    dockerfile: Annotated[Path, typer.Option(help="the Dockerfile to check")] = Path("Dockerfile"),
    python_image: PythonImageOption = None,
    uv_image: UvImageOption = None,
) -> None:
    """Fail unless every base image of the Dockerfile (after build-arg overrides) is pinned by a
    real digest: the placeholders it ships with name no image, so a build would fail late."""
    from construction_delays.deployment import base_images, check_base_images

    overrides = {"PYTHON_IMAGE": python_image or "", "UV_IMAGE": uv_image or ""}
    problems = check_base_images(dockerfile, overrides)
    if problems:
        raise CommandError(
            f"{dockerfile}: the base images are not ready to build:\n- " + "\n- ".join(problems)
        )
    for source, image in base_images(dockerfile.read_text(encoding="utf-8"), overrides):
        console.print(f"[green]✓[/] {source}: {image}", soft_wrap=True)


@app.command("image-tag")
@reported
def image_tag(
    rev: Annotated[
        str, typer.Option(envvar="IMAGE_REV", help="the commit whose image to name")
    ] = "HEAD",
    python_image: PythonImageOption = None,
    uv_image: UvImageOption = None,
) -> None:
    """Print the serving image's tag for REV, build-<hash of what the image is built from> (the
    Dockerfile, its context: src/, uv.lock, params.yaml... and the build args); GITHUB_OUTPUT tag=.
    Commits that change none of it get the same tag: `main.yml` reuses that image instead of
    building one more, and production is asked to approve only what really changed."""
    from construction_delays.deployment import image_tag as tag_of

    args = {"PYTHON_IMAGE": python_image or "", "UV_IMAGE": uv_image or ""}
    tag = tag_of(Path.cwd(), rev, args)
    github_output(tag=tag)
    print(tag)


@app.command("image-reuse")
@reported
def image_reuse(
    image_name: Annotated[
        str, typer.Option(envvar="IMAGE_NAME", help="image repository, e.g. ghcr.io/acme/app")
    ],
    image_tag: Annotated[
        str, typer.Option(envvar="IMAGE_TAG", help="the tag to look for (`mlops image-tag`)")
    ],
    tags: Annotated[
        str,
        typer.Option(envvar="IMAGE_TAGS", help="references to add to it, one per line (name:tag)"),
    ] = "",
) -> None:
    """If the registry already holds IMAGE_NAME:IMAGE_TAG (built from the same inputs), add
    IMAGE_TAGS to it instead of building again; GITHUB_OUTPUT digest=<sha256:...>, or empty:
    build it. Uses `docker buildx imagetools` with the caller's registry login."""
    from construction_delays.deployment import reuse_image

    digest, why = reuse_image(image_name, image_tag, tags.splitlines())
    github_output(digest=digest or "")
    console.print(f"[green]✓[/] {why}" if digest else f"- {why}: build it", soft_wrap=True)


ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        envvar="MODEL_URI",
        help="models:/<name>@<alias>, models:/<name>/<version> or a .skops file/dir"
        " [default: models:/<mlflow.registered_model>@champion]",
    ),
]


def model_label(meta: dict[str, Any]) -> str:
    """ "name v3" for a registry version; just the name for a model file (no version to show)."""
    return f"{meta['name']} v{meta['version']}" if meta.get("version") else str(meta["name"])


@app.command()
@reported
def serve(
    model: ModelOption = None,
    host: Annotated[
        str, typer.Option(help="interface to bind (0.0.0.0 in a container)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="TCP port")] = 8000,
    api_key_env: Annotated[
        str,
        typer.Option(
            help="env var holding the API key; when set, /predict and /metadata need X-API-Key"
        ),
    ] = "API_KEY",
    log_file: Annotated[
        Path, typer.Option(envvar="PREDICTION_LOG", help="JSONL log of every prediction request")
    ] = Path("reports/predictions.jsonl"),
    prediction_log: Annotated[bool, typer.Option(help="write the prediction log")] = True,
    max_records: Annotated[int, typer.Option(min=1, help="most records per request")] = 10_000,
    access_log: Annotated[bool, typer.Option(help="uvicorn access log")] = False,
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """Serve the model over REST: POST /predict, GET /health, /ready, /metadata, /metrics."""
    from construction_delays.scoring import load_scorer
    from construction_delays.serving import ServingConfig, run_server

    check_port_free(host, port)  # before the model loads (seconds), not after
    scorer = load_scorer(model, Path.cwd(), load_params(params_file))
    meta = scorer.metadata
    api_key = os.environ.get(api_key_env) or None
    console.print(
        f"serving {model_label(meta)} ({meta['source']}) on http://{host}:{port}"
        f" [fast path: {scorer.predictor.fast_path_note}]"
        f"{'; API key required' if api_key else ''}",
        soft_wrap=True,
    )
    config = ServingConfig(
        api_key=api_key, log_path=log_file if prediction_log else None, max_records=max_records
    )
    run_server(scorer, config, host=host, port=port, access_log=access_log)


@app.command()
@reported
def score(
    input_path: Annotated[
        Path, typer.Option("--input", envvar="SCORE_INPUT", help="CSV or Parquet file to score")
    ],
    output_path: Annotated[
        Path, typer.Option("--output", envvar="SCORE_OUTPUT", help="CSV or Parquet file to write")
    ],
    model: ModelOption = None,
    chunk_size: Annotated[
        int, typer.Option(min=1, help="rows read and predicted at a time")
    ] = 100_000,
    id_column: Annotated[
        str | None, typer.Option(help="input column copied to the output (default: row number)")
    ] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """Batch-score a file in chunks: predictions (+ class probabilities), written atomically."""
    from construction_delays.scoring import load_scorer, score_file

    scorer = load_scorer(model, Path.cwd(), load_params(params_file))
    interrupt_on_sigterm()  # the temporary output is removed, as on Ctrl-C
    outcome = score_file(
        scorer,
        input_path,
        output_path,
        chunk_size=chunk_size,
        id_column=id_column,
        progress=progress,
    )
    meta = scorer.metadata
    console.print(
        f"[green]✓[/] scored {outcome.rows} rows of {input_path} with {model_label(meta)}"
        f" -> {output_path} ({outcome.rows_per_second:,.0f} rows/s)"
    )


@app.command()
@reported
def monitor(
    input_path: Annotated[
        Path,
        typer.Option(
            "--input",
            envvar="MONITOR_INPUT",
            help="new data: a CSV/Parquet batch (labelled or not) or the server's prediction log (.jsonl)",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            envvar="MONITOR_MODEL",
            help="models:/<name>@<alias> (uses that version's own reference profile) or a .skops"
            " file; default: the local model the reference profile names",
        ),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(help="reference profile (default: reports/reference_profile.json)"),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="prediction log only: requests since 7d / 24h / 30m ago or a date"),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="directory for drift.json, drift_report.md and drift.png")
    ] = Path("monitoring"),
    fail: Annotated[
        bool, typer.Option(help="exit 1 when the verdict is drift (for schedules and CI)")
    ] = True,
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """Drift of new data against the training data: features, predictions, labels, metrics."""
    from rich.markup import escape
    from rich.table import Table

    from construction_delays import monitoring

    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out}: is a file; name a directory for the report")
    report = monitoring.check(
        Path.cwd(),
        load_params(params_file),
        input_path,
        model=model,
        reference=reference,
        since=since,
    )
    paths = monitoring.write_report(report, out)
    colours = {
        "ok": "green",
        "warning": "yellow",
        "drift": "red",
        "insufficient": "yellow",
        monitoring.NOT_JUDGED: "dim",
    }
    table = Table(title=f"{input_path} ({report.rows} rows) vs the training data")
    for column, justify in (("check", "left"), ("PSI", "right"), ("missing", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("status")
    table.add_column("change", overflow="fold")
    for item in report.checks:
        table.add_row(
            escape(item.name)
            if item.group == "feature"
            else f"[italic]{item.group}: {escape(item.name)}[/]",
            "" if item.psi is None else f"{item.psi:.3f}",
            f"{item.reference_missing:.0%} → {item.current_missing:.0%}",
            f"[{colours[item.status]}]{item.status}[/]",
            escape(item.change),  # column names and categories are data, not markup
        )
    for metric in report.metrics:
        table.add_row(
            f"[italic]metric: {metric.metric}[/]",
            "",
            "",
            f"[{colours[metric.status]}]{metric.status}[/]",
            f"{metric.reference:.4f} → {metric.current:.4f}",
        )
    if report.rows:  # with no rows every check would read "missing 100%": nothing to show
        console.print(table)
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/]", soft_wrap=True)
    colour = colours[report.verdict]
    console.print(
        f"[bold {colour}]{report.verdict}[/]: " + escape("; ".join(report.reasons or ["no drift"])),
        soft_wrap=True,
    )
    console.print(f"report: {paths['markdown']}, {paths['json']}, {paths['figure']}")
    if report.verdict == "drift" and fail:
        raise typer.Exit(1)


@app.command()
@reported
def alert(
    report_dir: Annotated[
        Path,
        typer.Option("--report", help="the directory `mlops monitor` wrote drift.json into"),
    ] = Path("monitoring"),
) -> None:
    """Keep the `model-drift` GitHub issue in step with the monitor's verdict: drift opens it (or
    comments on the open one), ok closes it. Needs GITHUB_TOKEN (issues: write) and
    GITHUB_REPOSITORY, which GitHub Actions sets; GITHUB_API_URL for GitHub Enterprise."""
    from construction_delays.alerting import GitHub, sync_drift_issue
    from construction_delays.files import read_json

    drift = report_dir / "drift.json"
    if not drift.is_file():
        console.print(f"no {drift}: the monitor judged nothing, so there is nothing to alert")
        return
    token, repository = os.environ.get("GITHUB_TOKEN"), os.environ.get("GITHUB_REPOSITORY")
    if not token or not repository:
        raise CommandError(
            "mlops alert writes to GitHub: set GITHUB_TOKEN (a token that may write issues) and"
            " GITHUB_REPOSITORY (owner/name); GitHub Actions sets the latter"
        )
    report = read_json(drift)
    verdict = report.get("verdict")
    if verdict not in ("ok", "warning", "drift", "insufficient"):
        raise CommandError(f"{drift}: verdict {verdict!r} is not one `mlops monitor` writes")
    markdown_path = report_dir / "drift_report.md"
    markdown = (
        markdown_path.read_text(encoding="utf-8")
        if markdown_path.is_file()
        else f"## Drift monitor: {verdict}"
    )
    run_id = os.environ.get("GITHUB_RUN_ID")
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
    run_url = f"{server}/{repository}/actions/runs/{run_id}" if run_id else None
    github = GitHub(os.environ.get("GITHUB_API_URL", "https://api.github.com"), repository, token)
    reasons = [str(reason) for reason in report.get("reasons") or []]
    outcome = sync_drift_issue(github, verdict, reasons, markdown, run_url)
    if outcome["action"] == "none":
        state = f"issue #{outcome['number']} stays open" if outcome["number"] else "no open issue"
        console.print(f"{verdict}: nothing to alert ({state})")
        return
    console.print(
        f"[green]✓[/] {verdict}: {outcome['action']} issue #{outcome['number']} {outcome['url']}",
        soft_wrap=True,
    )


_exit_code = 0


def _exit_without_teardown() -> None:
    """Registered by :func:`main` before any command runs, so it runs last of the atexit handlers:
    MLflow, joblib and DVC have flushed and cleaned up; what is left is the interpreter tearing down
    every module of pandas, scikit-learn and MLflow one by one (~1 s), which changes nothing on disk.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_code)


def main() -> None:
    """Console entry point (`mlops`): the typer app, exiting without the interpreter's teardown."""
    global _exit_code
    atexit.register(_exit_without_teardown)
    try:
        app()
    except SystemExit as exit_:
        code = exit_.code
        _exit_code = code if isinstance(code, int) else (0 if code is None else 1)
        raise
    except BaseException:  # the traceback is printed before atexit runs; keep Python's exit code
        _exit_code = 1
        raise


if __name__ == "__main__":
    main()
