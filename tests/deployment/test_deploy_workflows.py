"""The deployment half of the workflows: promote, build and push the serving image, then
deploy-staging by commit and a smoke test (main.yml); deploy-production.yml after a green main run,
behind its environment, with a release; rollback.yml on demand. Write access only where a job commits or pushes the image. (tests/workflows
checks every workflow generically: pins, actionlint, zizmor, permissions, timeouts, make-target
steps.)"""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import ROOT
from tests.workflows.steps import commands, job_steps, load_workflow, run_steps

WORKFLOWS = ROOT / ".github" / "workflows"
MAIN, ROLLBACK = WORKFLOWS / "main.yml", WORKFLOWS / "rollback.yml"
PRODUCTION = WORKFLOWS / "deploy-production.yml"
DOCKER_ACTIONS = {  # the image job's actions, pinned exactly (SHA and version)
    "actions/checkout": "3d3c42e5aac5ba805825da76410c181273ba90b1",
    "docker/setup-buildx-action": "37fe631027851001ddb9b187196cc803df7f5f0e",
    "docker/login-action": "4907a6ddec9925e35a0a9e82d7399ccc52663121",
    "docker/metadata-action": "dc802804100637a589fabce1cb79ff13a1411302",
    "docker/build-push-action": "53b7df96c91f9c12dcc8a07bcb9ccacbed38856a",
}
REGISTRY_ENV = {
    "MLFLOW_TRACKING_URI": "${{ secrets.MLFLOW_TRACKING_URI }}",
    "MLFLOW_TRACKING_TOKEN": "${{ secrets.MLFLOW_TRACKING_TOKEN }}",
}
BUILD_ARGS = {"PYTHON_IMAGE": "${{ vars.PYTHON_IMAGE }}", "UV_IMAGE": "${{ vars.UV_IMAGE }}"}
IMAGE_ENV = {
    "IMAGE_NAME": "${{ needs.build-image.outputs.name }}",
    "IMAGE_TAG": "${{ needs.build-image.outputs.tag }}",
    "IMAGE_DIGEST": "${{ needs.build-image.outputs.digest }}",
}


def jobs(path: Any) -> dict[str, Any]:
    return load_workflow(path)["jobs"]


def make_lines(path: Any, job: str) -> list[str]:
    return [line for s in run_steps(path, job) for line in commands(s) if line.startswith("make ")]


def test_main_promotes_then_deploys_staging_then_production() -> None:
    main = jobs(MAIN)
    assert make_lines(MAIN, "promote") == ["make promote"]
    assert main["build-image"]["needs"] == "promote"
    assert main["build-image"]["if"] == main["deploy-staging"]["if"]
    assert main["deploy-staging"]["if"] == "needs.promote.outputs.champion != ''"
    assert set(main["deploy-staging"]["needs"]) == {"promote", "build-image"}
    assert make_lines(MAIN, "deploy-staging") == ["make deploy"]
    assert make_lines(MAIN, "smoke-test") == ["make smoke"]
    assert main["smoke-test"]["if"] == "vars.STAGING_URL != ''"
    assert "deploy-production" not in main  # its own workflow: an approval holds back no merge


