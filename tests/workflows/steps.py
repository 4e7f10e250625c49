"""Reading GitHub Actions workflows as data: the jobs, their steps and the shell they run.

``run_steps`` lets a test execute a job's commands in a local git repository, in the order the
workflow runs them, without GitHub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def load_workflow(workflow: Path) -> dict[str, Any]:
    """The workflow as a mapping; YAML 1.1 reads the key ``on`` as ``True``, so it is put back."""
    document = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"{workflow}: not a mapping")
    if True in document:
        document["on"] = document.pop(True)
    return document


def job_steps(workflow: Path, job: str) -> list[dict[str, Any]]:
    """The steps of ``job`` in order (KeyError naming the jobs there are when it is missing)."""
    jobs = load_workflow(workflow).get("jobs") or {}
    if job not in jobs:
        raise KeyError(f"{workflow}: no job {job!r}; jobs: {sorted(jobs)}")
    return list(jobs[job].get("steps") or [])


def run_steps(workflow: Path, job: str) -> list[str]:
    """The ``run:`` scripts of ``job``, in order (steps that use an action are left out)."""
    return [step["run"] for step in job_steps(workflow, job) if "run" in step]


def commands(script: str) -> list[str]:
    """The command lines of a ``run:`` script: each non-empty line that is not a comment."""
    lines = (line.strip() for line in script.splitlines())
    return [line for line in lines if line and not line.startswith("#")]
