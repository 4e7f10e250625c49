"""Reading the dataset and the train/test split.

Split files are Parquet so dtypes survive the hand-off between stages. The split ranks rows by a
seeded hash of their values (exact per-class proportions, stable as rows are added) with pandas
alone, rather than importing scikit-learn, which keeps the ``split`` stage's start-up cheap.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from construction_delays.config import DataParams, SplitParams, table_format
from construction_delays.errors import ProjectError

# What pandas' read_csv reads as missing (its default, as training reads the data). The batch
# scorer's pyarrow reader is given the same list: its own lacks "None" and "<NA>", so a category
# written "None" was missing in training but a category at scoring time.
CSV_MISSING_VALUES = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)


# "46,891" or "1,000.5": a spreadsheet's display format exported as text, not a category.
GROUPED_NUMBER = r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?"
PLAIN_NUMBER = r"[-+]?\d+(?:\.\d+)?"
THOUSANDS_ADVICE = (
    "numbers written with thousands separators (e.g. {example!r}): re-export the file without them"
)


def thousands_example(values: pd.Series) -> str | None:
    """A value of ``values`` written with thousands separators when nearly all of them are numbers
    in that form (below 1,000 they have no comma); else None."""
    text = values.dropna().astype(str).str.strip()
    grouped = text.str.fullmatch(GROUPED_NUMBER)
    numbers = grouped | text.str.fullmatch(PLAIN_NUMBER)
    if text.empty or not grouped.any() or numbers.mean() < 0.95:
        return None
    return str(text[grouped].iloc[0])


class DataError(ProjectError, ValueError):
    """The data file cannot be used; the message names the file and what is wrong."""


def unreadable(path: Path, error: Exception, what: str = "cannot be parsed") -> str:
    """The message for a table that fails to read, with the fix when it is not UTF-8 text
    (a spreadsheet's "CSV" export in the Windows code page: cp1252, latin-1)."""
    advice = ""
    if isinstance(error, UnicodeDecodeError) or "invalid UTF8" in str(error):
        advice = (
            ": the file is not UTF-8 text; save it as CSV UTF-8 (spreadsheets: Save As, CSV UTF-8)"
        )
    return f"{path}: {what}: {error}{advice}"


def text_columns(data: DataParams) -> list[str]:
    """Columns to read from a CSV as the file's own text: the categorical features and the group.

    Left to pandas' guessing, ``00005`` would become 5, ``3`` with blanks around it 3.0 and
    ``true`` True, while a scorer or a REST client sends the file's text: the one-hot encoder
    would then meet unknown categories and predict silently otherwise.
    """
    group = [data.group] if data.group and data.group not in data.numeric_features else []
    return [*data.categorical_features, *group]


def category_text(value: Any) -> Any:
    """The one text form of a categorical value, wherever a model meets it (training, batch
    scoring, the REST API, adopt's smoke request): missing stays NaN, text stays as written (a
    typed ``"3.0"`` is its writer's category), a whole number becomes its digits and any other
    number its ``str``.

    Training reads a CSV's categorical columns as text, so integer codes are ``"3"``; the same
    codes come as 3.0 from a Parquet file (a column with missing values is float) or as 3 from a
    JSON client. Without one form those were categories the model never saw, silently.
    """
    if isinstance(value, str):
        return value
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return np.nan
    if isinstance(value, bool | np.bool_):
        return str(bool(value))  # "True", not "1": a flag is not a code
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def categories_as_text(values: pd.Series | np.ndarray | Sequence[Any]) -> np.ndarray:
    """:func:`category_text` over a column: an object array, NaN for missing values."""
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    if pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype):
        array = series.to_numpy(dtype=object, na_value=np.nan)
        if pd.api.types.infer_dtype(array, skipna=True) in ("string", "empty"):
            return array  # text only (the common case): nothing to convert
        return np.array([category_text(v) for v in array], dtype=object)
    # Typed columns (float or integer codes, booleans, pandas categoricals): convert each
    # distinct value once; code -1 (missing) picks the NaN at the end.
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    texts = np.array([*(category_text(u) for u in uniques), np.nan], dtype=object)
    return texts[codes]


def read_table(path: Path | str, text: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a CSV or Parquet file, turning low-level failures into a :class:`DataError`;
    ``text``: CSV columns to keep as written (see :func:`text_columns`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: file not found. Materialise it with `mlops data pull` "
            "(DVC remote, or the bundled sample generator) or point data.path in params.yaml at your file."
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        if table_format(path) == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype=dict.fromkeys(text, str) or None)
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
        ValueError,
    ) as error:
        raise DataError(unreadable(path, error)) from None
    if frame.empty:
        raise DataError(f"{path}: has a header but no rows")
    return frame


def duplicate_columns(path: Path, frame: pd.DataFrame) -> list[str]:
    """Column names the file's header repeats. pandas reads a CSV's second ``age`` as ``age.1``,
    a column the scorer's reader then cannot find, so the header itself is read again raw."""
    names = pd.Series(frame.columns)
    if table_format(path) != "parquet":
        try:
            names = pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0]
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
            return []  # read_table already read it; nothing more to learn here
    return sorted({str(n) for n in names[names.duplicated()]})


