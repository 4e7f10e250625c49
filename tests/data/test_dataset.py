"""Checks on the DVC-tracked dataset, and the guard that regenerated data hashes to data.dvc."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from construction_delays.config import Params, load_params
from construction_delays.data import read_table
from construction_delays.sample_data import write_sample
from construction_delays.validation import build_schema, validate_frame

from tests.conftest import ROOT, tool_env

MAX_DUPLICATE_SHARE = 0.001
# Your own data (`data.sample: null`, e.g. after `mlops data adopt`) has no generator to check.
sample_only = pytest.mark.skipif(
    load_params(ROOT / "params.yaml").data.sample is None,
    reason="params.yaml data.sample is null: the data is your own, not the bundled generator's",
)


@pytest.fixture(scope="module")
def params() -> Params:
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="module")
def data_file(params: Params, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checked-out data file; regenerated from data.sample when it is not materialised."""
    path = ROOT / params.data.path
    if path.is_file():
        return path
    sample = params.data.sample
    if sample is None:
        pytest.skip(f"{params.data.path} is not here: `make data` (dvc pull) fetches it")
    target = tmp_path_factory.mktemp("data") / Path(params.data.path).name
    return write_sample(target, rows=sample.rows, seed=sample.seed)


@pytest.fixture(scope="module")
def frame(data_file: Path) -> pd.DataFrame:
    return read_table(data_file)


def test_data_validates_against_the_schema(
    frame: pd.DataFrame, data_file: Path, params: Params
) -> None:
    report = validate_frame(frame, params.data, data_file)
    assert report.valid, report.describe_problems()
    assert report.rows >= params.data.min_rows
    # The schema coerces the numeric columns: they really are numbers, not strings.
    validated = build_schema(params.data).validate(frame)
    for column in params.data.numeric_features:
        assert validated[column].dtype == "float64", column


def test_target_values_are_as_expected(frame: pd.DataFrame, params: Params) -> None:
    target = frame[params.data.target]
    assert target.notna().all()
    if params.data.task == "classification":
        if params.data.sample is not None:
            assert set(target.unique()) == {"Delayed", "On Schedule"}
        assert target.nunique() >= 2
    elif params.data.sample is not None:  # the sample's regression target: days of overrun
        assert (target >= 0).all()


def test_few_duplicate_rows(frame: pd.DataFrame) -> None:
    duplicates = int(frame.duplicated().sum())
    assert duplicates <= MAX_DUPLICATE_SHARE * len(frame), f"{duplicates} duplicate rows"


@sample_only
def test_sample_params_reproduce_the_tracked_file(tmp_path: Path, params: Params) -> None:
    """data.dvc records exactly the bytes the sample generator writes from data.sample."""
    sample = params.data.sample
    assert sample is not None
    name = Path(params.data.path).name
    regenerated = write_sample(tmp_path / name, rows=sample.rows, seed=sample.seed)
    recorded = yaml.safe_load((ROOT / "data.dvc").read_text())["outs"][0]

    assert recorded["path"] == Path(params.data.path).parent.as_posix()
    assert recorded["nfiles"] == 1
    assert recorded["size"] == regenerated.stat().st_size
    assert recorded["md5"] == dvc_dir_md5({name: regenerated})


def dvc_dir_md5(files: dict[str, Path]) -> str:
    """DVC 3's hash of a tracked directory: md5 of its sorted JSON listing, plus '.dir'."""
    listing = [
        {"md5": hashlib.md5(path.read_bytes()).hexdigest(), "relpath": relpath}
        for relpath, path in sorted(files.items())
    ]
    return hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest() + ".dir"


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=tool_env(), text=True, capture_output=True, check=False
    )


def fresh_clone(root: Path) -> Path:
    """A repo as a fresh clone has it: params.yaml and data.dvc, no data, no DVC cache/remote."""
    root.mkdir()
    for args in (["git", "init", "-q", "-b", "main"], ["dvc", "init", "-q"]):
        result = run(args, root)
        assert result.returncode == 0, result.stderr
    shutil.copy2(ROOT / "params.yaml", root / "params.yaml")
    shutil.copy2(ROOT / "data.dvc", root / "data.dvc")
    shutil.copy2(ROOT / ".dvc" / "config", root / ".dvc" / "config")
    return root


def output(result: subprocess.CompletedProcess[str]) -> str:
    """stdout + stderr with rich's line wrapping undone."""
    return " ".join(f"{result.stdout} {result.stderr}".split())


@sample_only
def test_data_pull_regenerates_the_sample_matching_data_dvc(tmp_path: Path, params: Params) -> None:
    repo = fresh_clone(tmp_path / "clone")
    data_path = repo / params.data.path
    recorded = (repo / "data.dvc").read_text()

    result = run(["mlops", "data", "pull"], repo)

    assert result.returncode == 0, output(result)
    assert f"{params.data.path}: regenerated from the sample generator, hash matches data.dvc" in (
        output(result)
    )
    assert data_path.is_file()
    assert (repo / "data.dvc").read_text() == recorded  # verified, not re-recorded
    status = run(["dvc", "status", "--json", "data.dvc"], repo)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout or "{}") == {}


@sample_only
def test_data_pull_refuses_a_sample_that_does_not_match_data_dvc(tmp_path: Path) -> None:
    repo = fresh_clone(tmp_path / "clone")
    dvc_file = repo / "data.dvc"
    recorded = yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]
    tampered = dvc_file.read_text().replace(recorded, "0123456789abcdef0123456789abcdef.dir")
    assert tampered != dvc_file.read_text()
    dvc_file.write_text(tampered)

    result = run(["mlops", "data", "pull"], repo)

    assert result.returncode == 2, output(result)
    assert re.search(r"error: .*does not hash to what (\S*/)?data\.dvc records", output(result))
    assert "Traceback" not in output(result)
    assert dvc_file.read_text() == tampered  # the guard never re-records the hash


@sample_only
def test_a_failed_pull_is_reported_before_the_sample_is_regenerated(tmp_path: Path) -> None:
    repo = fresh_clone(tmp_path / "clone")
    empty = tmp_path / "empty-remote"
    empty.mkdir()
    added = run(["dvc", "remote", "add", "-d", "storage", str(empty)], repo)
    assert added.returncode == 0, added.stderr

    result = run(["mlops", "data", "pull"], repo)

    assert result.returncode == 0, output(result)
    assert "regenerated from the sample generator, hash matches data.dvc" in output(result)
    assert "(`dvc pull` failed: Some of the cache files do not exist" in output(result)
