"""Are the results in a commit what its code, params and data produce?

The pull-request report compares a branch with main's *committed* `reports/metrics.json`, and
`dvc pull` fetches what main's `dvc.lock` names. Both go wrong quietly when a change is merged
without the `dvc.lock` and `reports/` its pipeline run wrote: the next pull request is measured
against stale numbers. This check compares the committed `dvc.lock` with the one a fresh run of the
same commit just wrote, on the stages' *inputs* only (commands, params, and the dependencies no
stage produces: code and data), so it gives the same answer on any machine; and it checks that the
outputs kept in git (`reports/*.json`, `reports/plots/`) are the ones the committed `dvc.lock`
records.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

LOCK_FILE = "dvc.lock"


def git_bytes(root: Path, ref: str, path: str) -> bytes | None:
    result = subprocess.run(
        ["git", "show", f"{ref}:{path}"], cwd=root, capture_output=True, check=False
    )
    return result.stdout if result.returncode == 0 else None


def _stages(lock_text: bytes | str) -> dict[str, dict[str, Any]]:
    lock = yaml.safe_load(lock_text) or {}
    stages = lock.get("stages") if isinstance(lock, dict) else None
    return stages if isinstance(stages, dict) else {}


def _entries(stage: Mapping[str, Any], kind: str) -> dict[str, str | None]:
    return {e["path"]: e.get("md5") for e in stage.get(kind) or [] if isinstance(e, dict)}


def _produced(path: str, outputs: Iterable[str]) -> bool:
    """True when a stage writes ``path``, something inside it, or the folder it is in."""
    return any(
        path == out or path.startswith(f"{out}/") or out.startswith(f"{path}/") for out in outputs
    )


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat |= _flat(value, f"{prefix}.{key}" if prefix else str(key))
    return flat


def _input_changes(
    committed: Mapping[str, Any], current: Mapping[str, Any], outputs: set[str]
) -> list[str]:
    changes = []
    if committed.get("cmd") != current.get("cmd"):
        changes.append("the command")
    before, after = (
        {
            f"{file}:{key}" if file != "params.yaml" else key: value
            for file, values in (stage.get("params") or {}).items()
            for key, value in _flat(values).items()
        }
        for stage in (committed, current)
    )
    changes += [
        f"param {key}"
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    ]
    deps_before, deps_after = _entries(committed, "deps"), _entries(current, "deps")
    changes += [
        path
        for path in sorted(deps_before.keys() | deps_after.keys())
        if not _produced(path, outputs) and deps_before.get(path) != deps_after.get(path)
    ]
    return changes


def _locks(root: Path, ref: str) -> tuple[dict[str, Any], dict[str, Any]] | str:
    """(committed stages, working-tree stages), or why there is nothing to compare."""
    committed_text = git_bytes(root, ref, LOCK_FILE)
    if committed_text is None:
        return f"{LOCK_FILE} is not committed"
    current_file = root / LOCK_FILE
    if not current_file.is_file():
        return f"no {LOCK_FILE} in the working tree: run the pipeline first (`make repro`)"
    return _stages(committed_text), _stages(current_file.read_bytes())


def _outputs(stages: Mapping[str, Any]) -> set[str]:
    return {path for stage in stages.values() for path in _entries(stage, "outs")}


def locked_outputs(root: Path) -> list[str]:
    """Every output path the working tree's dvc.lock records ([] without one)."""
    lock = root / LOCK_FILE
    return sorted(_outputs(_stages(lock.read_bytes()))) if lock.is_file() else []


