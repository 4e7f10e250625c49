"""Batch scoring and the predictor's fast path, in-process on a real model (no server)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from construction_delays.config import ModelSpec, load_params
from construction_delays.data import read_table, select_columns, text_columns
from construction_delays.models import build_pipeline
from construction_delays.scoring import (
    FeatureSchema,
    ModelSourceError,
    Predictor,
    Scorer,
    ScoringInputError,
    load_scorer,
    parse_registry_uri,
    probe_columns,
    score_file,
)

from tests.conftest import reference_config
from tests.serving.conftest import (
    CODES_DATA,
    ServingProject,
    integer_coded_table,
    records_of,
    train_on_codes,
)


@pytest.fixture(scope="module")
def scorer(local_project: ServingProject) -> Scorer:
    return load_scorer(
        str(local_project.model_file),
        local_project.root,
        load_params(local_project.root / "params.yaml"),
    )


@pytest.fixture(scope="module")
def table(local_project: ServingProject) -> pd.DataFrame:
    """The features plus an id column and the target-like extra column a real file would have."""
    frame = local_project.features.copy()
    frame.insert(0, "activity_id", [f"A{i:05d}" for i in range(len(frame))])
    frame["notes"] = "extra columns are ignored"
    return frame


def expected(project: ServingProject, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    features = frame[list(project.features.columns)]
    return project.model.predict(features), project.model.predict_proba(features)


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


@pytest.mark.parametrize(
    ("source", "target"),
    [("csv", "csv"), ("parquet", "parquet"), ("csv", "parquet"), ("parquet", "csv")],
)
def test_scores_match_the_model_across_chunks(
    scorer: Scorer,
    local_project: ServingProject,
    table: pd.DataFrame,
    tmp_path: Path,
    source: str,
    target: str,
) -> None:
    input_path = write(table, tmp_path / f"in.{source}")
    output_path = tmp_path / f"out.{target}"

    summary = score_file(
        scorer, input_path, output_path, chunk_size=137, id_column="activity_id", progress=False
    )

    out = read(output_path)
    labels, probabilities = expected(local_project, table)
    assert summary.rows == len(table) and summary.chunks == -(-len(table) // 137)
    assert list(out.columns) == [
        "activity_id",
        "prediction",
        "probability_Delayed",
        "probability_On Schedule",
    ]
    assert out["activity_id"].tolist() == table["activity_id"].tolist()
    assert out["prediction"].tolist() == list(labels)
    np.testing.assert_allclose(out.iloc[:, 2:].to_numpy(), probabilities, rtol=1e-12, atol=1e-15)


def test_chunk_size_does_not_change_results(
    scorer: Scorer, table: pd.DataFrame, tmp_path: Path
) -> None:
    input_path = write(table, tmp_path / "in.parquet")
    outputs = []
    for size in (1000, 64, 7):
        score_file(
            scorer, input_path, tmp_path / f"out{size}.parquet", chunk_size=size, progress=False
        )
        outputs.append(pd.read_parquet(tmp_path / f"out{size}.parquet"))

    for other in outputs[1:]:
        pd.testing.assert_frame_equal(outputs[0], other)
    assert outputs[0]["row"].tolist() == list(range(len(table)))


def test_missing_column_is_named(scorer: Scorer, table: pd.DataFrame, tmp_path: Path) -> None:
    input_path = write(table.drop(columns=["Crew Size", "Site Region"]), tmp_path / "in.csv")

    with pytest.raises(
        ScoringInputError, match=r"in\.csv: missing column\(s\) \['Crew Size', 'Site Region'\]"
    ):
        score_file(scorer, input_path, tmp_path / "out.csv", progress=False)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_non_numeric_values_name_column_and_rows_and_write_nothing(
    scorer: Scorer, table: pd.DataFrame, tmp_path: Path, suffix: str
) -> None:
    bad = table.astype({"Crew Size": object, "Weather Delay Days": object})
    bad.loc[[3, 250, 999], "Crew Size"] = ["abc", "12 people", "x"]
    bad.loc[[500], "Weather Delay Days"] = ["inf"]
    for column in ("Crew Size", "Weather Delay Days"):  # Parquet needs one type: text columns
        bad[column] = bad[column].map(lambda v: None if pd.isna(v) else str(v))
    input_path = write(bad, tmp_path / f"in.{suffix}")
    output_path = tmp_path / "out.csv"
    output_path.write_text("previous output\n")

    with pytest.raises(ScoringInputError) as raised:
        score_file(scorer, input_path, output_path, chunk_size=100, progress=False)

    message = str(raised.value)
    assert f"in.{suffix}" in message
    assert "column 'Crew Size'" in message and "rows 3, 250, 999" in message
    assert "column 'Weather Delay Days'" in message and "rows 500" in message
    assert output_path.read_text() == "previous output\n"
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("content", "match"),
    [("", "file is empty"), ("Crew Size\n", "missing column"), (None, "file not found")],
    ids=["empty", "header-only-missing-columns", "absent"],
)
def test_unusable_files(scorer: Scorer, tmp_path: Path, content: str | None, match: str) -> None:
    path = tmp_path / "in.csv"
    if content is not None:
        path.write_text(content)

    with pytest.raises(ScoringInputError, match=match):
        score_file(scorer, path, tmp_path / "out.csv", progress=False)


@pytest.mark.parametrize("where", ["header", "values"])
def test_a_file_that_is_not_utf8_says_to_save_it_as_csv_utf8(
    scorer: Scorer, table: pd.DataFrame, tmp_path: Path, where: str
) -> None:
    """A spreadsheet's "CSV" export in the Windows code page (cp1252): é is one byte, not UTF-8."""
    frame = table.head(20).copy()
    if where == "header":
        frame = frame.rename(columns={"notes": "remarqué"})
    else:
        frame[scorer.schema.categorical[0]] = "Orléans"
    path = tmp_path / "in.csv"
    frame.to_csv(path, index=False, encoding="cp1252")

    with pytest.raises(ScoringInputError, match="not UTF-8 text; save it as CSV UTF-8"):
        score_file(scorer, path, tmp_path / "out.csv", progress=False)


