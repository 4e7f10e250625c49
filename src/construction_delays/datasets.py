"""Getting the dataset in place: from the DVC remote when there is one, else the bundled sample.

A fresh clone has no DVC remote, so the sample is regenerated from its seed; DVC then confirms the
bytes hash to exactly what ``data.dvc`` records (the generator is deterministic), and caches them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

from construction_delays.config import Params
from construction_delays.errors import ProjectError

DvcRunner = Callable[..., subprocess.CompletedProcess[str]]


class MaterialiseError(ProjectError):
    pass


def tracking_output(root: Path, data_path: Path) -> tuple[Path, Path] | None:
    """``(*.dvc file, its output)`` for the top-level ``*.dvc`` file whose output contains
    ``data_path``, if any."""
    for dvc_file in sorted(p for p in root.glob("*.dvc") if p.is_file()):
        for out in (yaml.safe_load(dvc_file.read_text()) or {}).get("outs", []):
            tracked = Path(out["path"])
            if data_path == tracked or tracked in data_path.parents:
                return dvc_file, tracked
    return None


def tracking_dvc_file(root: Path, data_path: Path) -> Path | None:
    """The top-level ``*.dvc`` file whose output contains ``data_path``, if any."""
    found = tracking_output(root, data_path)
    return found[0] if found else None


def recorded_hashes(dvc_file: Path) -> list[str]:
    return [
        out.get("md5", "") for out in (yaml.safe_load(dvc_file.read_text()) or {}).get("outs", [])
    ]


def in_sync(dvc: DvcRunner, dvc_file: Path) -> bool:
    """Does the data on disk hash to what ``dvc_file`` records?

    ``dvc status`` cannot answer this in a fresh clone (it reports "not in cache" whether or not the
    bytes match), so let DVC hash the data with ``dvc commit`` (which also caches it for ``dvc push``)
    and compare; the .dvc file is put back exactly as it was.
    """
    recorded_text = dvc_file.read_text()
    recorded = recorded_hashes(dvc_file)
    committed = (
        dvc("commit", "--force", "--quiet", dvc_file.name, check=False, capture=True).returncode
        == 0
    )
    current = recorded_hashes(dvc_file)
    dvc_file.write_text(recorded_text)
    return committed and current == recorded


def materialise(params: Params, root: Path, dvc: DvcRunner) -> str:
    """Make ``params.data.path`` exist; return a one-line account of what was done."""
    data_path = Path(params.data.path)
    dvc_file = tracking_dvc_file(root, data_path)
    if dvc_file is None:
        if data_path.is_file():
            return f"{data_path}: used as is (not tracked by DVC yet: `dvc add {data_path.parent}` to version it)"
        raise MaterialiseError(
            f"{data_path}: file not found and no *.dvc file tracks it (params.yaml data.path)"
        )

    if data_path.is_file():
        if in_sync(dvc, dvc_file):
            return f"{data_path}: present, matches {dvc_file.name}"
        return (
            f"{data_path}: differs from {dvc_file.name}; using the file on disk "
            f"(record the new version with `dvc add {data_path.parent}`)"
        )

    if in_sync(dvc, dvc_file):
        raise MaterialiseError(
            f"{data_path}: file not found; {dvc_file.name} tracks {data_path.parent} but it has no such file "
            "(check data.path in params.yaml)"
        )
    has_remote = bool(dvc("remote", "list", capture=True).stdout.strip())
    pull_problem = ""
    if has_remote:
        pulled = dvc("pull", dvc_file.name, check=False, capture=True)
        if pulled.returncode == 0 and data_path.is_file():
            return f"{data_path}: pulled from the DVC remote"
        # A new project's remote is empty until its first `dvc push`: fall through to the sample,
        # but say what the pull said (missing credentials look the same from here).
        pull_problem = f" (`dvc pull` failed: {_dvc_said(pulled)})"
    if (
        dvc("checkout", dvc_file.name, check=False, capture=True).returncode == 0
        and data_path.is_file()
    ):
        return f"{data_path}: restored from the local DVC cache"
    if params.data.sample is None:
        raise MaterialiseError(
            f"{data_path}: file not found, neither a DVC remote nor the cache has it{pull_problem},"
            " and params.yaml data.sample is null; run `dvc push` from a machine that has it, or"
            " copy the file in place"
        )
    from construction_delays.sample_data import write_sample

    write_sample(data_path, rows=params.data.sample.rows, seed=params.data.sample.seed)
    if not in_sync(dvc, dvc_file):
        data_path.unlink()
        raise MaterialiseError(
            f"{data_path}: file not found, and the sample generated from params.yaml data.sample does not "
            f"hash to what {dvc_file.name} records; if you changed data.sample on purpose, generate it with "
            f"`mlops data generate` and record it with `dvc add {data_path.parent}`"
        )
    return (
        f"{data_path}: regenerated from the sample generator, hash matches {dvc_file.name}"
        f"{pull_problem}"
    )


def pull_missing_outputs(root: Path, dvc: DvcRunner) -> str | None:
    """Pull what dvc.lock records but the workspace lacks, when a DVC remote is configured.

    A fresh clone has dvc.lock but none of the split and models it names; without them `dvc repro`
    retrains every model the remote already holds. Returns a line to print, or None when nothing
    was missing (the usual case: no network call then) or there is no remote.
    """
    from construction_delays.lockcheck import locked_outputs

    missing = [path for path in locked_outputs(root) if not (root / path).exists()]
    if not missing or not dvc("remote", "list", capture=True).stdout.strip():
        return None
    pulled = dvc("pull", "--allow-missing", check=False, capture=True)
    if pulled.returncode != 0:
        return (
            f"! `dvc pull` of the pipeline's outputs failed: {_dvc_said(pulled)}; they are rebuilt"
        )
    restored = sum((root / path).exists() for path in missing)
    return f"{restored} of {len(missing)} missing pipeline output(s) pulled from the DVC remote"


def _dvc_said(result: subprocess.CompletedProcess[str]) -> str:
    """What DVC warned and erred about, on one line (the cause: missing files, credentials...)."""
    lines = [line.strip() for line in f"{result.stdout}\n{result.stderr}".splitlines()]
    said = [
        line.split(":", 1)[1].strip().rstrip(":")
        for line in lines
        if line.startswith(("ERROR:", "WARNING:"))
    ]
    return "; ".join(said)[:300] or f"exit code {result.returncode}"
