"""Promotion, lineage, model card, revert of a merge, and rollback on a real project: git, DVC and
a local MLflow SQLite registry, driven by the `make` targets the main workflow runs.

One project, tests in order, like the history they stand for (each pipeline run costs a minute on
a small machine, so the story shares them):
  merge #7  -> v1, first champion
  merge #12 -> v2, promoted (v1 re-scored on the same test split), v1 becomes previous
  revert #12 -> DVC restores v1's model without retraining; main re-registers it as v1 (same model
              bytes, same data) and promotes it back
  a stump   -> v3, worse than the champion on the same split: stays challenger
  rollbacks -> to previous, to a given version, one commit each
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from construction_delays.modelcard import CARD_ARTIFACT_DIR, CARD_FILE_NAME
from construction_delays.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    ROLLED_BACK_TAG,
    capture_aliases,
    restore_aliases,
    set_aliases_atomically,
)

from tests.conftest import ROOT, SLUG, Project, reference_params
from tests.deployment.helpers import (
    MODEL,
    aliases,
    client,
    deploy_project,
    last_commit,
    make,
    mlops,
    overlay_value,
    versions,
)
from tests.workflows.steps import commands, run_steps

pytestmark = pytest.mark.slow

MAIN = ROOT / ".github" / "workflows" / "main.yml"
MAIN_JOBS = ("train-register", "promote", "deploy-staging")


def main_workflow_targets() -> list[str]:
    lines = [line for job in MAIN_JOBS for s in run_steps(MAIN, job) for line in commands(s)]
    return [line.split()[1] for line in lines if line.startswith("make ")]


def test_these_tests_run_what_the_main_workflow_runs() -> None:
    assert main_workflow_targets() == ["data", "repro", "push", "register", "promote", "deploy"]


def run_main(project: Project, state: dict[str, Any]) -> str:
    """The main workflow's steps on a fresh checkout (without the MLflow run record and receipt,
    which git ignores)."""
    for record in ("mlflow_run.json", "mlflow_receipt.json"):
        (project.root / "reports" / record).unlink(missing_ok=True)
    output = make(project, "repro").stdout
    make(project, "register")
    promoted = make(project, "promote")
    result = json.loads(project.read("reports/promotion.json"))
    if result["champion"]:
        make(project, "deploy", DEPLOY_ENV="staging", MODEL_VERSION=str(result["champion"]))
    state["promote_output"] = promoted.stdout + promoted.stderr
    return output


def discard_local_changes(project: Project) -> None:
    """CI's main runs commit only deploy overlays: what else they change stays on the runner."""
    project.run("git", "reset", "-q", "--hard")  # dvc autostages dvc.lock


def model_digest(project: Project) -> str:
    best = json.loads(project.read("reports/metrics.json"))["best_model"]
    return hashlib.md5(project.read(f"outputs/models/{best}/model.skops")).hexdigest()


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    return {}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, state: dict[str, Any]) -> Project:
    params = reference_params()
    params["gates"]["max_regression"] = {"f1": 0.05, "roc_auc": 0.05}
    project = deploy_project(tmp_path_factory.mktemp("gitops") / "project", params)
    project.run("git", "commit", "-q", "--allow-empty", "-m", "Merge pull request #7 from a/first")
    state["merge_7"] = project.run("git", "rev-parse", "HEAD").stdout.strip()
    run_main(project, state)
    state["model_a"] = model_digest(project)
    project.commit("main: model A")
    return project


def outcome(project: Project) -> dict[str, Any]:
    return json.loads(project.read("reports/promotion.json"))