def test_header_only_file(scorer: Scorer, table: pd.DataFrame, tmp_path: Path) -> None:
    path = write(table.head(0), tmp_path / "in.csv")

    with pytest.raises(ScoringInputError, match="no rows"):
        score_file(scorer, path, tmp_path / "out.csv", progress=False)
    assert not (tmp_path / "out.csv").exists()


def test_output_format_is_checked(scorer: Scorer, table: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ScoringInputError, match=r"\.json: the output must be"):
        score_file(scorer, write(table, tmp_path / "in.csv"), tmp_path / "out.json", progress=False)


def test_outputs_that_would_destroy_or_cannot_hold_the_predictions_are_refused(
    scorer: Scorer, table: pd.DataFrame, tmp_path: Path
) -> None:
    source = write(table.head(20).assign(prediction=1), tmp_path / "in.csv")
    before = source.read_bytes()
    (tmp_path / "taken.csv").mkdir()
    (tmp_path / "a-file").write_text("")
    cases = {
        source: "is the input file",
        tmp_path / "taken.csv": "is a directory",
        tmp_path / "a-file" / "out.csv": "a-file is a file, not a directory",
    }
    for output, message in cases.items():
        with pytest.raises(ScoringInputError, match=message):
            score_file(scorer, source, output, progress=False)
    with pytest.raises(ScoringInputError, match="the output has its own 'prediction' column"):
        score_file(scorer, source, tmp_path / "out.csv", id_column="prediction", progress=False)
    with pytest.raises(ScoringInputError, match="no column 'ticket' for --id-column"):
        score_file(scorer, source, tmp_path / "out.csv", id_column="ticket", progress=False)
    assert source.read_bytes() == before


def test_a_compressed_or_upper_case_csv_is_scored_like_the_plain_one(
    scorer: Scorer, table: pd.DataFrame, tmp_path: Path
) -> None:
    plain = score_file(
        scorer, write(table, tmp_path / "in.csv"), tmp_path / "a.csv", progress=False
    )
    packed = tmp_path / "IN.CSV.GZ"
    table.to_csv(packed, index=False, compression="gzip")
    score_file(scorer, packed, tmp_path / "b.csv", progress=False)
    assert plain.rows == len(table)
    pd.testing.assert_frame_equal(read(tmp_path / "a.csv"), read(tmp_path / "b.csv"))


