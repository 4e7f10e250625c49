"""The deployment half of the workflows: promote, then deploy-staging by commit, a smoke test,
deploy-production behind its environment with a release; rollback.yml on demand. Write access
only where a job commits. (tests/workflows checks every workflow generically: pins, actionlint,
zizmor, permissions, timeouts, make-target steps.)"""

from __future__ import annotations

from typing import Any

from tests.conftest import ROOT
from tests.workflows.steps import commands, load_workflow, run_steps

WORKFLOWS = ROOT / ".github" / "workflows"
MAIN, ROLLBACK = WORKFLOWS / "main.yml", WORKFLOWS / "rollback.yml"


def jobs(path: Any) -> dict[str, Any]:
    return load_workflow(path)["jobs"]


def make_lines(path: Any, job: str) -> list[str]:
    return [line for s in run_steps(path, job) for line in commands(s) if line.startswith("make ")]


def test_main_promotes_then_deploys_staging_then_production() -> None:
    main = jobs(MAIN)
    assert make_lines(MAIN, "promote") == ["make promote"]
    assert main["deploy-staging"]["needs"] == "promote"
    assert make_lines(MAIN, "deploy-staging") == ["make deploy"]
    assert make_lines(MAIN, "smoke-test") == ["make smoke"]
    assert main["smoke-test"]["if"] == "vars.STAGING_URL != ''"
    assert set(main["deploy-production"]["needs"]) == {"promote", "deploy-staging", "smoke-test"}
    assert main["deploy-production"]["environment"] == "production"
    assert "needs.promote.outputs.promoted == 'true'" in main["deploy-production"]["if"]


def test_write_access_only_where_a_job_commits() -> None:
    for path in (MAIN, ROLLBACK):
        for name, job in jobs(path).items():
            writes = {k for k, v in (job.get("permissions") or {}).items() if v == "write"}
            pushes = any("git push" in s for s in run_steps(path, name))
            releases = any("action-gh-release" in str(s.get("uses")) for s in job["steps"])
            assert writes == ({"contents"} if pushes or releases else set()), (path.name, name)


def test_deploy_values_reach_make_through_the_environment() -> None:
    for path, job in (
        (MAIN, "deploy-staging"),
        (MAIN, "deploy-production"),
        (ROLLBACK, "rollback"),
    ):
        for step in jobs(path)[job]["steps"]:
            assert "${{" not in step.get("run", ""), (path.name, job, step["run"])
    (step,) = [s for s in jobs(MAIN)["deploy-staging"]["steps"] if s.get("run") == "make deploy"]
    assert step["env"] == {
        "DEPLOY_ENV": "staging",
        "MODEL_VERSION": "${{ needs.promote.outputs.champion }}",
    }


def test_rollback_is_a_dispatch_with_a_version_input() -> None:
    workflow = load_workflow(ROLLBACK)
    assert set(workflow["on"]) == {"workflow_dispatch"}
    assert workflow["on"]["workflow_dispatch"]["inputs"]["version"]["type"] == "string"
    assert make_lines(ROLLBACK, "rollback") == ["make rollback"]
    (step,) = [s for s in workflow["jobs"]["rollback"]["steps"] if s.get("run") == "make rollback"]
    assert step["env"]["ROLLBACK_TO"] == "${{ inputs.version }}"
    assert workflow["jobs"]["rollback"]["environment"] == "production"