def test_first_promotion_makes_a_champion_with_lineage_and_card(
    project: Project, state: dict[str, Any], tmp_path: Path
) -> None:
    assert "v1 is now @champion" in state["promote_output"]
    assert aliases(project) == {CHAMPION: "1", CHALLENGER: "1", PREVIOUS: None}
    tags = client(project).get_model_version(MODEL, "1").tags
    assert tags["git.commit"] == state["merge_7"]
    assert tags["git.pr_number"] == "7"  # parsed from the merge commit subject
    assert tags["dvc.data_md5"] and tags["dvc.model_md5"].endswith(".dir")
    assert tags["params.digest"] and tags["promotion.verdict"] == "passed"
    assert json.loads(tags["data.schema"])["Crew Size"] == "float64"
    assert float(tags["metrics.f1"]) == outcome(project)["scores"]["challenger"]["f1"]
    assert overlay_value(project, "staging", "model-uri") == f"models:/{MODEL}/1"

    card = project.read("reports/model_card.md").decode()
    for heading in ("## Intended use", "## Data", "## Metrics", "## Gates", "## Limitations"):
        assert heading in card
    assert f"# Model card: {MODEL} v1" in card
    assert "| Delayed |" in card and "| On Schedule |" in card  # per class and class balance
    assert "| `Crew Size` | float64 |" in card
    assert "Verdict: **promoted to champion**" in card
    # The card's monitoring command works as printed, against this version's own profile.
    assert f"--model models:/{MODEL}/1" in card
    monitored = project.mlops(
        "monitor",
        "--input",
        "outputs/split/test.parquet",
        "--model",
        f"models:/{MODEL}/1",
        "--out",
        "monitoring/card",
    )
    assert "vs the training data" in monitored.stderr
    drift = json.loads(project.read("monitoring/card/drift.json"))
    assert drift["reference"]["profile"].startswith(f"models:/{MODEL}/1 (version 1, run ")
    run_id = client(project).get_model_version(MODEL, "1").run_id
    logged = client(project).download_artifacts(
        run_id, f"{CARD_ARTIFACT_DIR}/{CARD_FILE_NAME}", str(tmp_path)
    )
    assert Path(logged).read_text() == card


def test_promoting_again_changes_nothing(project: Project, tmp_path: Path) -> None:
    before = (aliases(project), versions(project), project.read("reports/model_card.md"))
    output = tmp_path / "github_output"
    result = mlops(project, "promote", env={"GITHUB_OUTPUT": str(output)})
    assert "stays @challenger: already champion" in result.stdout + result.stderr
    assert (aliases(project), versions(project), project.read("reports/model_card.md")) == before
    assert output.read_text() == "promoted=false\nchampion=1\nchallenger=1\n"


def test_a_merged_better_model_is_promoted_and_the_champion_becomes_previous(
    project: Project, state: dict[str, Any]
) -> None:
    project.run("git", "checkout", "-q", "-b", "tune")
    params = project.params
    params["models"]["logistic_regression"]["grid"]["C"] = [0.5, 2.0]
    params["models"]["decision_tree"]["grid"]["max_depth"] = [4, 8]
    project.write_params(params)
    make(project, "repro")  # the pull request's run
    project.commit("Tune both grids")
    project.run("git", "checkout", "-q", "main")
    project.run("git", "merge", "-q", "--no-ff", "tune", "-m", "Merge pull request #12 from a/tune")
    run_main(project, state)
    discard_local_changes(project)
    state["model_b"] = model_digest(project)

    assert state["model_b"] != state["model_a"]
    assert "v2 is now @champion" in state["promote_output"]
    assert aliases(project) == {CHAMPION: "2", CHALLENGER: "2", PREVIOUS: "1"}
    gates = [g["gate"] for g in outcome(project)["gates"]]
    assert "f1 vs champion v1 (same test split)" in gates  # re-scored, not its logged metrics
    assert outcome(project)["scores"]["champion"]["f1"] > 0
    assert client(project).get_model_version(MODEL, "2").tags["git.pr_number"] == "12"
    assert overlay_value(project, "staging", "model-version") == "2"


def test_reverting_the_merge_restores_model_a_through_dvc_and_main_redeploys_it(
    project: Project, state: dict[str, Any]
) -> None:
    merge = project.run("git", "log", "-1", "--format=%H", "--merges").stdout.strip()
    project.run("git", "revert", "-m", "1", "--no-edit", merge)
    project.run("dvc", "checkout", "-q")
    assert model_digest(project) == state["model_a"]  # from the DVC cache, not retrained

    repro_output = run_main(project, state)
    assert "Running stage 'train@" not in repro_output
    assert versions(project) == [1, 2]  # same model bytes on the same data: v1 again, no v3
    assert "v1 is now @champion" in state["promote_output"]
    assert "was champion before and returns" in state["promote_output"]
    assert aliases(project) == {CHAMPION: "1", CHALLENGER: "1", PREVIOUS: "2"}
    assert overlay_value(project, "staging", "model-uri") == f"models:/{MODEL}/1"
    subject, files = last_commit(project)
    assert subject == f"Deploy {MODEL} v1 to staging"
    assert files == ["deploy/overlays/staging/kustomization.yaml"]
    discard_local_changes(project)