def test_missing_values_are_scored_like_the_pipeline(
    scorer: Scorer, local_project: ServingProject, table: pd.DataFrame, tmp_path: Path
) -> None:
    holes = table.head(50).copy()
    holes.loc[::2, "Crew Size"] = np.nan
    holes.loc[::3, "Activity Type"] = np.nan
    holes.loc[::5, "Site Region"] = "Atlantis"  # unseen category
    score_file(scorer, write(holes, tmp_path / "in.csv"), tmp_path / "out.csv", progress=False)

    labels, _ = expected(local_project, holes)
    assert read(tmp_path / "out.csv")["prediction"].tolist() == list(labels)


def test_words_for_missing_mean_the_same_in_training_and_scoring(
    scorer: Scorer, local_project: ServingProject, table: pd.DataFrame, tmp_path: Path
) -> None:
    """ "None" and "<NA>" in a CSV's category column are missing values to pandas, which reads the
    training data; pyarrow, which reads a file to score, is told the same."""
    words = table.head(60).copy()
    words.loc[::2, "Activity Type"] = "None"
    words.loc[1::3, "Site Region"] = "<NA>"
    path = write(words, tmp_path / "words.csv")
    score_file(scorer, path, tmp_path / "out.csv", progress=False)

    as_trained = read_table(path, text_columns(reference_config().data))
    assert as_trained["Activity Type"].isna().sum() == 30
    labels, _ = expected(local_project, as_trained)
    assert read(tmp_path / "out.csv")["prediction"].tolist() == list(labels)


ESTIMATORS = {
    "logistic_regression": ("sklearn.linear_model.LogisticRegression", {"max_iter": 500}),
    "hist_gradient_boosting": ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 20}),
    "extra_trees": (
        "sklearn.ensemble.ExtraTreesClassifier",
        {"n_estimators": 10, "random_state": 0},
    ),
    "decision_tree": ("sklearn.tree.DecisionTreeClassifier", {"max_depth": 5}),
    "knn": ("sklearn.neighbors.KNeighborsClassifier", {"n_neighbors": 7}),
}


@pytest.mark.parametrize("name", ESTIMATORS)
def test_fast_path_equals_the_pipeline(local_project: ServingProject, name: str) -> None:
    params = reference_config()
    estimator, fixed = ESTIMATORS[name]
    pipeline, _ = build_pipeline(name, ModelSpec(estimator=estimator, params=fixed), params.data)
    features = local_project.features
    target = local_project.model.predict(features)  # any labels will do
    pipeline.fit(features, target)
    schema = FeatureSchema.from_params(params)

    predictor = Predictor.build(pipeline, schema)
    probes = probe_columns(pipeline.steps[0][1], schema, 200)
    got = predictor.predict(probes)
    frame = pd.DataFrame(probes)

    assert predictor.fast_path, predictor.fast_path_note
    assert got.labels.tolist() == pipeline.predict(frame).tolist()
    np.testing.assert_allclose(got.probabilities, pipeline.predict_proba(frame), rtol=0, atol=1e-12)


def test_unsupported_preprocessing_falls_back_to_the_pipeline(
    local_project: ServingProject,
) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, OrdinalEncoder

    params = reference_config()
    schema = FeatureSchema.from_params(params)
    pipeline = make_pipeline(
        ColumnTransformer(
            [
                ("n", make_pipeline(MinMaxScaler()), list(schema.numeric)),
                (
                    "c",
                    OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                    list(schema.categorical),
                ),
            ]
        ),
        LogisticRegression(max_iter=300),
    )
    features = local_project.features.dropna()
    pipeline.fit(features, local_project.model.predict(features))

    predictor = Predictor.build(pipeline, schema)
    rows = records_of(features.head(20))
    got = predictor.predict(
        {
            c: np.array([r[c] for r in rows], dtype=object if c in schema.categorical else float)
            for c in schema.columns
        }
    )

    assert not predictor.fast_path and "fast path" in predictor.fast_path_note
    assert got.labels.tolist() == pipeline.predict(features.head(20)).tolist()


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("models:/m@champion", ("m", "champion", None)),
        ("models:/my model/12", ("my model", None, "12")),
    ],
)
def test_registry_uris(uri: str, parsed: tuple[Any, ...]) -> None:
    assert parse_registry_uri(uri) == parsed


