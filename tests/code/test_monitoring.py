"""Drift monitoring on real data: the reference profile of a fitted model's training data, and new
batches that are (or are not) like it."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from construction_delays import monitoring
from construction_delays.config import ModelSpec, MonitoringParams
from construction_delays.data import select_columns
from construction_delays.models import build_pipeline
from construction_delays.monitoring import CurrentData, MonitoringError
from construction_delays.sample_data import generate
from construction_delays.scoring import FeatureSchema, Predictor, Scorer

from tests.conftest import reference_config

PARAMS = reference_config()
THRESHOLDS = MonitoringParams(max_metric_drop={"f1": 0.05, "roc_auc": 0.05})
SHIFTED = ("Weather Delay Days", "Activity Type")


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    """A logistic regression on 3000 sample rows and its reference profile (test rows: 1000)."""
    features, target = select_columns(generate(4000, seed=11), PARAMS.data)
    train_x, test_x, train_y = features.iloc[:3000], features.iloc[3000:], target.iloc[:3000]
    spec = ModelSpec(estimator="sklearn.linear_model.LogisticRegression", params={"max_iter": 500})
    model, _ = build_pipeline("logistic_regression", spec, PARAMS.data)
    model.fit(train_x, train_y)
    profile = monitoring.build_profile(
        train=train_x.assign(**{PARAMS.data.target: train_y}),
        data=PARAMS.data,
        bins=10,
        model="logistic_regression",
        test_metrics={"f1": 0.66, "roc_auc": 0.84},
        predictions=model.predict(test_x),
        probabilities=model.predict_proba(test_x),
        classes=list(model.classes_),
        positive="Delayed",
    )
    return {"model": model, "profile": profile}


def batch(seed: int, rows: int = 2000, shift: bool = False) -> pd.DataFrame:
    frame = generate(rows, seed=seed)
    if shift:
        frame["Weather Delay Days"] = frame["Weather Delay Days"] + 5
        frame.loc[frame.index[: rows // 2], "Activity Type"] = "Demolition"
    return frame


def judged(fitted: dict[str, Any], frame: pd.DataFrame, labels: bool = False) -> Any:
    features = frame[PARAMS.data.feature_columns]
    model = fitted["model"]
    current = CurrentData(
        features,
        "batch",
        predictions=model.predict(features),
        probabilities=model.predict_proba(features),
        target=frame[PARAMS.data.target] if labels else None,
    )
    metrics = {}
    if labels:
        from construction_delays.evaluation import classification_metrics

        metrics = classification_metrics(
            current.target,
            current.predictions,
            current.probabilities,
            list(model.classes_),
            "Delayed",
        )
    return monitoring.compare(fitted["profile"], current, THRESHOLDS, current_metrics=metrics)


def test_psi_is_zero_for_the_same_shares_and_matches_the_formula() -> None:
    assert monitoring.population_stability([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    expected = 0.4 * np.log(0.9 / 0.5) + (-0.4) * np.log(0.1 / 0.5)
    assert monitoring.population_stability([0.5, 0.5], [0.9, 0.1]) == pytest.approx(
        expected, abs=1e-4
    )
    # An empty reference bin is floored, not divided by: new values there still count, finitely.
    assert 0 < monitoring.population_stability([1.0, 0.0], [0.9, 0.1]) < 10


def test_profile_is_small_json_without_rows(fitted: dict[str, Any]) -> None:
    profile = fitted["profile"]
    text = json.dumps(profile)
    assert len(text) < 20_000
    assert set(profile["features"]) == set(PARAMS.data.feature_columns)
    for name in PARAMS.data.numeric_features:
        column = profile["features"][name]
        assert len(column["shares"]) == len(column["edges"]) + 1
        assert sum(column["shares"]) == pytest.approx(1.0, abs=1e-4)
        assert column["edges"] == sorted(set(column["edges"]))  # ties collapse (e.g. counts)
    assert profile["features"]["Subcontractor Count"]["edges"] == sorted(
        set(profile["features"]["Subcontractor Count"]["edges"])
    )
    assert len(profile["features"]["Subcontractor Count"]["edges"]) < 9  # 0..8: repeated quantiles
    activity = profile["features"]["Activity Type"]
    assert activity["missing_share"] == pytest.approx(0.02, abs=0.01)
    assert sum(activity["shares"].values()) == pytest.approx(1.0, abs=1e-4)
    assert set(profile["prediction"]) == {"label", "score"}
    assert profile["classes"] == ["Delayed", "On Schedule"]


def test_new_data_like_the_training_data_is_ok(fitted: dict[str, Any]) -> None:
    report = judged(fitted, batch(seed=21), labels=True)
    assert report.verdict == "ok", report.to_markdown()
    assert all(c.psi is not None and c.psi < THRESHOLDS.psi_warning for c in report.checks)
    assert {c.group for c in report.checks} == {"feature", "prediction", "target"}
    assert {m.metric for m in report.metrics} == {"f1", "roc_auc"}


def test_shifted_features_are_named_and_raise_the_alarm(fitted: dict[str, Any]) -> None:
    report = judged(fitted, batch(seed=22, shift=True))
    assert report.verdict == "drift"
    assert {c.name for c in report.drifted_features} == set(SHIFTED)
    activity = next(c for c in report.checks if c.name == "Activity Type")
    assert re.search(r"new: 'Demolition' 5\d%", activity.change), activity.change
    assert any(c.group == "prediction" and c.status == "drift" for c in report.checks)
    # The predicted class and P(Delayed) moving together: one reason naming both, not two.
    [predictions] = [r for r in report.reasons if "the predictions drifted" in r]
    assert predictions.count("the predictions drifted") == 1
    assert "predicted class (PSI" in predictions and "P(Delayed) (PSI" in predictions
    markdown = report.to_markdown()
    assert markdown.startswith("## Drift monitor: drift ❌")
    assert re.search(r"\| Weather Delay Days \| numeric \| [\d.]+ \| [^|]+ \| drift \|", markdown)


def test_a_column_losing_its_values_counts_as_drift(fitted: dict[str, Any]) -> None:
    frame = batch(seed=23)
    frame.loc[frame.index[:700], "Crew Size"] = np.nan
    report = judged(fitted, frame)
    crew = next(c for c in report.checks if c.name == "Crew Size")
    assert crew.status == "drift" and crew.current_missing == pytest.approx(
        0.35 + 0.65 * 0.04, abs=0.01
    )
    assert crew.change.startswith("missing 4% → 38%"), crew.change
    # One drifted feature in ten is below max_drifted_share: a warning, not an alert.
    assert report.verdict == "warning", report.reasons


def test_worse_predictions_on_labelled_data_raise_the_alarm(fitted: dict[str, Any]) -> None:
    frame = batch(seed=24)
    flip = (
        np.random.default_rng(0).random(len(frame)) < 0.3
    )  # concept drift: labels no longer follow
    labels = frame["Schedule Adherence"].to_numpy(dtype=object)
    labels[flip] = np.where(labels[flip] == "Delayed", "On Schedule", "Delayed")
    frame["Schedule Adherence"] = labels
    report = judged(fitted, frame, labels=True)
    assert report.verdict == "drift"
    failed = {m.metric for m in report.metrics if m.status == "drift"}
    assert failed == {"f1", "roc_auc"}
    assert any(reason.startswith("f1 ") for reason in report.reasons)


def labelled_batch(fitted: dict[str, Any], frame: pd.DataFrame) -> CurrentData:
    features = frame[PARAMS.data.feature_columns]
    model = fitted["model"]
    return CurrentData(
        features,
        "batch",
        predictions=model.predict(features),
        probabilities=model.predict_proba(features),
        target=frame[PARAMS.data.target],
    )


def test_labels_that_have_not_arrived_yet_are_not_drift(fitted: dict[str, Any]) -> None:
    frame = batch(seed=29)
    frame.loc[frame.index[::2], PARAMS.data.target] = np.nan  # half the labels come later
    report = monitoring.compare(fitted["profile"], labelled_batch(fitted, frame), THRESHOLDS)
    assert report.verdict == "ok", report.reasons
    assert "1000 of 2000 rows have no label yet" in " ".join(report.notes)


def test_labels_written_unlike_the_model_s_classes_are_an_error(fitted: dict[str, Any]) -> None:
    frame = batch(seed=30)
    frame[PARAMS.data.target] = frame[PARAMS.data.target].str.lower()

    scorer = Scorer(Predictor.build(fitted["model"], FeatureSchema.from_params(PARAMS)), {})
    with pytest.raises(MonitoringError, match=r"none of the labels \['delayed', 'on schedule'\]"):
        monitoring.labelled_metrics(fitted["profile"], labelled_batch(fitted, frame), scorer)


def test_too_few_rows_are_not_judged(fitted: dict[str, Any]) -> None:
    report = judged(fitted, batch(seed=25, rows=60, shift=True))
    assert report.verdict == "insufficient"
    assert "fewer than monitoring.min_rows (200)" in report.reasons[0]
    # The shifted columns keep their PSI but no status that reads as an alarm.
    assert any(c.psi for c in report.checks)
    assert {c.status for c in (*report.checks, *report.metrics)} == {monitoring.NOT_JUDGED}


def test_many_categories_keep_the_profile_small() -> None:
    values = [f"site-{i % 80}" for i in range(4000)]
    distribution = monitoring.categorical_distribution(values)
    assert len(distribution["shares"]) == monitoring.MAX_CATEGORIES + 1
    assert distribution["shares"][monitoring.OTHER] == pytest.approx(30 / 80, abs=0.01)
    # Categories beyond the top 50 (known or new) are compared through the "(other)" bucket.
    check = monitoring._categorical_check("site", "feature", distribution, values, THRESHOLDS)
    assert check.psi == pytest.approx(0.0, abs=1e-3) and check.status == "ok"


def test_regression_profile_bins_target_and_predictions() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    data = PARAMS.data.model_copy(
        update={
            "task": "regression",
            "positive_class": None,
            "target": "y",
            "numeric_features": ("x",),
            "categorical_features": (),
        }
    )
    profile = monitoring.build_profile(
        train=frame,
        data=data,
        bins=5,
        model="ridge",
        test_metrics={"rmse": 1.0},
        predictions=frame["x"].to_numpy() * 0.5,
    )
    assert profile["target_distribution"]["kind"] == "numeric"
    assert len(profile["prediction"]["label"]["edges"]) == 4
    current = CurrentData(frame[["x"]] + 3, "batch", predictions=frame["x"].to_numpy() * 0.5 + 1.5)
    report = monitoring.compare(
        profile,
        current,
        MonitoringParams(max_metric_drop={"rmse": 0.1}),
        current_metrics={"rmse": 1.3},
    )
    assert report.verdict == "drift"
    assert [m.status for m in report.metrics] == ["drift"]  # rmse rose 0.3 > 0.1 allowed


def test_since_accepts_durations_and_dates() -> None:
    now = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
    assert monitoring.parse_since("7d", now) == now - dt.timedelta(days=7)
    assert monitoring.parse_since("30m", now) == now - dt.timedelta(minutes=30)
    assert monitoring.parse_since("2026-11-01", now) == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    with pytest.raises(MonitoringError, match="--since 'last week'"):
        monitoring.parse_since("last week", now)


def write_log(path: Path, entries: list[dict[str, Any]], garbage: str = "") -> Path:
    lines = [json.dumps(entry) for entry in entries]
    path.write_text("\n".join(lines) + "\n" + garbage, encoding="utf-8")
    return path


def log_entry(ts: str, records: list[dict[str, Any]], version: int = 1) -> dict[str, Any]:
    return {
        "ts": ts,
        "model_version": version,
        "inputs": records,
        "predictions": ["Delayed"] * len(records),
        "probabilities": [[0.9, 0.1]] * len(records),
    }


def test_prediction_log_reads_requests_since_and_skips_cut_lines(tmp_path: Path) -> None:
    rows = generate(6, seed=1)[PARAMS.data.feature_columns]
    records = [
        {k: (None if pd.isna(v) else v) for k, v in r.items()} for r in rows.to_dict("records")
    ]
    log = write_log(
        tmp_path / "predictions.jsonl",
        [
            log_entry("2026-11-01T10:00:00.000+00:00", records[:2]),
            log_entry("2026-11-20T10:00:00.000+00:00", records[2:5], version=2),
            log_entry("2026-11-21T10:00:00.000+00:00", records[5:]),
        ],
        garbage='{"ts": "2026-11-21T11:00:00.000+00:00", "inputs": [{"Crew',
    )
    since = dt.datetime(2026, 11, 15, tzinfo=dt.UTC)
    current = monitoring.read_prediction_log(log, PARAMS.data.feature_columns, since)
    assert len(current.features) == 4 and len(current.predictions) == 4
    assert current.probabilities.shape == (4, 2)
    assert "1 unreadable line(s) skipped" in current.notes
    assert any("v1: 1 rows, v2: 3 rows" in note for note in current.notes)


def test_bad_new_data_is_named(fitted: dict[str, Any], tmp_path: Path) -> None:
    profile = fitted["profile"]
    frame = batch(seed=26, rows=300)
    frame.drop(columns=["Site Region"]).to_csv(tmp_path / "no_region.csv", index=False)
    with pytest.raises(
        MonitoringError, match=r"no_region.csv: missing column\(s\) \['Site Region'\]"
    ):
        monitoring.load_current(tmp_path / "no_region.csv", profile)
    frame["Crew Size"] = frame["Crew Size"].astype(object)
    frame.loc[[4, 17], "Crew Size"] = "a dozen"
    frame.to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(MonitoringError, match=r"column 'Crew Size'.*'a dozen'.*rows 4, 17"):
        monitoring.load_current(tmp_path / "text.csv", profile)
    with pytest.raises(MonitoringError, match=r"missing\.csv: file not found"):
        monitoring.load_current(tmp_path / "missing.csv", profile)


def test_a_missing_or_foreign_profile_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        MonitoringError, match=r"nope\.json: no reference profile; run the pipeline"
    ):
        monitoring.read_profile(tmp_path / "nope.json")
    (tmp_path / "metrics.json").write_text('{"best_model": "x"}', encoding="utf-8")
    with pytest.raises(MonitoringError, match="not a version-1 reference profile"):
        monitoring.read_profile(tmp_path / "metrics.json")


def test_labelled_batch_file_is_read_with_its_labels(
    fitted: dict[str, Any], tmp_path: Path
) -> None:
    frame = batch(seed=27, rows=300)
    frame.to_parquet(tmp_path / "labelled.parquet", index=False)
    current = monitoring.load_current(tmp_path / "labelled.parquet", fitted["profile"])
    assert current.target is not None and len(current.target) == 300
    assert list(current.features.columns) == PARAMS.data.feature_columns
    frame.drop(columns=["Schedule Adherence"]).to_csv(tmp_path / "unlabelled.csv", index=False)
    assert monitoring.load_current(tmp_path / "unlabelled.csv", fitted["profile"]).target is None


def test_data_in_the_markdown_report_cannot_break_its_table(fitted: dict[str, Any]) -> None:
    frame = batch(seed=28)
    frame["Site Region"] = "North | South"
    markdown = judged(fitted, frame).to_markdown()
    row = next(line for line in markdown.splitlines() if line.startswith("| Site Region |"))
    assert "'North \\| South'" in row
    assert row.count(" | ") == 5  # six cells, none added by the data


def test_another_model_than_the_profile_s_is_named(fitted: dict[str, Any], tmp_path: Path) -> None:
    from construction_delays.persistence import save_model

    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(fitted["profile"]))
    for name, warned in (("logistic_regression", False), ("random_forest", True)):
        model = save_model(fitted["model"], tmp_path / name / "model.skops")
        resolved = monitoring.resolve_reference(
            tmp_path, PARAMS, model=str(model), reference=profile, need_model=True
        )
        assert any("is another model" in note for note in resolved.notes) is warned