def test_a_model_worse_than_the_champion_on_the_same_split_stays_challenger(
    project: Project, state: dict[str, Any]
) -> None:
    params = project.params
    params["models"] = {
        "stump": {
            "estimator": "sklearn.tree.DecisionTreeClassifier",
            "params": {"random_state": 0, "max_depth": 1},
        }
    }
    params["gates"]["metrics"] = {}  # only the comparison with the champion can fail
    project.write_params(params)
    project.commit("A stump (#13)")
    before = aliases(project)
    run_main(project, state)  # exit 0: not promoting is an outcome, not an error
    output = state["promote_output"]
    assert "v3 stays @challenger: gates failed:" in output
    assert "vs champion v1 (same test split)" in output
    assert aliases(project) == {**before, CHALLENGER: "3"}
    assert outcome(project)["promoted"] is False
    assert client(project).get_model_version(MODEL, "3").tags["promotion.verdict"] == "failed"
    assert "Verdict: **stays challenger**" in project.read("reports/model_card.md").decode()
    project.commit("main: stump stays challenger")


def test_failing_an_absolute_gate_keeps_the_aliases(project: Project) -> None:
    params = project.params
    params["gates"]["metrics"] = {"f1": 0.99}
    project.write_params(params)
    before = aliases(project)
    result = mlops(project, "promote")
    output = result.stdout + result.stderr
    assert (
        "v3 stays @challenger" in output and "f1 (test):" in output and "(needs ≥ 0.99)" in output
    )
    assert aliases(project) == before
    project.run("git", "checkout", "--", "params.yaml")


def test_failing_a_behavioural_check_keeps_the_aliases(project: Project) -> None:
    """Promotion reruns the checks of params.yaml on the model it would promote."""
    params = project.params
    params["behaviour"] = {
        "directional": [{"feature": "Weather Delay Days", "add": 3, "expect": "down"}]
    }
    project.write_params(params)
    before = aliases(project)
    result = mlops(project, "promote")
    output = " ".join((result.stdout + result.stderr).split())  # the console wraps long lines
    assert "v3 stays @challenger" in output
    assert "behaviour: 0 of 1 passed; failed: Weather Delay Days +3 → probability down:" in output
    assert aliases(project) == before
    gate = next(g for g in outcome(project)["gates"] if g["gate"] == "behaviour")
    assert gate["passed"] is False
    project.run("git", "checkout", "--", "params.yaml")


def test_a_failure_half_way_through_restores_the_aliases(project: Project) -> None:
    registry = client(project)
    captured = capture_aliases(registry, MODEL)
    # A real failure half-way: champion moves first, then `previous` names no version.
    with pytest.raises(Exception, match="999"):
        set_aliases_atomically(registry, MODEL, {CHAMPION: "3", PREVIOUS: "999"}, captured)
    assert capture_aliases(registry, MODEL) == captured
    registry.set_registered_model_alias(MODEL, CHAMPION, "3")
    registry.delete_registered_model_alias(MODEL, PREVIOUS)
    restore_aliases(registry, MODEL, captured)
    assert capture_aliases(registry, MODEL) == captured


def test_rollback_returns_to_previous_in_one_commit(project: Project) -> None:
    head = project.run("git", "rev-parse", "HEAD").stdout.strip()
    result = make(project, "rollback")
    assert "@champion v1 -> v2, @previous v1" in result.stdout + result.stderr
    assert aliases(project) == {CHAMPION: "2", CHALLENGER: "3", PREVIOUS: "1"}
    assert project.run("git", "rev-list", "--count", f"{head}..HEAD").stdout.strip() == "1"
    subject, files = last_commit(project)
    assert subject == f"Roll back {MODEL} to v2 (was v1): production, staging"
    assert files == [
        "deploy/overlays/production/kustomization.yaml",
        "deploy/overlays/staging/kustomization.yaml",
    ]
    for env in ("production", "staging"):
        assert overlay_value(project, env, "model-uri") == f"models:/{MODEL}/2"
    assert "rolled back to v2" in rolled_back(project, "1")
    assert rolled_back(project, "2") is None