def stale_results(root: Path, ref: str = "HEAD") -> list[str]:
    """What in ``ref``'s committed results does not match its code, params and data; [] if current.

    Call it after the pipeline ran on ``ref``'s files: the working-tree `dvc.lock` is then what
    they produce. Each entry names an input that changed and the stages that use it, a stage that
    was added or removed, or an output kept in git (file or folder) that is not what the committed
    `dvc.lock` records.
    """
    locks = _locks(root, ref)
    if isinstance(locks, str):
        return [locks]
    committed, current = locks
    outputs = _outputs(current)
    stale = [
        f"{name}: not in the committed {LOCK_FILE}" for name in current if name not in committed
    ]
    stale += [f"{name}: no longer in the pipeline" for name in committed if name not in current]
    stages_by_change: dict[str, list[str]] = {}
    for name, stage in current.items():
        for change in _input_changes(committed.get(name, stage), stage, outputs):
            stages_by_change.setdefault(change, []).append(name)
    for change, names in stages_by_change.items():
        stale.append(f"{change} changed ({_shown(names)})")
    in_git = set(
        subprocess.run(
            ["git", "ls-tree", "-r", "--name-only", ref],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.splitlines()
    )
    for stage in committed.values():
        for path, md5 in _entries(stage, "outs").items():
            kept = _git_md5(root, ref, path, in_git)
            if kept is not None and kept != md5:
                stale.append(f"{path}: not what the committed {LOCK_FILE} records")
    return stale


def unrun_changes(root: Path) -> list[str]:
    """Inputs changed since the pipeline last ran here, from `dvc status` (stages only): the
    results on disk are not yet what the working tree's code, params and data produce, so comparing
    them with the commit says nothing. [] when every stage is up to date."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        status = repo.status()
    stages_by_change: dict[str, list[str]] = {}
    for name, changes in status.items():
        if name.endswith(".dvc") or not isinstance(changes, list):
            continue  # data.dvc: materialising the data is `make data`'s job
        for change in changes:
            if not isinstance(change, dict):
                continue
            for path, what in (change.get("changed deps") or {}).items():
                # params files report {key: "modified"}; other deps just "modified"/"deleted"
                label = f"param {', '.join(what)}" if isinstance(what, dict) else path
                stages_by_change.setdefault(label, []).append(name)
            if "changed command" in change:
                stages_by_change.setdefault("the command", []).append(name)
    return [
        f"{change} changed since the pipeline last ran ({_shown(names)}): run `make repro`"
        for change, names in stages_by_change.items()
    ]


def _shown(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _git_md5(root: Path, ref: str, path: str, in_git: set[str]) -> str | None:
    """DVC's hash of ``path`` as committed in git (a file's md5; for a folder, the md5 of DVC's
    sorted listing of its files' md5s, plus ``.dir``); None when git does not keep it."""
    if path in in_git:
        return hashlib.md5(git_bytes(root, ref, path) or b"").hexdigest()
    inside = sorted(name for name in in_git if name.startswith(f"{path}/"))
    if not inside:
        return None  # kept by DVC's cache
    listing = [
        {
            "md5": hashlib.md5(git_bytes(root, ref, name) or b"").hexdigest(),
            "relpath": name[len(path) + 1 :],
        }
        for name in inside
    ]
    return hashlib.md5(json.dumps(listing, sort_keys=True).encode("utf-8")).hexdigest() + ".dir"


def unreproduced_outputs(root: Path, ref: str = "HEAD") -> tuple[int, list[str]]:
    """(outputs compared, those whose bytes differ from the committed `dvc.lock`), over the stages
    whose inputs did not change. Stage outputs are a function of their inputs on one platform and
    library build, so a difference means another machine (or nondeterministic code)."""
    locks = _locks(root, ref)
    if isinstance(locks, str):
        return 0, []
    committed, current = locks
    outputs = _outputs(current)
    compared, differing = 0, []
    for name, stage in current.items():
        if name not in committed or _input_changes(committed[name], stage, outputs):
            continue
        recorded = _entries(committed[name], "outs")
        for path, md5 in _entries(stage, "outs").items():
            if path not in recorded:
                continue
            compared += 1
            if recorded[path] != md5:
                differing.append(f"{path} ({name})")
    return compared, differing
