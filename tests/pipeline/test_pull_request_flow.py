"""The GitOps loop without GitHub: a real git repo with main and PR branches, running the commands
the pull-request workflow runs, and checking the report and the quality gates."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.conftest import ROOT, Project, reference_params
from tests.workflows.steps import commands, run_steps

pytestmark = pytest.mark.slow

PR_WORKFLOW = ROOT / ".github" / "workflows" / "pull-request.yml"


def pr_make_targets() -> list[str]:
    """The `make` targets of the PR workflow's train-and-report job, in workflow order."""
    lines = [
        line for script in run_steps(PR_WORKFLOW, "train-and-report") for line in commands(script)
    ]
    return [line.split()[1] for line in lines if line.startswith("make ")]


def test_pr_job_is_the_commands_this_test_runs() -> None:
    assert pr_make_targets() == ["data", "repro", "report", "gates"]


def push_with_results(project: Project, message: str) -> str:
    """What a developer does before pushing: run the pipeline, commit the change with the
    dvc.lock and reports/ it produced. Returns what the run printed."""
    result = project.make("repro")
    project.commit(message)
    return result.stdout + result.stderr


def run_pr_job(project: Project) -> dict[str, int]:
    """Run the PR job's `make` steps in order, as the workflow does; exit codes by target."""
    codes = {}
    for target in pr_make_targets():
        result = project.make(target, check=target not in {"gates"})
        codes[target] = result.returncode
    return codes


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Project:
    from tests.conftest import init_project

    project = init_project(tmp_path_factory.mktemp("gitops") / "project", reference_params())
    project.make("repro")
    project.commit("main: first model")
    return project


def test_pr_that_changes_params_reports_deltas_and_passes(repo: Project) -> None:
    repo.run("git", "checkout", "-q", "-b", "tune-logreg")
    params = repo.params
    params["models"]["logistic_regression"]["grid"]["C"] = [0.5, 2.0]
    repo.write_params(params)
    printed = push_with_results(repo, "PR: tune logistic regression")
    assert "dvc.lock and reports/ differ from the last commit's (param" in printed
    # CI starts from the commit alone (no DVC remote here): every stage runs again.
    shutil.rmtree(repo.root / "outputs")
    shutil.rmtree(repo.root / ".dvc" / "cache" / "runs")

    codes = run_pr_job(repo)
    report = (repo.root / "report.md").read_text()
    main_metrics = json.loads(repo.run("git", "show", "main:reports/metrics.json").stdout)
    branch_metrics = json.loads(repo.read("reports/metrics.json"))

    assert "| `models.logistic_regression.grid.C` | [0.1, 1.0] | [0.5, 2.0] |" in report
    for metric in ("f1", "roc_auc"):
        before, after = main_metrics["test"][metric], branch_metrics["test"][metric]
        assert f"| {metric} | {before:.4f} | {after:.4f} |" in report
        assert f"{after - before:+.4f} |" in report
    assert "No change" not in report
    assert "### Data" in report and "✅ no problems found" in report
    gates = json.loads(repo.read("reports/gates.json"))
    assert gates["passed"] is True
    assert "✅ **All quality gates passed**" in report
    assert "| committed results |" in report
    assert codes["gates"] == 0
    # Retrained from scratch, every output is the one the developer's run committed.
    assert re.search(
        r"✅ All \d+ outputs \(split, models, metrics, plots\) are byte for byte", report
    )


def test_pr_pushed_without_its_results_fails_until_they_are_committed(repo: Project) -> None:
    """Merged without them, main's committed metrics would stay the old model's: the baseline the
    next pull request is compared with."""
    repo.run("git", "checkout", "-q", "-f", "main")
    repo.run("dvc", "checkout", "-q", "-f")
    repo.run("git", "checkout", "-q", "-b", "params-only")
    params = repo.params
    params["models"]["decision_tree"]["grid"]["max_depth"] = [2, 5]
    repo.write_params(params)
    repo.commit("PR: shallower trees (params.yaml only)")
    # Locally, before any `make repro`: the results on disk predate the edit.
    early = repo.mlops("gates", "--base", "main", check=False)
    assert early.returncode == 1
    assert (
        "✗ committed results: stale: param models.decision_tree changed since the pipeline last"
        " ran (train@decision_tree): run `make repro`" in " ".join(early.stderr.split())
    )

    codes = run_pr_job(repo)
    gate_output = repo.make("gates", check=False)

    assert codes["gates"] != 0
    assert (
        "✗ committed results: stale: param models.decision_tree.grid.max_depth changed"
        " (train@decision_tree)" in gate_output.stderr
    )
    assert "run `make repro` and commit them" in (repo.root / "report.md").read_text()

    repo.commit(
        "PR: the results of shallower trees"
    )  # what CI's run just wrote, as `make repro` would
    assert repo.make("gates", check=False).returncode == 0