def rolled_back(project: Project, version: str) -> str | None:
    return client(project).get_model_version(MODEL, version).tags.get(ROLLED_BACK_TAG)


def test_main_does_not_promote_the_rolled_back_version_again(
    project: Project, state: dict[str, Any]
) -> None:
    """Reverting the stump makes main build v1's model again: registering it points @challenger at
    v1, which was champion before, but the rollback away from it stands."""
    log = project.run("git", "log", "--format=%H %s").stdout.splitlines()
    stump = next(line.split()[0] for line in log if line.endswith("A stump (#13)"))
    project.run("git", "revert", "--no-edit", f"{stump}^..HEAD~1")  # the stump's two commits
    project.run("dvc", "checkout", "-q")
    run_main(project, state)
    discard_local_changes(project)
    assert aliases(project) == {CHAMPION: "2", CHALLENGER: "1", PREVIOUS: "1"}
    output = " ".join(state["promote_output"].split())
    assert "v1 stays @challenger: v1 was rolled back (champion until" in output
    assert (
        "`make rollback ROLLBACK_TO=1` (`mlops rollback --to 1`) returns to it on purpose" in output
    )
    assert outcome(project)["promoted"] is False


def test_rollback_to_a_given_version(project: Project) -> None:
    result = make(project, "rollback", ROLLBACK_TO="1")
    assert "@champion v2 -> v1, @previous v2" in result.stdout + result.stderr
    assert overlay_value(project, "production", "model-version") == "1"
    assert rolled_back(project, "1") is None  # chosen again: the earlier rollback no longer stands
    assert "rolled back to v1" in rolled_back(project, "2")
    head = project.run("git", "rev-parse", "HEAD").stdout.strip()
    again = mlops(project, "rollback", "--to", "1")  # already there: no change, no commit
    assert "already is @champion and deployed" in again.stdout + again.stderr
    assert project.run("git", "rev-parse", "HEAD").stdout.strip() == head


def test_a_rollback_whose_commit_fails_changes_nothing(project: Project) -> None:
    hook = project.root / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'refused by a hook' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = (aliases(project), rolled_back(project, "1"), rolled_back(project, "2"))
    overlays = project.run("git", "status", "--porcelain").stdout
    try:
        failed = mlops(project, "rollback", check=False)
    finally:
        hook.unlink()
    assert failed.returncode != 0
    assert (aliases(project), rolled_back(project, "1"), rolled_back(project, "2")) == before
    assert project.run("git", "status", "--porcelain").stdout == overlays


