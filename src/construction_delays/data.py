"""Reading the dataset and the train/test split.

Split files are Parquet so dtypes survive the hand-off between stages. The split uses pandas'
grouped sampling (exact per-class proportions) rather than importing scikit-learn, which keeps
the ``split`` stage's start-up cheap.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from construction_delays.config import DataParams, SplitParams
from construction_delays.errors import ProjectError


class DataError(ProjectError, ValueError):
    """The data file cannot be used; the message names the file and what is wrong."""


def read_table(path: Path | str) -> pd.DataFrame:
    """Read a CSV or Parquet file, turning low-level failures into a :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: file not found. Materialise it with `mlops data pull` "
            "(DVC remote, or the bundled sample generator) or point data.path in params.yaml at your file."
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
        ValueError,
    ) as error:
        raise DataError(f"{path}: cannot be parsed: {error}") from None
    if frame.empty:
        raise DataError(f"{path}: has a header but no rows")
    return frame


def select_columns(frame: pd.DataFrame, data: DataParams) -> tuple[pd.DataFrame, pd.Series]:
    """Return (features, target) with the configured columns, in the configured order."""
    features = frame.loc[:, data.feature_columns].copy()
    for column in data.categorical_features:
        # One dtype for categoricals whatever the file format: str objects, NaN for missing.
        features[column] = features[column].map(str, na_action="ignore").astype(object)
    for column in data.numeric_features:
        features[column] = features[column].astype("float64")
    return features, frame[data.target]


def split_frame(
    frame: pd.DataFrame, data: DataParams, split: SplitParams, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded train/test split; stratified on the target for classification when asked, or by
    whole groups when ``data.group`` is set."""
    if data.group is not None:
        test = _group_test_rows(frame, data.group, split.test_size, seed)
    elif data.task == "classification" and split.stratify:
        test = frame.groupby(data.target, group_keys=False, sort=True).sample(
            frac=split.test_size, random_state=seed
        )
    else:
        test = frame.sample(frac=split.test_size, random_state=seed)
    train = frame.drop(index=test.index)
    if train.empty or test.empty:
        raise DataError(
            f"split.test_size={split.test_size} leaves an empty train or test set for {len(frame)} rows"
        )
    # Shuffle the training rows too, so no ordering of the source file leaks into CV folds.
    return train.sample(frac=1.0, random_state=seed), test.sort_index()


def _group_test_rows(frame: pd.DataFrame, group: str, test_size: float, seed: int) -> pd.DataFrame:
    """Whole groups, drawn in a seeded order until their rows come closest to ``test_size``.

    Stratifying by class is not possible when groups must stay whole; with many groups the class
    shares of both sides still come close (the CV folds are stratified as far as groups allow).
    """
    sizes = frame[group].value_counts(sort=False)
    if len(sizes) < 2:
        raise DataError(f"data.group {group!r} has {len(sizes)} group(s); a split needs at least 2")
    order = sizes.sample(frac=1.0, random_state=seed)
    wanted = test_size * len(frame)
    taken = order.cumsum()
    # The first count of groups whose rows reach the wanted test size, or the one before if closer.
    count = int((taken < wanted).sum()) + 1
    if count > 1 and wanted - taken.iloc[count - 2] < taken.iloc[count - 1] - wanted:
        count -= 1
    count = min(count, len(order) - 1)  # keep at least one group for training
    return frame[frame[group].isin(order.index[:count])]


def split_columns(frame: pd.DataFrame, data: DataParams) -> pd.DataFrame:
    """What a split file holds: the typed features, the target and, when it is not a feature,
    the group column (the train stage builds group-aware CV folds from it)."""
    features, target = select_columns(frame, data)
    stored = features.assign(**{data.target: target})
    if data.group is not None and data.group not in features.columns:
        stored[data.group] = frame[data.group]
    return stored
