"""The CI workflows: valid, clean under actionlint and zizmor, pinned, least privilege, bounded in
time, and every step a make target (or a one-line uv/git/dvc/cml/echo command) a laptop can run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.workflows.steps import commands, load_workflow, run_steps

WORKFLOWS_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted([*WORKFLOWS_DIR.glob("*.yml"), *WORKFLOWS_DIR.glob("*.yaml")])
PULL_REQUEST = WORKFLOWS_DIR / "pull-request.yml"
PINS = ROOT.parent / "shared" / "github-actions-pins.md"
BIN = Path(sys.executable).parent
COMMAND_PREFIXES = ("uv run", "git", "cml", "dvc", "echo")

USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)(?P<rest>.*)$")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"^\s+#\s*v\d+(\.\d+)*")
MAKE_TARGET = re.compile(r"^(?P<target>[A-Za-z0-9][\w-]*)\s*:(?!=)", re.MULTILINE)

by_name = pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)


def makefile_targets() -> set[str]:
    return set(MAKE_TARGET.findall((ROOT / "Makefile").read_text(encoding="utf-8")))


def jobs(workflow: Path) -> dict[str, dict[str, Any]]:
    return load_workflow(workflow)["jobs"]


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    executable = BIN / args[0]
    assert executable.is_file(), f"{executable} missing: `uv sync` installs the dev group"
    return subprocess.run(
        [str(executable), *args[1:]], cwd=ROOT, text=True, capture_output=True, check=False
    )


def test_the_workflows_are_there() -> None:
    assert {path.name for path in WORKFLOWS} >= {"pull-request.yml", "main.yml"}


@by_name
def test_is_valid_yaml_with_triggers_and_jobs(workflow: Path) -> None:
    document = load_workflow(workflow)
    assert document.get("on"), f"{workflow.name}: no trigger"
    assert isinstance(document.get("jobs"), dict) and document["jobs"], f"{workflow.name}: no jobs"


@by_name
def test_actionlint_finds_nothing(workflow: Path) -> None:
    result = run_tool("actionlint", "-no-color", str(workflow))
    assert result.returncode == 0, result.stdout + result.stderr


@by_name
def test_zizmor_finds_nothing(workflow: Path) -> None:
    result = run_tool("zizmor", "--offline", "--format", "json", str(workflow))
    findings = json.loads(result.stdout or "null")
    assert result.returncode == 0 and findings == [], result.stdout + result.stderr


@by_name
def test_every_action_is_pinned_by_a_full_sha_with_its_version(workflow: Path) -> None:
    pins = PINS.read_text(encoding="utf-8") if PINS.is_file() else None
    problems = []
    for number, line in enumerate(workflow.read_text(encoding="utf-8").splitlines(), start=1):
        match = USES.match(line)
        if match is None or match["ref"].startswith(("./", "docker://")):
            continue
        pinned = PINNED.match(match["ref"])
        if pinned is None:
            problems.append(f"line {number}: {match['ref']} is not pinned by a 40-hex commit SHA")
        elif not VERSION_COMMENT.match(match["rest"]):
            problems.append(f"line {number}: {match['ref']} lacks a `# vX.Y.Z` comment")
        elif pins is not None and pinned["sha"] not in pins:
            problems.append(f"line {number}: {pinned['sha']} is not in {PINS}")
    assert not problems, f"{workflow.name}:\n" + "\n".join(problems)


@by_name
def test_permissions_are_declared_at_the_top_and_per_job(workflow: Path) -> None:
    assert "permissions" in load_workflow(workflow), f"{workflow.name}: no top-level permissions"
    missing = [name for name, job in jobs(workflow).items() if "permissions" not in job]
    assert not missing, f"{workflow.name}: jobs without permissions: {missing}"


@by_name
def test_never_mentions_pull_request_target(workflow: Path) -> None:
    # It runs with a write token and secrets on a fork's code: not as a trigger, not in a condition.
    assert "pull_request_target" not in workflow.read_text(encoding="utf-8"), workflow.name


@by_name
def test_every_job_has_a_timeout(workflow: Path) -> None:
    missing = [name for name, job in jobs(workflow).items() if "timeout-minutes" not in job]
    assert not missing, f"{workflow.name}: jobs without timeout-minutes: {missing}"


@by_name
def test_run_steps_are_make_targets_or_plain_tool_commands(workflow: Path) -> None:
    targets = makefile_targets()
    problems = []
    for job in jobs(workflow):
        for script in run_steps(workflow, job):
            for line in commands(script):
                words = line.split()
                if words[0] == "make":
                    if len(words) < 2 or words[1] not in targets:
                        problems.append(f"{job}: `{line}`: no such Makefile target")
                elif not any(line == p or line.startswith(f"{p} ") for p in COMMAND_PREFIXES):
                    problems.append(f"{job}: `{line}`: not make/{'/'.join(COMMAND_PREFIXES)}")
    assert not problems, f"{workflow.name}:\n" + "\n".join(problems)


def test_pull_request_job_reproduces_then_reports_then_gates() -> None:
    scripts = run_steps(PULL_REQUEST, "train-and-report")
    lines = [line for script in scripts for line in commands(script)]
    order = ["make repro", "make report", "make gates"]
    assert all(step in lines for step in order), lines
    positions = [lines.index(step) for step in order]
    assert positions == sorted(positions), lines


def test_pull_request_code_gets_only_the_read_only_pr_secrets() -> None:
    # The branch's code runs with these: main's write credentials would let it change the DVC
    # remote or the registry (what production serves) without review.
    used = set(re.findall(r"secrets\.(\w+)", PULL_REQUEST.read_text(encoding="utf-8")))
    assert used, "no secrets at all: the remote and the tracking server could not be reached"
    assert {name for name in used if not name.startswith("PR_")} == {"MLFLOW_TRACKING_URI"}


def test_the_monitor_keeps_the_drift_issue_and_may_write_nothing_else() -> None:
    monitor = WORKFLOWS_DIR / "monitor.yml"
    (job,) = jobs(monitor).values()
    assert job["permissions"] == {"contents": "read", "issues": "write"}
    lines = [line for script in run_steps(monitor, "drift") for line in commands(script)]
    assert lines.index("make alert") == lines.index("make monitor") + 1
    (alert,) = [s for s in job["steps"] if s.get("run") == "make alert"]
    assert "steps.monitor.outcome == 'failure'" in alert["if"]  # a drift verdict fails the step
    assert alert["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}


def test_run_steps_reads_scripts_in_order_and_skips_actions(tmp_path: Path) -> None:
    workflow = tmp_path / "w.yml"
    workflow.write_text(
        "on: push\njobs:\n  j:\n    steps:\n      - uses: a/b@c\n      - run: make one\n"
        "      - run: |\n          # comment\n          git status\n\n          echo hi\n",
        encoding="utf-8",
    )
    assert run_steps(workflow, "j") == ["make one", "# comment\ngit status\n\necho hi\n"]
    assert commands(run_steps(workflow, "j")[1]) == ["git status", "echo hi"]
    with pytest.raises(KeyError, match="no job 'k'"):
        run_steps(workflow, "k")
