"""params.yaml loading: the shipped file is valid; every error names the file and the dotted field."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from construction_delays.config import (
    CLASSIFICATION_METRICS,
    ConfigError,
    Params,
    load_params,
    parse_params,
)

from tests.conftest import ROOT, classification_reference

Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def raw_params() -> dict[str, Any]:
    return classification_reference()


def write_params(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def names_file_and_field(path: Path, field: str) -> str:
    """Regex: the message starts with the file and lists ``field`` as one of the problems."""
    return rf"(?s)^{re.escape(str(path))}: .*\n  - {re.escape(field)}: "


def test_shipped_params_load() -> None:
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params = load_params(ROOT / "params.yaml")

    assert isinstance(params, Params)
    assert params.data.path == shipped["data"]["path"]
    assert params.data.target == shipped["data"]["target"]
    if params.data.task == "classification":
        assert params.evaluate.metric in CLASSIFICATION_METRICS
        assert params.higher_is_better
    enabled = {n for n, spec in shipped["models"].items() if spec.get("enabled", True)}
    assert set(params.enabled_models) == enabled
    assert params.data.target not in params.data.feature_columns


def _unknown_top_level_key(raw: dict[str, Any]) -> None:
    raw["trainig"] = {"epochs": 3}


def _rmse_for_classification(raw: dict[str, Any]) -> None:
    raw["evaluate"]["metric"] = "rmse"


def _no_enabled_model(raw: dict[str, Any]) -> None:
    for spec in raw["models"].values():
        spec["enabled"] = False


def _empty_grid_list(raw: dict[str, Any]) -> None:
    raw["models"]["decision_tree"]["grid"]["max_depth"] = []


def _non_dotted_estimator(raw: dict[str, Any]) -> None:
    raw["models"]["decision_tree"]["estimator"] = "DecisionTreeClassifier"


def _target_as_feature(raw: dict[str, Any]) -> None:
    raw["data"]["numeric_features"].append(raw["data"]["target"])


def _feature_listed_twice(raw: dict[str, Any]) -> None:
    raw["data"]["categorical_features"].append("Crew Size")


def _data_not_csv_or_parquet(raw: dict[str, Any]) -> None:
    raw["data"]["path"] = "data/construction_activities.xlsx"


@pytest.mark.parametrize(
    ("mutate", "field", "detail"),
    [
        (_unknown_top_level_key, "trainig", "Extra inputs are not permitted"),
        (_rmse_for_classification, "(top level)", "evaluate.metric 'rmse' does not apply"),
        (_no_enabled_model, "(top level)", "models: enable at least one model"),
        (_empty_grid_list, "models.decision_tree.grid", "at least one value: ['max_depth']"),
        (_non_dotted_estimator, "models.decision_tree.estimator", "'DecisionTreeClassifier'"),
        (_target_as_feature, "data", "target 'Schedule Adherence' is also listed as a feature"),
        (_feature_listed_twice, "data", "listed twice among the features: ['Crew Size']"),
        (_data_not_csv_or_parquet, "data.path", "data must be a .csv"),
    ],
    ids=lambda value: value.__name__.strip("_") if callable(value) else None,
)
def test_invalid_params_name_file_and_field(
    tmp_path: Path, raw_params: dict[str, Any], mutate: Mutation, field: str, detail: str
) -> None:
    raw = copy.deepcopy(raw_params)
    mutate(raw)
    path = write_params(tmp_path, raw)

    with pytest.raises(ConfigError, match=names_file_and_field(path, field)) as caught:
        load_params(path)
    assert detail in str(caught.value)


def test_every_problem_is_reported_at_once(tmp_path: Path, raw_params: dict[str, Any]) -> None:
    raw = copy.deepcopy(raw_params)
    _empty_grid_list(raw)
    _data_not_csv_or_parquet(raw)
    raw["split"]["test_size"] = 1.5
    path = write_params(tmp_path, raw)

    with pytest.raises(ConfigError, match=r"3 problem\(s\)") as caught:
        load_params(path)
    message = str(caught.value)
    for field in ("models.decision_tree.grid", "data.path", "split.test_size"):
        assert f"\n  - {field}: " in message


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "params.yaml"
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: file not found"):
        load_params(path)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  path: [unclosed\n  target: y\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: not valid YAML"):
        load_params(path)


def test_a_key_written_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    """PyYAML would keep the second `grid:` silently; DVC refuses the file later."""
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    twice = text.replace("    grid:\n", "    grid: {}\n    grid:\n", 1)
    assert twice != text
    path = tmp_path / "params.yaml"
    path.write_text(twice, encoding="utf-8")
    line = twice.splitlines().index("    grid: {}") + 2  # the repeated key's line, 1-based
    with pytest.raises(ConfigError, match=rf"(?s)key 'grid' appears twice.*line {line},"):
        load_params(path)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: expected a mapping.*list"):
        load_params(path)


def test_regression_metric_accepted_only_for_regression(raw_params: dict[str, Any]) -> None:
    raw = copy.deepcopy(raw_params)
    raw["data"]["task"] = "regression"
    raw["data"]["positive_class"] = None
    raw["evaluate"]["metric"] = "rmse"
    raw["gates"] = {"metrics": {"r2": 0.3}, "max_regression": {"rmse": 2.0}}
    with pytest.raises(ConfigError, match=r"monitoring\.max_metric_drop: \['f1'"):
        parse_params(raw)
    raw["monitoring"] = {"max_metric_drop": {"rmse": 0.5}}
    params = parse_params(raw)
    assert not params.higher_is_better

    raw["evaluate"]["metric"] = "f1"
    with pytest.raises(ConfigError, match=r"evaluate\.metric 'f1' does not apply to a regression"):
        parse_params(raw, Path("custom.yaml"))


def test_positive_class_rejected_for_regression(raw_params: dict[str, Any]) -> None:
    raw = copy.deepcopy(raw_params)
    raw["data"]["task"] = "regression"
    raw["evaluate"]["metric"] = "mae"
    with pytest.raises(ConfigError, match=r"(?s)^custom\.yaml: .*\n  - data: positive_class"):
        parse_params(raw, Path("custom.yaml"))


def test_gates_must_use_metrics_of_the_task(raw_params: dict[str, Any]) -> None:
    raw = copy.deepcopy(raw_params)
    raw["gates"]["max_regression"] = {"rmse": 0.1}
    with pytest.raises(
        ConfigError,
        match=r"gates\.max_regression: \['rmse'\] do not apply to a classification task",
    ):
        parse_params(raw, Path("custom.yaml"))


def test_negative_regression_tolerance_rejected(raw_params: dict[str, Any]) -> None:
    raw = copy.deepcopy(raw_params)
    raw["gates"]["max_regression"] = {"f1": -0.1}
    with pytest.raises(
        ConfigError, match=r"gates\.max_regression\.f1: .*greater than or equal to 0"
    ):
        parse_params(raw, Path("custom.yaml"))


def test_monitoring_thresholds_are_checked(raw_params: dict[str, Any]) -> None:
    raw = copy.deepcopy(raw_params)
    assert parse_params(raw).monitoring.psi_drift == 0.25
    raw["monitoring"] = {"max_metric_drop": {"f1": -0.1}}
    with pytest.raises(
        ConfigError,
        match=r"monitoring\.max_metric_drop\.f1: Input should be greater than or equal to 0",
    ):
        parse_params(raw, Path("custom.yaml"))
    raw["monitoring"] = {"psi_warning": 0.3, "psi_drift": 0.2}
    with pytest.raises(
        ConfigError, match=r"monitoring: psi_warning \(0\.3\) must not exceed psi_drift"
    ):
        parse_params(raw, Path("custom.yaml"))
