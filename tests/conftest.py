"""Shared fixtures: real temporary projects (git + DVC + MLflow SQLite store) built from this repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from construction_delays.config import Params, parse_params

ROOT = Path(__file__).resolve().parents[1]
# The project's names, read where they are defined (a generated project has its own, of any length).
SLUG = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
PROJECT_FILES = ("dvc.yaml", "params.yaml", ".gitignore", "Makefile", "pipelines", "src")


def tool_env() -> dict[str, str]:
    """This interpreter's tools first on PATH; the default (local) MLflow store; no telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = "Test"
    env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "test@example.com"
    return env


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=tool_env(), text=True, capture_output=True, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


@dataclass
class Project:
    root: Path
    # What the fixture's first `mlops run` printed (stdout + stderr), for tests of the output.
    first_run_output: str = ""

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(list(args), self.root, check=check)

    def mlops(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("mlops", *args, check=check)

    @property
    def params(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def write_params(self, params: dict[str, Any]) -> None:
        (self.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "-m", message)

    def make(self, target: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A Makefile target exactly as CI runs it, but in this test's environment (no uv sync)."""
        return self.run(
            "make",
            "--no-print-directory",
            target,
            "RUN=",
            f"UV={shutil.which('true')}",
            check=check,
        )

    def read(self, relative: str) -> bytes:
        return (self.root / relative).read_bytes()


def small_zoo(task: str = "classification") -> dict[str, Any]:
    """Two quick models with tiny grids: enough to exercise the zoo without minutes of fitting."""
    if task == "regression":
        return {
            "ridge": {"estimator": "sklearn.linear_model.Ridge", "grid": {"alpha": [0.1, 1.0]}},
            "decision_tree": {
                "estimator": "sklearn.tree.DecisionTreeRegressor",
                "params": {"random_state": 0},
                "grid": {"max_depth": [3, 6]},
            },
        }
    return {
        "logistic_regression": {
            "estimator": "sklearn.linear_model.LogisticRegression",
            "params": {"max_iter": 500},
            "grid": {"C": [0.1, 1.0]},
        },
        "decision_tree": {
            "estimator": "sklearn.tree.DecisionTreeClassifier",
            "params": {"random_state": 0},
            "grid": {"max_depth": [3, 6]},
        },
    }


def copy_from_repo(names: Iterable[str], root: Path) -> None:
    """Copy these files and folders of this repository into ``root`` (no bytecode caches)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)


def init_project(root: Path, params: dict[str, Any], data: pd.DataFrame | None = None) -> Project:
    """Copy the pipeline into ``root`` with ``params``; track ``data`` (or a small sample) with DVC."""
    copy_from_repo(PROJECT_FILES, root)
    project = Project(root)
    project.write_params(params)
    project.run("git", "init", "-q", "-b", "main")
    project.run("dvc", "init", "-q")
    shutil.copy2(ROOT / ".dvc" / "config", root / ".dvc" / "config")
    data_path = root / params["data"]["path"]
    data_path.parent.mkdir(parents=True, exist_ok=True)
    if data is None:
        sample = params["data"]["sample"]
        project.mlops(
            "data",
            "generate",
            "--out",
            str(data_path),
            "--rows",
            str(sample["rows"]),
            "--seed",
            str(sample["seed"]),
        )
    elif data_path.suffix == ".parquet":
        data.to_parquet(data_path, index=False)
    else:
        data.to_csv(data_path, index=False)
    project.run("dvc", "add", "-q", str(data_path.parent.relative_to(root)))
    project.commit("initial project")
    return project


def describes_the_sample(raw: dict[str, Any]) -> bool:
    """params.yaml is the bundled sample's classification task (this repository as shipped)."""
    from construction_delays.sample_data import TARGET

    data = raw["data"]
    return (
        bool(data.get("sample"))
        and data.get("task", "classification") == "classification"
        and data.get("target") == TARGET
    )


def classification_reference() -> dict[str, Any]:
    """The classification setup the library tests exercise, on the bundled sample: params.yaml as it
    is in this repository; in a project whose params.yaml describes something else (a regression
    project generated from it, or the user's own data after `mlops data adopt`), the sample's
    classification task in its place, with the rest of params.yaml (cv, split, report...) kept."""
    from construction_delays.sample_data import DELAYED, REGRESSION_TARGET, TARGET, generate

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    if describes_the_sample(raw):
        return raw
    sample = generate(rows=20, seed=0)
    categorical = [
        c for c in sample.columns if not pd.api.types.is_numeric_dtype(sample[c]) and c != TARGET
    ]
    numeric = [c for c in sample.columns if c not in {*categorical, TARGET, REGRESSION_TARGET}]
    raw["data"] = {
        "path": "data/construction_activities.csv",
        "task": "classification",
        "target": TARGET,
        "positive_class": DELAYED,
        "numeric_features": numeric,
        "categorical_features": categorical,
        "group": None,
        "min_rows": 100,
        "sample": {"rows": 5000, "seed": 42},
    }
    raw["split"] = {**raw.get("split", {}), "stratify": True}
    raw["models"] = {
        **small_zoo(),
        "random_forest": {
            "estimator": "sklearn.ensemble.RandomForestClassifier",
            "params": {"n_estimators": 50, "random_state": 42, "n_jobs": 1},
            "grid": {"max_depth": [8]},
        },
    }
    raw["evaluate"] = {"metric": "f1"}
    raw["gates"] = {
        **raw.get("gates", {}),
        "metrics": {"f1": 0.55, "roc_auc": 0.75},
        "max_regression": {"f1": 0.02, "roc_auc": 0.02},
        "data": {"min_rows": 1000, "max_missing_share": 0.1},
    }
    raw["behaviour"] = {"min_lift": 0.05}  # the project's own checks name its own features
    raw["monitoring"] = {**raw.get("monitoring", {}), "max_metric_drop": {"f1": 0.05}}
    return raw


def reference_config() -> Params:
    """``classification_reference`` validated: what the unit tests build models and schemas from."""
    return parse_params(classification_reference())


MODEL = classification_reference()["mlflow"]["registered_model"]


def reference_params(rows: int = 600) -> dict[str, Any]:
    params = classification_reference()
    params["data"]["sample"]["rows"] = rows
    params["data"]["min_rows"] = 50
    params["gates"]["data"]["min_rows"] = 100
    params["gates"]["metrics"] = {"f1": 0.5, "roc_auc": 0.65}  # 600 rows learn less than 5000
    params["models"] = small_zoo()
    return params


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Project]:
    def factory(
        params: dict[str, Any] | None = None,
        data: pd.DataFrame | None = None,
        name: str = "project",
    ) -> Project:
        return init_project(tmp_path / name, params or reference_params(), data)

    return factory


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A small reference project that has run the pipeline once (module-scoped: runs cost seconds)."""
    project = init_project(tmp_path_factory.mktemp("trained") / "project", reference_params())
    first = project.mlops("run")
    project.first_run_output = first.stdout + first.stderr
    project.commit("first run")
    return project
