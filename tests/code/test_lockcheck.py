"""Committed results vs what the commit's inputs produce: a real git repo, dvc.lock files as DVC
writes them (only the fields the check reads)."""

from __future__ import annotations

import copy
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from construction_delays.gates import committed_results_gate
from construction_delays.lockcheck import stale_results, unreproduced_outputs

METRICS = b'{"best_model": "tree", "test": {"f1": 0.61}}\n'


def md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


def lock(metrics: bytes = METRICS) -> dict[str, Any]:
    return {
        "schema": "2.0",
        "stages": {
            "split": {
                "cmd": "python pipelines/split.py --out outputs/split",
                "deps": [
                    {"path": "data", "md5": "d1.dir"},
                    {"path": "src/pkg/data.py", "md5": "a1"},
                ],
                "params": {"params.yaml": {"split": {"test_size": 0.2}}},
                "outs": [{"path": "outputs/split", "md5": "s1.dir"}],
            },
            "train@tree": {
                "cmd": "python pipelines/train.py --model tree",
                "deps": [
                    {"path": "outputs/split/train.parquet", "md5": "t1"},
                    {"path": "src/pkg/training.py", "md5": "b1"},
                ],
                "params": {"params.yaml": {"models.tree": {"grid": {"max_depth": [4, 8]}}}},
                "outs": [{"path": "outputs/models/tree", "md5": "m1.dir"}],
            },
            "evaluate": {
                "cmd": "python pipelines/evaluate.py",
                "deps": [{"path": "outputs/models", "md5": "all1.dir"}],
                "outs": [{"path": "reports/metrics.json", "md5": md5(metrics)}],
            },
        },
    }


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A commit whose dvc.lock and reports/metrics.json agree."""
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    write_lock(tmp_path, lock())
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "metrics.json").write_bytes(METRICS)
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "results")
    return tmp_path


def write_lock(root: Path, content: dict[str, Any]) -> None:
    (root / "dvc.lock").write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")


def test_results_that_match_the_commit_are_current(repo: Path) -> None:
    assert stale_results(repo) == []
    assert committed_results_gate([]).passed


def test_a_changed_param_or_source_file_names_the_stages_it_reruns(repo: Path) -> None:
    rerun = copy.deepcopy(lock())
    stages = rerun["stages"]
    stages["train@tree"]["params"]["params.yaml"]["models.tree"]["grid"]["max_depth"] = [4, 16]
    stages["split"]["deps"][1]["md5"] = "a2"
    # Outputs of other stages differ too (a new split, new models): not inputs, so not reported.
    stages["train@tree"]["deps"][0]["md5"] = "t2"
    stages["evaluate"]["deps"][0]["md5"] = "all2.dir"
    write_lock(repo, rerun)

    stale = stale_results(repo)

    assert stale == [
        "src/pkg/data.py changed (split)",
        "param models.tree.grid.max_depth changed (train@tree)",
    ]
    gate = committed_results_gate(stale)
    assert not gate.passed
    assert gate.value.startswith("stale: src/pkg/data.py changed (split); param models.tree")


def test_a_new_command_and_added_or_removed_stages_are_stale(repo: Path) -> None:
    rerun = copy.deepcopy(lock())
    stages = rerun["stages"]
    stages["train@forest"] = stages.pop("train@tree")
    stages["evaluate"]["cmd"] += " --plots reports/plots"
    write_lock(repo, rerun)

    assert stale_results(repo) == [
        "train@forest: not in the committed dvc.lock",
        "train@tree: no longer in the pipeline",
        "the command changed (evaluate)",
    ]


def test_a_committed_report_that_is_not_the_locked_one_is_stale(repo: Path) -> None:
    (repo / "reports" / "metrics.json").write_bytes(b'{"best_model": "tree", "test": {"f1": 0.7}}')
    git(repo, "commit", "-q", "-am", "hand-edited metrics")

    assert stale_results(repo) == ["reports/metrics.json: not what the committed dvc.lock records"]


def test_a_folder_kept_in_git_is_checked_with_the_hash_dvc_gives_it(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    plots = {"roc.json": b'{"roc": [[0, 0], [1, 1]]}\n', "nested/pr.json": b'{"pr": []}\n'}
    oracle = tmp_path_factory.mktemp("oracle")  # DVC itself hashes the same folder
    for root in (repo / "reports" / "plots", oracle / "plots"):
        for name, content in plots.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(content)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q", "--no-scm"], cwd=oracle, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "add", "-q", "plots"], cwd=oracle, check=True)
    folder_md5 = yaml.safe_load((oracle / "plots.dvc").read_text())["outs"][0]["md5"]
    committed = lock()
    committed["stages"]["evaluate"]["outs"].append({"path": "reports/plots", "md5": folder_md5})
    write_lock(repo, committed)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "plots")

    assert stale_results(repo) == []

    (repo / "reports" / "plots" / "roc.json").write_bytes(b'{"roc": []}\n')
    git(repo, "commit", "-q", "-am", "hand-edited plot")
    assert stale_results(repo) == ["reports/plots: not what the committed dvc.lock records"]


def test_without_a_committed_lock_nothing_is_current(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    write_lock(tmp_path, lock())
    assert stale_results(tmp_path) == ["dvc.lock is not committed"]


def test_many_changes_are_summarised_in_the_gate() -> None:
    stale = [f"src/pkg/m{i}.py changed (train@tree)" for i in range(5)]
    value = committed_results_gate(stale).value
    assert value.endswith("; and 2 more")
    assert value.count("changed") == 3


def test_outputs_rebuilt_from_the_same_inputs_are_compared_byte_for_byte(repo: Path) -> None:
    rerun = copy.deepcopy(lock())
    stages = rerun["stages"]
    stages["train@tree"]["outs"][0]["md5"] = "m2.dir"  # same inputs, another model file
    stages["evaluate"]["deps"][0]["md5"] = "all2.dir"  # follows from it: not an input change
    stages["evaluate"]["outs"][0]["md5"] = md5(b"{}")
    write_lock(repo, rerun)

    assert unreproduced_outputs(repo) == (
        3,
        ["outputs/models/tree (train@tree)", "reports/metrics.json (evaluate)"],
    )


def test_outputs_of_stages_whose_inputs_changed_are_not_compared(repo: Path) -> None:
    rerun = copy.deepcopy(lock())
    rerun["stages"]["train@tree"]["deps"][1]["md5"] = "b2"  # new training code: a new model
    rerun["stages"]["train@tree"]["outs"][0]["md5"] = "m2.dir"
    write_lock(repo, rerun)

    assert unreproduced_outputs(repo) == (2, [])