def select_columns(frame: pd.DataFrame, data: DataParams) -> tuple[pd.DataFrame, pd.Series]:
    """Return (features, target) with the configured columns, in the configured order."""
    features = frame.loc[:, data.feature_columns].copy()
    for column in data.categorical_features:
        # One dtype for categoricals whatever the file format: str objects, NaN for missing, in
        # the text form scoring and serving hand the model too (see category_text).
        features[column] = pd.Series(
            categories_as_text(features[column]), index=features.index, dtype=object
        )
    for column in data.numeric_features:
        features[column] = features[column].astype("float64")
    return features, frame[data.target]


def split_frame(
    frame: pd.DataFrame, data: DataParams, split: SplitParams, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded train/test split, stable as the data grows; stratified on the target for
    classification when asked, or by whole groups when ``data.group`` is set.

    A row's side depends on its own values (every column of the file, so editing the feature
    lists moves no row) or its group, and the seed; not on its position or on the other rows
    (see :func:`row_draws`). So when new rows arrive, the old rows stay where
    they were: the test split of the next model holds no rows the current champion trained on,
    apart from a few at the class boundary, and promotion can re-score both on it fairly.
    """
    if data.group is not None:
        test = _group_test_rows(frame, data.group, split.test_size, seed)
    else:
        draws = pd.Series(row_draws(frame, seed), index=frame.index)
        if data.task == "classification" and split.stratify:
            # The same count per class as a stratified sample: round(test_size x class rows).
            picked = [
                rows.sort_values(kind="stable").index[: round(len(rows) * split.test_size)]
                for _, rows in draws.groupby(frame[data.target], sort=True)
            ]
            test = frame.loc[[i for index in picked for i in index]]
        else:
            count = round(len(frame) * split.test_size)
            test = frame.loc[draws.sort_values(kind="stable").index[:count]]
    train = frame.drop(index=test.index)
    if train.empty or test.empty:
        raise DataError(
            f"split.test_size={split.test_size} leaves an empty train or test set for {len(frame)} rows"
        )
    if data.task == "classification":
        _check_classes_on_both_sides(
            frame[data.target], train[data.target], test[data.target], split
        )
    # Shuffle the training rows too, so no ordering of the source file leaks into CV folds.
    return train.sample(frac=1.0, random_state=seed), test.sort_index()


def _check_classes_on_both_sides(
    labels: pd.Series, train: pd.Series, test: pd.Series, split: SplitParams
) -> None:
    """A class with no test row has no test score (f1 0.0, roc_auc undefined); one with no
    training row is a class the model cannot predict: stop rather than report such numbers."""
    counts = labels.value_counts()
    for side, part in (("test", test), ("training", train)):
        present = set(part.unique())
        absent = [label for label in counts.index if label not in present]
        if absent:
            shown = ", ".join(f"{label!r} ({counts[label]} row(s))" for label in absent)
            raise DataError(
                f"{'classes' if len(absent) > 1 else 'class'} {shown} of {labels.name!r}"
                f" {'have' if len(absent) > 1 else 'has'} no row in the {side} split"
                f" (split.test_size={split.test_size}, {len(labels)} rows): add rows of that"
                " class, merge it with another, or choose another split.test_size"
            )


def row_draws(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A draw in [0, 1) per row from a hash of the row's values, salted with ``seed``.

    Numbers are hashed as float64 and everything else as text, so a column that pandas reads as
    integers today and as floats tomorrow (a missing value arrived) hashes the same.
    """
    normalised = pd.DataFrame(
        {
            name: column.astype("float64")
            if pd.api.types.is_numeric_dtype(column)
            else column.astype(object).map(str, na_action="ignore")
            for name, column in frame.items()
        },
        index=frame.index,
    )
    hashes = pd.util.hash_pandas_object(normalised, index=False).to_numpy(np.uint64)
    return _salted_unit(hashes, seed)


def _salted_unit(hashes: np.ndarray, seed: int) -> np.ndarray:
    salt = np.uint64((seed * 0x9E3779B97F4A7C15 + 1) % 2**64)
    mixed = pd.util.hash_array(hashes ^ salt)  # re-mixed, so the seed changes every draw
    return (mixed >> np.uint64(11)).astype(np.float64) / float(2**53)


def _group_test_rows(frame: pd.DataFrame, group: str, test_size: float, seed: int) -> pd.DataFrame:
    """Whole groups, in the order of a seeded hash of their values, until their rows come
    closest to ``test_size`` (stable as the data grows, like the row-wise split).

    Stratifying by class is not possible when groups must stay whole; with many groups the class
    shares of both sides still come close (the CV folds are stratified as far as groups allow).
    """
    sizes = frame[group].value_counts(sort=False)
    if len(sizes) < 2:
        raise DataError(f"data.group {group!r} has {len(sizes)} group(s); a split needs at least 2")
    labels = sizes.index.to_series().astype(object).map(str).to_numpy(object)
    draws = _salted_unit(pd.util.hash_array(labels), seed)
    order = sizes.iloc[np.argsort(draws, kind="stable")]
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
    extra = [c for c in data.stored_columns if c not in stored.columns]
    return stored.assign(**{c: frame[c] for c in extra})
