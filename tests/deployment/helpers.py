"""Helpers for the promotion, rollback and revert tests: projects with deploy/, the registry."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from construction_delays.registry import capture_aliases

from tests.conftest import MODEL as MODEL  # the tests of this folder import it from here
from tests.conftest import ROOT, Project, init_project, tool_env


def deploy_project(root: Path, params: dict[str, Any]) -> Project:
    """A reference project (git + DVC) that also holds deploy/ and Dockerfile, committed."""
    project = init_project(root, params)
    shutil.copytree(ROOT / "deploy", root / "deploy")
    project.commit("deploy manifests")
    return project


def mlops(
    project: Project, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`mlops ...` in the project, with extra environment variables (e.g. PR_NUMBER)."""
    result = subprocess.run(
        ["mlops", *args],
        cwd=project.root,
        env={**tool_env(), **(env or {})},
        text=True,
        capture_output=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"mlops {' '.join(args)}: {result.stdout}\n{result.stderr}")
    return result


def make(project: Project, target: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """A Makefile target as CI runs it (no uv sync), with make variables such as DEPLOY_ENV."""
    extra = [f"{k}={v}" for k, v in variables.items()]
    return project.run(
        "make", "--no-print-directory", target, "RUN=", f"UV={shutil.which('true')}", *extra
    )


def client(project: Project) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{project.root / 'mlflow.db'}")


def aliases(project: Project) -> dict[str, str | None]:
    return capture_aliases(client(project), MODEL)


def versions(project: Project) -> list[int]:
    return sorted(int(v.version) for v in client(project).search_model_versions(f"name='{MODEL}'"))


def overlay_value(project: Project, env: str, key: str) -> str:
    from construction_delays.deployment import read_marked_values

    path = project.root / "deploy" / "overlays" / env / "kustomization.yaml"
    return read_marked_values(path.read_text(encoding="utf-8"))[key]


def last_commit(project: Project) -> tuple[str, list[str]]:
    """Subject and changed files of HEAD."""
    out = project.run("git", "show", "--name-only", "--format=%s", "HEAD").stdout.split("\n")
    return out[0], sorted(line for line in out[1:] if line.strip())
