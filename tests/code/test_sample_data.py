"""The bundled synthetic data: deterministic (frame and CSV bytes), shaped as params.yaml declares."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from construction_delays.config import DataParams, parse_params
from construction_delays.data import read_table
from construction_delays.sample_data import (
    DELAYED,
    MISSING_RATES,
    ON_SCHEDULE,
    REGRESSION_TARGET,
    TARGET,
    generate,
    write_sample,
)

from tests.conftest import reference_config

ROWS = 2000


@pytest.fixture(scope="module")
def data() -> DataParams:
    return reference_config().data


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return generate(rows=ROWS, seed=42)


def test_same_seed_gives_identical_frame(sample: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(generate(rows=ROWS, seed=42), sample)


def test_different_seed_gives_different_frame(sample: pd.DataFrame) -> None:
    other = generate(rows=ROWS, seed=43)
    assert other.shape == sample.shape
    assert not other.equals(sample)
    assert (other["Project Schedules"] != sample["Project Schedules"]).mean() > 0.9


def test_write_sample_bytes_are_reproducible(tmp_path: Path) -> None:
    first = write_sample(tmp_path / "a" / "sample.csv", rows=500, seed=7)
    second = write_sample(tmp_path / "b" / "sample.csv", rows=500, seed=7)
    other_seed = write_sample(tmp_path / "c" / "sample.csv", rows=500, seed=8)

    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other_seed.read_bytes()
    assert b"\r\n" not in first.read_bytes()
    assert sorted(p.name for p in first.parent.iterdir()) == ["sample.csv"]  # no temp file left


def test_write_sample_parquet_roundtrips(tmp_path: Path) -> None:
    path = write_sample(tmp_path / "sample.parquet", rows=300, seed=3)
    pd.testing.assert_frame_equal(read_table(path), generate(rows=300, seed=3))


def test_csv_matches_the_generated_frame(tmp_path: Path) -> None:
    path = write_sample(tmp_path / "sample.csv", rows=300, seed=5)
    from_csv = read_table(path)
    frame = generate(rows=300, seed=5)

    assert list(from_csv.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(from_csv, frame, check_dtype=False, rtol=1e-5)


def test_columns_are_those_declared_in_params(sample: pd.DataFrame, data: DataParams) -> None:
    assert data.target == TARGET
    assert set(sample.columns) == {*data.feature_columns, data.target, REGRESSION_TARGET}
    assert len(sample) == ROWS
    for column in data.numeric_features:
        assert pd.api.types.is_numeric_dtype(sample[column]), column
    for column in data.categorical_features:
        assert not pd.api.types.is_numeric_dtype(sample[column]), column


def test_both_classes_present(sample: pd.DataFrame, data: DataParams) -> None:
    shares = sample[TARGET].value_counts(normalize=True)
    assert set(shares.index) == {DELAYED, ON_SCHEDULE}
    assert data.positive_class == DELAYED
    assert shares.min() > 0.1  # learnable, not a degenerate imbalance
    assert not sample[TARGET].isna().any()


def test_missing_values_only_in_intended_columns(sample: pd.DataFrame) -> None:
    missing = sample.isna().mean()
    assert set(missing[missing > 0].index) == set(MISSING_RATES)
    for column, rate in MISSING_RATES.items():
        assert missing[column] == pytest.approx(rate, abs=0.02), column


def test_regression_target_is_the_overrun_of_delayed_activities(sample: pd.DataFrame) -> None:
    delayed = sample[TARGET] == "Delayed"
    assert (sample.loc[~delayed, REGRESSION_TARGET] == 0).all()
    assert (sample.loc[delayed, REGRESSION_TARGET] > 0).mean() > 0.95
    assert sample[REGRESSION_TARGET].notna().all()


@pytest.mark.parametrize("name", ["sample.csv.gz", "EXPORT.CSV", "sample.pq"])
def test_compressed_and_upper_case_names_are_tables_too(tmp_path: Path, name: str) -> None:
    first = write_sample(tmp_path / "a" / name, rows=200, seed=5)
    again = write_sample(tmp_path / "b" / name, rows=200, seed=5)
    assert first.read_bytes() == again.read_bytes()  # gzip's header time is fixed
    pd.testing.assert_frame_equal(read_table(first), generate(rows=200, seed=5), check_dtype=False)
    raw = reference_config().model_dump(mode="json")
    raw["data"]["path"] = f"data/{name}"
    assert parse_params(raw).data.path == f"data/{name}"
