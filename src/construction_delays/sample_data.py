"""Deterministic synthetic data for the reference use case: will a construction activity finish
on schedule (``Schedule Adherence``), and by how many days does it overrun (``Delay (days)``)?

The generator is seeded and uses only numpy's PCG64 stream and fixed rounding, so the same
``rows``/``seed`` produce a byte-identical CSV (``data.dvc`` records its hash and a test checks it).
The label depends on the features through a noisy logistic model: learnable, not perfectly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from construction_delays.config import table_format

TARGET = "Schedule Adherence"
REGRESSION_TARGET = "Delay (days)"  # the same outcome as a number, for regression projects
ON_SCHEDULE, DELAYED = "On Schedule", "Delayed"

ACTIVITY_RISK = {
    "Excavation": 0.35,
    "Foundation": 0.25,
    "Framing": 0.0,
    "Roofing": 0.3,
    "Electrical": -0.1,
    "Plumbing": -0.05,
    "HVAC": 0.15,
    "Finishing": -0.3,
}
REGION_RISK = {"North": 0.2, "South": -0.1, "East": 0.0, "West": -0.05}
MISSING_RATES = {
    "Crew Size": 0.04,
    "Weather Delay Days": 0.03,
    "Material Delivery Delay (days)": 0.05,
    "Activity Type": 0.02,
}


def generate(rows: int = 5000, seed: int = 42) -> pd.DataFrame:
    """Return ``rows`` synthetic construction activities with a ``Schedule Adherence`` label."""
    rng = np.random.default_rng(seed)
    activity = rng.choice(list(ACTIVITY_RISK), size=rows)
    region = rng.choice(list(REGION_RISK), size=rows, p=[0.2, 0.35, 0.25, 0.2])
    schedule_float = rng.gamma(shape=2.0, scale=6.0, size=rows)  # days of slack
    complexity = rng.beta(2.0, 3.0, size=rows) * 10
    duration = np.clip(rng.lognormal(mean=3.0, sigma=0.6, size=rows), 1, 180).round()
    crew = np.clip(rng.normal(12, 6, size=rows), 2, 45).round()
    weather = rng.poisson(lam=np.where(np.isin(activity, ["Excavation", "Roofing"]), 3.0, 1.2))
    subcontractors = rng.binomial(8, 0.3, size=rows)
    material_delay = rng.exponential(2.0, size=rows) * (rng.random(rows) < 0.6)
    expected_progress = rng.uniform(20, 80, size=rows)
    progress_gap = rng.normal(0, 12, size=rows)
    percent_complete = np.clip(expected_progress + progress_gap, 0, 100)

    logit = (
        -2.2
        + 0.35 * weather
        + 0.45 * material_delay
        + 0.35 * complexity
        - 0.14 * schedule_float
        + 0.30 * subcontractors
        - 0.09 * progress_gap
        + 0.015 * duration
        - 1.2 * (crew / duration.clip(min=1)).clip(max=2)
        + 2 * np.vectorize(ACTIVITY_RISK.get)(activity)
        + 2 * np.vectorize(REGION_RISK.get)(region)
        + rng.normal(0, 0.5, size=rows)
    )
    delayed = rng.random(rows) < 1 / (1 + np.exp(-logit))
    overrun = rng.gamma(shape=2.0, scale=0.5 + np.clip(logit, 0, None) + 0.05 * duration)

    frame = pd.DataFrame(
        {
            "Project Schedules": schedule_float.round(2),
            "Construction Activity Data": complexity.round(3),
            "Planned Duration (days)": duration,
            "Crew Size": crew,
            "Weather Delay Days": weather.astype(float),
            "Activity Type": activity.astype(object),
            "Site Region": region.astype(object),
            "Subcontractor Count": subcontractors,
            "Material Delivery Delay (days)": material_delay.round(2),
            "Percent Complete at Checkpoint": percent_complete.round(1),
            TARGET: np.where(delayed, DELAYED, ON_SCHEDULE),
            REGRESSION_TARGET: np.where(delayed, overrun.round(1), 0.0),
        }
    )
    for column, rate in MISSING_RATES.items():
        frame.loc[rng.random(rows) < rate, column] = np.nan
    return frame


def write_sample(path: Path, rows: int = 5000, seed: int = 42) -> Path:
    """Write the sample as CSV with fixed formatting so its bytes (and DVC hash) are stable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")  # same suffix: pandas compresses as the name says
    frame = generate(rows, seed)
    if table_format(path) == "parquet":
        frame.to_parquet(tmp, index=False)
    else:
        # gzip stamps the time into its header: a fixed one keeps the bytes (and DVC hash) stable
        gzip = str(path).lower().endswith(".gz")
        compression = {"method": "gzip", "mtime": 0} if gzip else "infer"
        frame.to_csv(
            tmp, index=False, lineterminator="\n", float_format="%.6g", compression=compression
        )
    tmp.replace(path)
    return path