def test_a_rollback_whose_push_is_refused_puts_the_registry_back(
    project: Project, tmp_path: Path
) -> None:
    """CI pushes the rollback commit: a protected main refusing it must not leave @champion on a
    version the deployed manifests do not name."""
    remote = tmp_path / "origin.git"
    project.run("git", "init", "-q", "--bare", str(remote))
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    branch = project.run("git", "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    project.run("git", "remote", "add", "origin", str(remote))
    try:
        hook.rename(remote / "hooks" / "off")  # let the current history in first
        project.run("git", "push", "-q", "origin", f"HEAD:{branch}")
        (remote / "hooks" / "off").rename(hook)
        before = (aliases(project), rolled_back(project, "1"), rolled_back(project, "2"))

        failed = mlops(project, "rollback", "--push", branch, check=False)
    finally:
        project.run("git", "remote", "remove", "origin")
    assert failed.returncode != 0
    assert "protected branch" in failed.stdout + failed.stderr
    assert "the local commit stays" in failed.stdout + failed.stderr
    assert (aliases(project), rolled_back(project, "1"), rolled_back(project, "2")) == before
    project.run("git", "reset", "-q", "--hard", "HEAD~1")  # the local commit, as the error says


def test_rollback_and_deploy_refuse_unknown_versions_and_bad_input(project: Project) -> None:
    before = aliases(project)
    missing = mlops(project, "rollback", "--to", "42", check=False)
    assert (
        missing.returncode == 2 and "version 42 does not exist" in missing.stdout + missing.stderr
    )
    bad = mlops(project, "rollback", env={"ROLLBACK_TO": "2; echo pwned"}, check=False)
    assert bad.returncode == 2 and "Invalid value for '--to'" in bad.stdout + bad.stderr
    assert aliases(project) == before
    head = project.run("git", "rev-parse", "HEAD").stdout.strip()
    typo = mlops(
        project, "deploy", "--env", "staging", "--model-version", "99", "--commit", check=False
    )
    assert typo.returncode == 2
    assert "version 99 does not exist (the registry has versions 1-3)" in typo.stdout + typo.stderr
    assert project.run("git", "rev-parse", "HEAD").stdout.strip() == head


def test_deploy_commits_an_overlay_once(project: Project) -> None:
    make(project, "deploy", DEPLOY_ENV="production", IMAGE_TAG="sha-1234")  # default: @champion
    subject, files = last_commit(project)
    assert subject == f"Deploy {MODEL} v1 to production (image sha-1234)"
    assert files == ["deploy/overlays/production/kustomization.yaml"]
    head = project.run("git", "rev-parse", "HEAD").stdout.strip()
    make(project, "deploy", DEPLOY_ENV="production", MODEL_VERSION="1", IMAGE_TAG="sha-1234")
    assert project.run("git", "rev-parse", "HEAD").stdout.strip() == head
    # What the main workflow passes from build-image: the image pinned by name, tag and digest.
    digest, name = f"sha256:{'c0' * 32}", f"ghcr.io/acme/{SLUG}"
    image = {"IMAGE_TAG": "sha-5678", "IMAGE_DIGEST": digest, "IMAGE_NAME": name}
    make(project, "deploy", DEPLOY_ENV="production", MODEL_VERSION="1", **image)
    assert (
        last_commit(project)[0]
        == f"Deploy {MODEL} v1 to production (image sha-5678, {digest[:19]})"
    )
    assert overlay_value(project, "production", "image-digest") == digest
    assert overlay_value(project, "production", "image-name") == name
    bad = mlops(
        project,
        "deploy",
        "--env",
        "production",
        env={**image, "IMAGE_DIGEST": "sha256:x"},
        check=False,
    )
    assert bad.returncode == 2 and "not an image digest" in bad.stdout + bad.stderr


def check_production(project: Project, outputs: Path, **env: str) -> str:
    """`mlops deploy --env production --from staging --check`, as deploy-production.yml's check
    job runs it; returns what it said (GITHUB_OUTPUT lines land in ``outputs``)."""
    outputs.unlink(missing_ok=True)
    check = mlops(
        project, "deploy", "--env", "production", "--from", "staging", "--check",
        env={"GITHUB_OUTPUT": str(outputs), **env},
    )  # fmt: skip
    return " ".join((check.stdout + check.stderr).split())


def test_production_takes_what_staging_runs_and_only_the_approved_version(
    project: Project, tmp_path: Path
) -> None:
    # What deploy-production.yml runs: `--check` (no approval asked when nothing differs), then
    # `make deploy DEPLOY_FROM=staging MODEL_VERSION=<checked>` once a reviewer approved.
    champion = aliases(project)[CHAMPION]
    assert champion is not None
    other = str(next(v for v in versions(project) if str(v) != champion))
    digest, name = f"sha256:{'ab' * 32}", f"ghcr.io/acme/{SLUG}"
    image = {"IMAGE_TAG": "sha-9abc", "IMAGE_DIGEST": digest, "IMAGE_NAME": name}
    make(project, "deploy", DEPLOY_ENV="staging", MODEL_VERSION=champion, **image)
    make(project, "deploy", DEPLOY_ENV="production", MODEL_VERSION=other, IMAGE_TAG="sha-1234")
    outputs = tmp_path / "github_output"
    said = check_production(project, outputs)
    assert f"production: model-version {other} -> {champion} (not written)" in said
    assert "production: image-tag sha-1234 -> sha-9abc (not written)" in said
    assert outputs.read_text().splitlines() == [
        "changes=true",
        "model_changed=true",
        f"model_version={champion}",
        "image_tag=sha-9abc",
        f"image_digest={digest}",
    ]
    assert overlay_value(project, "production", "model-version") == other  # --check wrote nothing
    make(project, "deploy", DEPLOY_ENV="production", DEPLOY_FROM="staging", MODEL_VERSION=champion)
    assert last_commit(project) == (
        f"Deploy {MODEL} v{champion} to production (image sha-9abc, {digest[:19]})",
        ["deploy/overlays/production/kustomization.yaml"],
    )
    for key in ("model-version", "model-uri", "image-name", "image-tag", "image-digest"):
        assert overlay_value(project, "production", key) == overlay_value(project, "staging", key)
    check_production(project, outputs)
    assert outputs.read_text().splitlines()[:2] == ["changes=false", "model_changed=false"]
    # The check of a run whose build staging no longer runs: nothing to ask a reviewer about.
    said = check_production(project, outputs, IMAGE_TAG="sha-0ld")
    assert "staging now runs image-tag sha-9abc, not sha-0ld" in said
    assert outputs.read_text().splitlines() == ["changes=false", "model_changed=false"]
    # Approved for the champion, but staging moved on since: nothing is deployed.
    make(project, "deploy", DEPLOY_ENV="staging", MODEL_VERSION=other)
    head = project.run("git", "rev-parse", "HEAD").stdout.strip()
    stale = mlops(
        project, "deploy", "--env", "production", "--commit",
        env={"DEPLOY_FROM": "staging", "MODEL_VERSION": champion}, check=False,
    )  # fmt: skip
    assert stale.returncode == 2
    said = " ".join((stale.stdout + stale.stderr).split())
    assert f"staging now runs model-version {other}, not {champion} (a later merge" in said
    assert project.run("git", "rev-parse", "HEAD").stdout.strip() == head
    assert overlay_value(project, "production", "model-version") == champion
    # Staging runs a version that is not @champion (a main run past promotion redeployed what a
    # rollback moved away from): production does not follow it.
    said = check_production(project, outputs)
    assert f"staging runs v{other}, but the registry's @champion is v{champion}" in said
    assert outputs.read_text().splitlines() == ["changes=false", "model_changed=false"]
    make(project, "deploy", DEPLOY_ENV="staging", MODEL_VERSION=champion)


def test_a_release_gets_the_model_card_of_the_version_it_deploys(
    project: Project, tmp_path: Path
) -> None:
    # deploy-production.yml releases model-vN with N's card: the one the main run's `mlops
    # promote` wrote when it evaluated N, else N's own from the registry, else no release.
    evaluated = outcome(project)["challenger"]
    other = next(v for v in versions(project) if v != evaluated)
    card, outputs = project.root / "reports" / "model_card.md", tmp_path / "github_output"

    def card_of(version: int) -> str:
        outputs.unlink(missing_ok=True)
        result = mlops(
            project,
            "model-card",
            env={"MODEL_VERSION": str(version), "GITHUB_OUTPUT": str(outputs)},
        )
        return " ".join((result.stdout + result.stderr).split())

    card_of(evaluated)
    assert card.read_text().startswith(f"# Model card: {MODEL} v{evaluated}")
    assert "kept (it is that version's" in card_of(evaluated)  # the downloaded card, as it is
    assert "logged with the version in the registry" in card_of(other)
    assert card.read_text().startswith(f"# Model card: {MODEL} v{other}")
    assert outputs.read_text() == "found=true\n"
    assert "no model card of v99 here" in card_of(99)
    assert outputs.read_text() == "found=false\n"
    assert card.read_text().startswith(f"# Model card: {MODEL} v{other}")  # left as it was


def test_a_merged_change_of_target_is_promoted_without_the_old_champion_gate(
    project: Project, state: dict[str, Any], tmp_path: Path
) -> None:
    # Last in this module: it changes what the project predicts.
    from tests.pipeline.test_adopt_data import wine_export

    champion = aliases(project)[CHAMPION]
    mlops(project, "data", "adopt", str(wine_export(tmp_path / "wine.csv")), "-t", "cultivar")
    project.commit("Merge pull request #9 from a/adopt-wine")
    run_main(project, state)

    result = outcome(project)
    assert result["promoted"] is True, result["reason"]
    assert (
        f"champion v{champion} predicts 'Schedule Adherence' (classification)" in result["reason"]
    )
    assert not [gate for gate in result["gates"] if "champion" in gate["gate"]]
    assert aliases(project)[PREVIOUS] == champion  # `make rollback` still returns to it
