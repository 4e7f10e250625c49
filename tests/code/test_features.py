"""Preprocessing lives inside the model pipeline: fitted on training rows only, robust at predict time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from construction_delays.config import Params
from construction_delays.data import select_columns, split_frame
from construction_delays.features import build_preprocessor
from construction_delays.sample_data import generate
from construction_delays.training import train_model

from tests.conftest import reference_config

NUMERIC = ["length", "weight"]
CATEGORICAL = ["colour"]


@pytest.fixture
def train() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "length": [1.0, 2.0, np.nan, 4.0, 10.0],
            "weight": [10.0, np.nan, 30.0, 40.0, 50.0],
            "colour": ["red", "blue", "red", np.nan, "green"],
        }
    ).astype({"colour": object})


@pytest.fixture
def test_rows() -> pd.DataFrame:
    """Rows from a very different distribution, with NaNs and a never-seen level."""
    return pd.DataFrame(
        {
            "length": [1000.0, np.nan, 3000.0],
            "weight": [np.nan, -500.0, 700.0],
            "colour": ["purple", np.nan, "blue"],
        }
    ).astype({"colour": object})


def numeric_steps(preprocessor: ColumnTransformer) -> tuple[Any, Any]:
    numeric = preprocessor.named_transformers_["numeric"]
    return numeric.named_steps["impute"], numeric.named_steps["scale"]


def imputed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[NUMERIC].fillna(frame[NUMERIC].median())


def test_statistics_come_from_the_training_rows_only(
    train: pd.DataFrame, test_rows: pd.DataFrame
) -> None:
    preprocessor = build_preprocessor(NUMERIC, CATEGORICAL).fit(train)
    imputer, scaler = numeric_steps(preprocessor)
    everything = pd.concat([train, test_rows], ignore_index=True)

    np.testing.assert_allclose(imputer.statistics_, train[NUMERIC].median())
    np.testing.assert_allclose(scaler.mean_, imputed(train).mean())
    np.testing.assert_allclose(scaler.scale_, imputed(train).std(ddof=0))
    # The same statistics on all rows are far off: the check above can tell them apart.
    assert not np.allclose(imputer.statistics_, everything[NUMERIC].median())
    assert not np.allclose(scaler.mean_, imputed(everything).mean())

    encoder = preprocessor.named_transformers_["categorical"].named_steps["onehot"]
    assert list(encoder.categories_[0]) == ["blue", "green", "red"]  # no "purple" from test rows


def test_transform_uses_training_statistics(train: pd.DataFrame, test_rows: pd.DataFrame) -> None:
    preprocessor = build_preprocessor(NUMERIC, CATEGORICAL).fit(train)
    out = pd.DataFrame(
        preprocessor.transform(test_rows), columns=preprocessor.get_feature_names_out()
    )
    mean, std = imputed(train).mean(), imputed(train).std(ddof=0)

    assert list(out.columns) == ["length", "weight", "colour_blue", "colour_green", "colour_red"]
    assert out.loc[0, "length"] == pytest.approx((1000.0 - mean["length"]) / std["length"])
    assert out.loc[2, "weight"] == pytest.approx((700.0 - mean["weight"]) / std["weight"])


def test_missing_values_are_imputed(train: pd.DataFrame, test_rows: pd.DataFrame) -> None:
    preprocessor = build_preprocessor(NUMERIC, CATEGORICAL).fit(train)
    out = pd.DataFrame(
        preprocessor.transform(test_rows), columns=preprocessor.get_feature_names_out()
    )
    medians = train[NUMERIC].median()
    mean, std = imputed(train).mean(), imputed(train).std(ddof=0)

    assert not out.isna().any().any()
    # NaN -> training median (then scaled like every other value).
    assert out.loc[1, "length"] == pytest.approx(
        (medians["length"] - mean["length"]) / std["length"]
    )
    assert out.loc[0, "weight"] == pytest.approx(
        (medians["weight"] - mean["weight"]) / std["weight"]
    )
    # NaN category -> the most frequent training level ("red").
    assert out.loc[1, ["colour_blue", "colour_green", "colour_red"]].tolist() == [0.0, 0.0, 1.0]
    # Missing values in the training rows do not leak NaN into the fitted output either.
    assert not np.isnan(preprocessor.transform(train)).any()


def test_unseen_category_at_predict_time_does_not_fail(
    train: pd.DataFrame, test_rows: pd.DataFrame
) -> None:
    preprocessor = build_preprocessor(NUMERIC, CATEGORICAL).fit(train)
    out = pd.DataFrame(
        preprocessor.transform(test_rows), columns=preprocessor.get_feature_names_out()
    )

    assert out.loc[0, ["colour_blue", "colour_green", "colour_red"]].tolist() == [0.0, 0.0, 0.0]
    assert out.loc[2, ["colour_blue", "colour_green", "colour_red"]].tolist() == [1.0, 0.0, 0.0]


def test_pipeline_predicts_rows_with_unseen_levels_and_missing_values(
    train: pd.DataFrame, test_rows: pd.DataFrame
) -> None:
    pipeline = Pipeline(
        [("preprocess", build_preprocessor(NUMERIC, CATEGORICAL)), ("model", LogisticRegression())]
    )
    pipeline.fit(train, ["a", "b", "a", "b", "b"])
    predictions = pipeline.predict(test_rows)

    assert len(predictions) == len(test_rows)
    assert set(predictions) <= {"a", "b"}


def test_only_configured_columns_are_used(train: pd.DataFrame) -> None:
    preprocessor = build_preprocessor(["length"], []).fit(train.assign(extra=["x"] * len(train)))
    assert list(preprocessor.get_feature_names_out()) == ["length"]


@pytest.fixture(scope="module")
def small_params() -> Params:
    raw = reference_config().model_dump()
    raw["models"] = {
        "logistic_regression": {
            "estimator": "sklearn.linear_model.LogisticRegression",
            "params": {"max_iter": 500},
            "grid": {"C": [0.1, 1.0]},
        }
    }
    raw["cv"].update(folds=3, n_jobs=1)
    return Params.model_validate(raw)


def test_trained_model_is_fitted_on_the_training_split_only(small_params: Params) -> None:
    data = small_params.data
    frame = generate(rows=300, seed=5)
    train_rows, test_rows = split_frame(frame, data, small_params.split, seed=0)
    features, target = select_columns(train_rows, data)
    all_features, _ = select_columns(frame, data)
    numeric = list(data.numeric_features)

    result = train_model("logistic_regression", small_params, features, target)
    imputer, scaler = numeric_steps(result.model.named_steps["preprocess"])

    train_medians = features[numeric].median()
    train_means = features[numeric].fillna(train_medians).mean()
    full_means = all_features[numeric].fillna(all_features[numeric].median()).mean()
    np.testing.assert_allclose(imputer.statistics_, train_medians)
    np.testing.assert_allclose(scaler.mean_, train_means)
    assert not np.allclose(scaler.mean_, full_means)
    assert result.summary["train_rows"] == len(train_rows)

    test_features, _ = select_columns(test_rows, data)
    unseen = test_features.head(3).assign(**{"Activity Type": "Demolition", "Crew Size": np.nan})
    assert set(result.model.predict(unseen)) <= {"Delayed", "On Schedule"}