@pytest.mark.parametrize("uri", ["models:/m", "models:/m/latest", "models:/@x", "models:/a/b/3"])
def test_bad_registry_uris(uri: str) -> None:
    with pytest.raises(ModelSourceError, match="expected models:/<name>@<alias>"):
        parse_registry_uri(uri)


def test_local_model_refuses_other_files(local_project: ServingProject, tmp_path: Path) -> None:
    params = load_params(local_project.root / "params.yaml")
    pickle_file = tmp_path / "model.pkl"
    pickle_file.write_bytes(b"not loaded")

    with pytest.raises(ModelSourceError, match=r"expected a \.skops file"):
        load_scorer(str(pickle_file), tmp_path, params)
    with pytest.raises(ModelSourceError, match="model file not found"):
        load_scorer(str(tmp_path / "nope.skops"), tmp_path, params)


@pytest.mark.slow
def test_cli_scores_from_the_registry(
    serving_project: ServingProject, table: pd.DataFrame, tmp_path: Path
) -> None:
    """`mlops score` with the default model (@champion from the MLflow store) end to end."""
    input_path = write(table, tmp_path / "in.parquet")
    output_path = tmp_path / "scored.csv"

    result = subprocess.run(
        [
            "mlops",
            "score",
            "--input",
            str(input_path),
            "--output",
            str(output_path),
            "--chunk-size",
            "300",
            "--id-column",
            "activity_id",
        ],
        cwd=serving_project.root,
        env=serving_project.env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert f"scored {len(table)} rows" in result.stderr
    labels, _ = expected(serving_project, table)
    assert read(output_path)["prediction"].tolist() == list(labels)


@pytest.mark.slow
def test_cli_bad_input_exits_2(
    serving_project: ServingProject, table: pd.DataFrame, tmp_path: Path
) -> None:
    input_path = write(table.drop(columns=["Crew Size"]), tmp_path / "in.csv")

    result = subprocess.run(
        [
            "mlops",
            "score",
            "--input",
            str(input_path),
            "--output",
            str(tmp_path / "out.csv"),
            "--model",
            str(serving_project.model_file),
        ],
        cwd=serving_project.root,
        env=serving_project.env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 2
    assert "missing column(s) ['Crew Size']" in result.stderr.replace("\n", "")
    assert not (tmp_path / "out.csv").exists()


def test_integer_codes_score_the_same_from_csv_and_from_parquet_float_codes(
    tmp_path: Path,
) -> None:
    """Training reads a CSV's codes as "3"; a Parquet export of the same rows holds 3.0 (float,
    because of the missing values): both must meet the categories the model learned."""
    table = integer_coded_table()
    csv_path = write(table, tmp_path / "codes.csv")
    scorer, features = train_on_codes(csv_path)
    pipeline = scorer.predictor.pipeline

    floats = table.assign(store_code=table["store_code"].astype("float64"))
    parquet_path = write(floats, tmp_path / "codes.parquet")
    assert pd.read_parquet(parquet_path)["store_code"].dtype == np.float64
    # Training from the Parquet file reads the very same categories.
    as_trained, _ = select_columns(read_table(parquet_path), CODES_DATA)
    pd.testing.assert_series_equal(as_trained["store_code"], features["store_code"])
    for source in (csv_path, parquet_path):
        score_file(scorer, source, tmp_path / f"{source.suffix[1:]}.csv", progress=False)
    from_csv, from_parquet = read(tmp_path / "csv.csv"), read(tmp_path / "parquet.csv")

    assert from_parquet["prediction"].tolist() == from_csv["prediction"].tolist()
    assert from_csv["prediction"].tolist() == list(pipeline.predict(features))
    assert (from_csv["prediction"] == "late").sum() > 50  # code 3 was learned and is used
