"""The pull-request report against a base branch that predicts something else: the branch's scores
are shown alone, never as a change from numbers about another problem."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from construction_delays.config import parse_params
from construction_delays.report import build_report

from tests.conftest import classification_reference, tool_env


def _write(root: Path, params: dict[str, Any], test: dict[str, float]) -> None:
    (root / "reports").mkdir(exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    metrics = {
        "best_model": "random_forest",
        "selection_metric": "f1",
        "test": test,
        "models": {"random_forest": {"test": test}},
    }
    (root / "reports" / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, env=tool_env(), check=True, capture_output=True)


def _report_against_main(tmp_path: Path, branch: dict[str, Any]) -> tuple[str, list[str]]:
    main = classification_reference()
    main["gates"]["committed_results"] = False  # no dvc.lock here
    _git(tmp_path, "init", "-q", "-b", "main")
    _write(tmp_path, main, {"f1": 0.6423, "roc_auc": 0.7000})
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "main")
    _write(tmp_path, branch, {"f1": 0.9718, "roc_auc": 0.9900})
    built = build_report(tmp_path, parse_params(branch), "main", with_champion=False)
    return built.markdown, built.notes


def test_a_base_with_another_target_gets_no_deltas_arrows_or_comparison_chart(
    tmp_path: Path,
) -> None:
    branch = classification_reference()
    branch["gates"]["committed_results"] = False
    branch["data"]["target"] = "Site Region"  # another problem than main's Schedule Adherence
    branch["data"]["categorical_features"].remove("Site Region")

    markdown, notes = _report_against_main(tmp_path, branch)

    assert any("different problems" in note for note in notes)
    assert "▲" not in markdown and "▼" not in markdown and "+0.3295" not in markdown
    assert "0.6423" not in markdown  # main's score of another problem is not shown beside ours
    assert "xychart-beta" not in markdown
    assert "Not comparable with `main`" in markdown
    assert "| f1 | 0.9718 |" in markdown


def test_the_same_problem_still_shows_the_change_against_the_base(tmp_path: Path) -> None:
    branch = classification_reference()
    branch["gates"]["committed_results"] = False

    markdown, notes = _report_against_main(tmp_path, branch)

    assert not notes
    assert "| f1 | 0.6423 | 0.9718 | 🟢 ▲ +0.3295 |" in markdown
    assert "xychart-beta" in markdown


def test_gates_say_why_the_gates_against_the_base_are_left_out(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from typer.testing import CliRunner

    from construction_delays.cli import app

    branch = classification_reference()
    branch["gates"]["committed_results"] = False
    branch["data"]["target"] = "Site Region"
    branch["data"]["categorical_features"].remove("Site Region")
    _report_against_main(tmp_path, branch)
    monkeypatch.chdir(tmp_path)

    output = CliRunner().invoke(app, ["gates", "--base", "main"], terminal_width=400).output

    assert "vs main" not in output
    assert "note: `main` predicts 'Schedule Adherence'" in output
    assert "different problems, so no regression gate compares them" in output


def test_the_missing_values_gate_names_a_column_only_when_one_has_missing_values() -> None:
    from construction_delays.gates import evaluate_gates

    gates = parse_params(classification_reference()).gates
    assert gates.data.max_missing_share is not None

    def shown(missing: dict[str, int]) -> str:
        validation = {"rows": 200, "missing_values": missing, "valid": True, "problems": []}
        results = evaluate_gates(gates, {"test": {}}, validation, {})
        return next(r.value for r in results if r.gate == "data missing values (worst column)")

    assert shown({}) == "0.0%"
    assert shown({"Crew Size": 0, "Site Region": 0}) == "0.0%"
    assert shown({"Crew Size": 0, "Site Region": 4}) == "2.0% (Site Region)"