def test_production_follows_a_green_main_run_behind_its_approval() -> None:
    workflow = load_workflow(PRODUCTION)
    assert workflow["on"] == {
        "workflow_run": {"workflows": ["main"], "types": ["completed"], "branches": ["main"]}
    }
    assert load_workflow(MAIN)["name"] == "main"  # what `workflows:` names
    assert "'deploy-production'" in workflow["concurrency"]["group"]
    assert load_workflow(MAIN)["concurrency"]["group"] == "main"
    check, deploy = workflow["jobs"]["check"], workflow["jobs"]["deploy-production"]
    assert check["if"] == "github.event.workflow_run.conclusion == 'success'"
    assert "environment" not in check  # asking nobody when nothing is to deploy
    (step,) = [s for s in check["steps"] if s.get("id") == "check"]
    assert step["run"] == "uv run --locked mlops deploy --env production --from staging --check"
    # The image of that very run: main.yml's tag for it, named the same way (mlops image-tag)
    # from the same build args, at the run's commit (which the checkout of main must include).
    assert step["env"] == {
        "IMAGE_TAG": "${{ steps.image.outputs.tag }}",
        **REGISTRY_ENV,  # with a tracking server, staging must run @champion
    }
    (image,) = [s for s in check["steps"] if s.get("id") == "image"]
    assert image["run"] == "uv run --locked mlops image-tag"
    assert image["env"] == {"IMAGE_REV": "${{ github.event.workflow_run.head_sha }}", **BUILD_ARGS}
    (checkout,) = [s for s in check["steps"] if "actions/checkout" in str(s.get("uses"))]
    assert checkout["with"]["ref"] == "main" and checkout["with"]["fetch-depth"] == 0
    built = {s.get("id"): s for s in job_steps(MAIN, "build-image")}
    assert built["inputs"]["run"] == "make image-tag" and built["inputs"]["env"] == BUILD_ARGS
    tags = built["meta"]["with"]["tags"].splitlines()
    assert tags[0] == "type=raw,value=${{ steps.inputs.outputs.tag }},priority=300"
    assert deploy["needs"] == "check" and deploy["if"] == "needs.check.outputs.changes == 'true'"
    assert deploy["environment"] == "production"
    assert deploy["permissions"] == {"contents": "write", "actions": "read"}
    assert make_lines(PRODUCTION, "deploy-production") == ["make deploy"]
    (download,) = [s for s in deploy["steps"] if "download-artifact" in str(s.get("uses"))]
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    (release,) = [s for s in deploy["steps"] if "action-gh-release" in str(s.get("uses"))]
    (card,) = [s for s in deploy["steps"] if s.get("id") == "card"]
    for step in (download, card):
        assert step["if"] == "needs.check.outputs.model-changed == 'true'"
    assert card["run"] == "uv run --locked mlops model-card"
    assert card["env"]["MODEL_VERSION"] == "${{ needs.check.outputs.model-version }}"
    # Never another version's card; made once the deploy commit is pushed, even if a newer run
    # cancels this one right then (always(): the release is what production now runs).
    assert release["if"] == (
        "always() && steps.push.outcome == 'success' && steps.card.outputs.found == 'true'"
    )
    # A main run that failed must not cancel the newest green one waiting for its approval.
    group = workflow["concurrency"]["group"]
    assert "github.event.workflow_run.conclusion == 'success'" in group and "run_id" in group


def test_write_access_only_where_a_job_commits_or_pushes_the_image() -> None:
    for path in (MAIN, PRODUCTION, ROLLBACK):
        for name, job in jobs(path).items():
            writes = {k for k, v in (job.get("permissions") or {}).items() if v == "write"}
            pushes = any("git push" in s for s in run_steps(path, name)) or any(
                "ROLLBACK_PUSH" in (s.get("env") or {}) for s in job["steps"]
            )  # `mlops rollback --push` pushes the commit itself
            releases = any("action-gh-release" in str(s.get("uses")) for s in job["steps"])
            images = any(
                "docker/build-push-action" in str(s.get("uses")) and s["with"].get("push") is True
                for s in job["steps"]
            )
            expected = {"contents"} if pushes or releases else set()
            expected |= {"packages"} if images else set()
            assert writes == expected, (path.name, name)