def test_pr_that_degrades_the_model_fails_the_gate(repo: Project) -> None:
    repo.run("git", "checkout", "-q", "main")
    repo.run("dvc", "checkout", "-q")
    repo.run("git", "checkout", "-q", "-b", "fewer-features")
    params = repo.params
    params["data"]["numeric_features"] = ["Crew Size"]
    params["data"]["categorical_features"] = ["Site Region"]
    params["behaviour"] = {}  # its checks name the features this change drops
    repo.write_params(params)

    codes = run_pr_job(repo)
    report = (repo.root / "report.md").read_text()
    gate_output = repo.make("gates", check=False)

    assert codes["gates"] != 0
    assert "quality gate(s) failed" in gate_output.stderr
    # 1: a gate said no; 2 would mean a mistake in params.yaml or the command line
    assert repo.mlops("gates", "--base", "main", check=False).returncode == 1
    assert "✗ f1 (test)" in gate_output.stderr
    assert "❌ fail" in report
    assert "| f1 vs main | drop ≤ 0.02 |" in report
    assert "| `data.numeric_features` |" in report
    gates = {g["gate"]: g for g in json.loads(repo.read("reports/gates.json"))["gates"]}
    assert gates["f1 vs main"]["passed"] is False


def test_pr_with_shifted_data_shows_how_the_training_data_moved(repo: Project) -> None:
    from construction_delays.sample_data import generate

    repo.run("git", "checkout", "-q", "-f", "main")  # drop the previous test's uncommitted PR
    repo.run("dvc", "checkout", "-q", "-f")
    repo.run("git", "checkout", "-q", "-b", "new-season")
    params = repo.params
    frame = generate(params["data"]["sample"]["rows"], seed=params["data"]["sample"]["seed"])
    frame["Weather Delay Days"] = frame["Weather Delay Days"] + 4  # a wet season
    frame.to_csv(repo.root / params["data"]["path"], index=False)
    repo.run("dvc", "add", "-q", "data")

    run_pr_job(repo)
    report = (repo.root / "report.md").read_text()
    assert "**Training data vs `main`'s**" in report
    rows = [line for line in report.splitlines() if line.startswith("| `")]
    moved = {
        line.split("`")[1]: line for line in rows if "| drift |" in line or "| shifting" in line
    }
    assert "Weather Delay Days" in moved and "| drift |" in moved["Weather Delay Days"]
    assert "Crew Size" not in moved  # untouched columns do not move


def test_pr_that_adopts_a_dataset_with_another_target_is_not_gated_against_main(
    repo: Project, tmp_path
) -> None:
    from tests.pipeline.test_adopt_data import wine_export

    repo.run("git", "checkout", "-q", "-f", "main")
    repo.run("dvc", "checkout", "-q", "-f")
    repo.run("git", "checkout", "-q", "-b", "adopt-wine")
    repo.mlops("data", "adopt", str(wine_export(tmp_path / "wine.csv")), "--target", "cultivar")
    push_with_results(repo, "PR: adopt the wine data")

    codes = run_pr_job(repo)
    report = (repo.root / "report.md").read_text()
    gates = [g["gate"] for g in json.loads(repo.read("reports/gates.json"))["gates"]]

    # main's model predicts Schedule Adherence: its f1 says nothing about a model of cultivars.
    assert not [gate for gate in gates if "vs main" in gate]
    assert (
        "`main` predicts 'Schedule Adherence' (classification) and this run 'cultivar'"
        " (classification): different problems, so no regression gate compares them" in report
    )
    assert codes["gates"] == 0  # the data gates and the validation still ran, and pass
    assert {"data rows", "data validation"} <= set(gates)
    assert "| `data.target` | Schedule Adherence | cultivar |" in report


def test_an_unknown_base_is_an_error_not_a_first_model(repo: Project) -> None:
    for command in ("gates", "report"):
        result = repo.mlops(command, "--base", "mian", check=False)
        output = " ".join((result.stdout + result.stderr).split())
        assert result.returncode == 2, output
        assert "--base mian: not a commit in this repository" in output


def test_back_on_main_the_run_shown_is_mains_not_a_branchs(repo: Project) -> None:
    """A branch that changes only a model which is not the best keeps the best model's bytes;
    back on main, the MLflow run `mlops run` names must still be one with main's numbers."""
    repo.run("git", "checkout", "-q", "-f", "main")
    repo.run("dvc", "checkout", "-q", "-f")
    best = json.loads(repo.read("reports/metrics.json"))["best_model"]
    other = next(name for name in repo.params["models"] if name != best)
    repo.run("git", "checkout", "-q", "-b", "drop-a-model")
    params = repo.params
    params["models"][other]["enabled"] = False
    repo.write_params(params)
    repo.mlops("run", "--no-register")
    assert json.loads(repo.read("reports/metrics.json"))["best_model"] == best
    branch_run = json.loads(repo.read("reports/mlflow_run.json"))["run_id"]

    repo.run("git", "checkout", "-q", "-f", "main")
    repo.run("dvc", "checkout", "-q", "-f")
    result = repo.mlops("run", "--no-register")

    assert "Running stage 'log_run'" in result.stdout + result.stderr
    main_run = json.loads(repo.read("reports/mlflow_run.json"))["run_id"]
    assert main_run != branch_run
