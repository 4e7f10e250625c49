"""The train/test split: seeded, stratified, and stable as the data grows, so that promotion can
re-score the champion on the next model's test split without scoring it on its own training rows."""

from __future__ import annotations

import pandas as pd
import pytest

from construction_delays.config import Params, parse_params
from construction_delays.data import DataError, split_frame
from construction_delays.sample_data import generate

from tests.conftest import reference_config


def params_with(**split: object) -> Params:
    raw = reference_config().model_dump(mode="json")
    raw["split"] |= split
    return parse_params(raw)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate(rows=3000, seed=11)


def test_stratified_split_keeps_each_class_share_exactly(frame: pd.DataFrame) -> None:
    params = params_with(test_size=0.25, stratify=True)
    target = params.data.target

    train, test = split_frame(frame, params.data, params.split, seed=42)

    assert len(train) + len(test) == len(frame)
    assert not set(train.index) & set(test.index)
    for label, rows in frame.groupby(target):
        assert (test[target] == label).sum() == round(len(rows) * 0.25)


def test_unstratified_split_takes_the_configured_share(frame: pd.DataFrame) -> None:
    params = params_with(test_size=0.3, stratify=False)
    _, test = split_frame(frame, params.data, params.split, seed=42)
    assert len(test) == round(len(frame) * 0.3)


@pytest.mark.parametrize("stratify", [True, False])
def test_new_rows_leave_the_old_rows_on_their_side(frame: pd.DataFrame, stratify: bool) -> None:
    """The regression this guards: with a positional random split, adding 1,000 rows to 5,000
    put 53% of the new test rows among the old training rows."""
    params = params_with(stratify=stratify)
    old = frame.iloc[:2400]
    old_train, old_test = split_frame(old, params.data, params.split, seed=42)

    train, test = split_frame(frame, params.data, params.split, seed=42)

    seen_in_training = test.index.isin(old_train.index).sum()
    assert seen_in_training <= 0.01 * len(test)
    # Only rows near the class's cut-off move (to train here: harmless, they leave the test).
    assert old_test.index.isin(test.index).mean() >= 0.95
    assert train.index.isin(old_train.index).sum() >= 0.99 * len(old_train)


def test_the_split_follows_the_rows_not_their_order_and_survives_a_dtype_change(
    frame: pd.DataFrame,
) -> None:
    params = params_with()
    _, test = split_frame(frame, params.data, params.split, seed=42)

    shuffled = frame.sample(frac=1.0, random_state=3)
    _, test_of_shuffled = split_frame(shuffled, params.data, params.split, seed=42)
    assert sorted(test_of_shuffled.index) == sorted(test.index)

    # A missing value arriving turns a column of whole numbers into floats: same hashes.
    floats = frame.astype({"Subcontractor Count": "float64"})
    _, test_of_floats = split_frame(floats, params.data, params.split, seed=42)
    assert list(test_of_floats.index) == list(test.index)


def test_another_seed_draws_another_split(frame: pd.DataFrame) -> None:
    params = params_with()
    _, test = split_frame(frame, params.data, params.split, seed=42)
    _, again = split_frame(frame, params.data, params.split, seed=42)
    _, other = split_frame(frame, params.data, params.split, seed=43)

    assert list(again.index) == list(test.index)
    shared = len(set(other.index) & set(test.index)) / len(test)
    assert 0.1 < shared < 0.3  # about test_size, as for independent draws


def test_whole_groups_stay_on_their_side_as_new_groups_arrive(frame: pd.DataFrame) -> None:
    raw = reference_config().model_dump(mode="json")
    raw["data"]["group"] = "Project ID"
    params = parse_params(raw)
    grouped = frame.assign(**{"Project ID": [f"P{i % 150:03d}" for i in range(len(frame))]})
    old = grouped[grouped["Project ID"] < "P120"]
    _, old_test = split_frame(old, params.data, params.split, seed=42)

    train, test = split_frame(grouped, params.data, params.split, seed=42)

    old_test_groups, test_groups = set(old_test["Project ID"]), set(test["Project ID"])
    assert not set(train["Project ID"]) & test_groups
    assert len(test_groups - old_test_groups) <= 0.35 * len(test_groups)  # mostly the new ones
    assert len(old_test_groups - test_groups) <= 2  # at most the boundary group moves


def test_categorical_csv_columns_reach_the_model_as_the_scorer_reads_them(tmp_path) -> None:
    """Codes with leading zeros, numbers with blanks and lower-case booleans stay the file's text,
    as `mlops score` and REST clients send them: guessed types would make them unknown
    categories at prediction time (silently other predictions)."""
    from construction_delays.data import read_table, select_columns, text_columns
    from construction_delays.scoring import read_chunks

    raw = reference_config().model_dump(mode="json", by_alias=True)
    raw["data"] |= {
        "target": "late",
        "positive_class": "yes",
        "numeric_features": ["size"],
        "categorical_features": ["zip", "member", "region code"],
        "group": None,
    }
    raw["behaviour"] = {}
    data = parse_params(raw).data
    path = tmp_path / "export.csv"
    path.write_text(
        "size,zip,member,region code,late\n"
        "1.5,00005,true,3,yes\n"
        "2.0,00012,false,,no\n"
        "3.5,00005,false,4,no\n",
        encoding="utf-8",
    )
    features, _ = select_columns(read_table(path, text_columns(data)), data)
    assert features["zip"].tolist() == ["00005", "00012", "00005"]
    assert features["member"].tolist() == ["true", "false", "false"]
    assert features["region code"].iloc[[0, 2]].tolist() == ["3", "4"]
    assert pd.isna(features["region code"].iloc[1])
    categorical = list(data.categorical_features)
    (scored,) = read_chunks(path, data.feature_columns, categorical, chunk_size=10)
    pd.testing.assert_frame_equal(
        features[categorical].astype(object), scored[categorical].astype(object)
    )


def test_the_missing_value_words_are_pandas_own() -> None:
    """CSV_MISSING_VALUES is handed to pyarrow so both readers agree: it must stay pandas' list."""
    from pandas._libs.parsers import STR_NA_VALUES

    from construction_delays.data import CSV_MISSING_VALUES

    assert set(CSV_MISSING_VALUES) == set(STR_NA_VALUES)


@pytest.mark.parametrize(
    ("stratify", "rare_rows", "test_size", "side"),
    [(True, 2, 0.2, "test"), (False, 1, 0.2, "test"), (True, 1, 0.6, "training")],
)
def test_a_class_missing_from_either_side_stops_the_split(
    stratify: bool, rare_rows: int, test_size: float, side: str
) -> None:
    """Without test rows it scored f1 0.0 and roc_auc NaN (or lost roc_auc silently); without
    training rows the model cannot predict it."""
    params = params_with(test_size=test_size, stratify=stratify)
    target = params.data.target
    frame = generate(rows=200, seed=3)
    frame.loc[frame.index[:rare_rows], target] = "Cancelled"
    with pytest.raises(
        DataError, match=rf"class 'Cancelled' \(\d row\(s\)\) of .* has no row in the {side} split"
    ):
        split_frame(frame, params.data, params.split, seed=42)