def test_build_image_is_least_privilege_pinned_and_checks_the_base_images_first() -> None:
    job = jobs(MAIN)["build-image"]
    assert job["permissions"] == {"contents": "read", "packages": "write"}
    assert isinstance(job["timeout-minutes"], int) and job["timeout-minutes"] <= 60
    actions = [s["uses"] for name in jobs(MAIN) for s in job_steps(MAIN, name) if "uses" in s]
    unpinned = [a for a in actions if not re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", a)]
    assert actions and not unpinned, unpinned  # every action of main.yml: a full commit SHA
    steps = job_steps(MAIN, "build-image")
    used = dict(s["uses"].split("@") for s in steps if "uses" in s)
    assert {a: used.get(a) for a in DOCKER_ACTIONS} == DOCKER_ACTIONS
    (checkout,) = [s for s in steps if str(s.get("uses")).startswith("actions/checkout@")]
    assert checkout["with"]["persist-credentials"] is False
    # `make image-check` runs before buildx, the login and the build, with the overrides in env.
    positions = {
        key: next(i for i, s in enumerate(steps) if key in str(s.get("uses") or s.get("run")))
        for key in ("make image-check", "setup-buildx", "login-action", "build-push-action")
    }
    assert positions["make image-check"] == min(positions.values())
    check = steps[positions["make image-check"]]
    assert check["env"] == {
        "PYTHON_IMAGE": "${{ vars.PYTHON_IMAGE }}",
        "UV_IMAGE": "${{ vars.UV_IMAGE }}",
    }
    for step in steps:
        assert "${{" not in step.get("run", ""), step["run"]


def test_build_image_pushes_to_ghcr_and_outputs_the_tag_and_digest() -> None:
    job = jobs(MAIN)["build-image"]
    (login,) = [s for s in job_steps(MAIN, "build-image") if "login-action" in str(s.get("uses"))]
    steps = {s["id"]: s for s in job_steps(MAIN, "build-image") if "id" in s}
    assert login["with"] == {
        "registry": "ghcr.io",
        "username": "${{ github.actor }}",
        "password": "${{ secrets.GITHUB_TOKEN }}",
    }
    assert steps["name"]["run"] == 'echo "name=ghcr.io/${GITHUB_REPOSITORY,,}" >> "$GITHUB_OUTPUT"'
    meta, build = steps["meta"]["with"], steps["build"]["with"]
    assert meta["images"] == "${{ steps.name.outputs.name }}"
    tags = meta["tags"].splitlines()
    # The inputs tag has the highest priority: it is `version`, what the deploys pin.
    assert tags == [
        "type=raw,value=${{ steps.inputs.outputs.tag }},priority=300",
        "type=sha,format=long",
        "type=raw,value=model-v${{ needs.promote.outputs.champion }}",
    ]
    assert build["push"] is True and build["file"] == "Dockerfile"
    # Built only when the registry has no image of the same inputs; else that one gets this
    # run's tags (`make image-reuse`) and its digest is what the deploys pin.
    assert steps["existing"]["run"] == "make image-reuse"
    assert steps["existing"]["env"] == {
        "IMAGE_NAME": "${{ steps.name.outputs.name }}",
        "IMAGE_TAG": "${{ steps.inputs.outputs.tag }}",
        "IMAGE_TAGS": "${{ steps.meta.outputs.tags }}",
    }
    assert steps["build"]["if"] == "steps.existing.outputs.digest == ''"
    order = [s.get("id") for s in job_steps(MAIN, "build-image")]
    assert order.index("inputs") < order.index("meta") < order.index("existing")
    assert order.index("existing") < order.index("build")
    assert build["tags"] == "${{ steps.meta.outputs.tags }}"
    assert build["labels"] == "${{ steps.meta.outputs.labels }}"
    assert build["cache-from"] == "type=gha" and build["cache-to"] == "type=gha,mode=max"
    args = build["build-args"].splitlines()
    for name in ("PYTHON_IMAGE", "UV_IMAGE"):  # only when set: an empty one would erase the default
        assert f"${{{{ vars.{name} && format('{name}={{0}}', vars.{name}) || '' }}}}" in args
    assert job["outputs"] == {
        "name": "${{ steps.name.outputs.name }}",
        "tag": "${{ steps.meta.outputs.version }}",
        "digest": "${{ steps.build.outputs.digest || steps.existing.outputs.digest }}",
    }


def test_deploy_values_reach_make_through_the_environment() -> None:
    for path, job in (
        (MAIN, "deploy-staging"),
        (PRODUCTION, "deploy-production"),
        (ROLLBACK, "rollback"),
    ):
        for step in jobs(path)[job]["steps"]:
            assert "${{" not in step.get("run", ""), (path.name, job, step["run"])
    (staging,) = [s for s in jobs(MAIN)["deploy-staging"]["steps"] if s.get("run") == "make deploy"]
    assert staging["env"] == {
        "DEPLOY_ENV": "staging",
        "MODEL_VERSION": "${{ needs.promote.outputs.champion }}",
        **IMAGE_ENV,
    }
    steps = jobs(PRODUCTION)["deploy-production"]["steps"]
    (production,) = [s for s in steps if s.get("run") == "make deploy"]
    assert production["env"] == {  # what the reviewer approved, checked against staging
        "DEPLOY_ENV": "production",
        "DEPLOY_FROM": "staging",
        "MODEL_VERSION": "${{ needs.check.outputs.model-version }}",
        "IMAGE_TAG": "${{ needs.check.outputs.image-tag }}",
        "IMAGE_DIGEST": "${{ needs.check.outputs.image-digest }}",
        **REGISTRY_ENV,
    }


def test_rollback_is_a_dispatch_with_a_version_input() -> None:
    workflow = load_workflow(ROLLBACK)
    assert set(workflow["on"]) == {"workflow_dispatch"}
    assert workflow["on"]["workflow_dispatch"]["inputs"]["version"]["type"] == "string"
    assert make_lines(ROLLBACK, "rollback") == ["make rollback"]
    (step,) = [s for s in workflow["jobs"]["rollback"]["steps"] if s.get("run") == "make rollback"]
    assert step["env"]["ROLLBACK_TO"] == "${{ inputs.version }}"
    assert workflow["jobs"]["rollback"]["environment"] == "production"
