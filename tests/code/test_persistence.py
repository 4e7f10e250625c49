"""skops model files: a fitted pipeline round-trips; files with untrusted types are refused."""

from __future__ import annotations

import collections
import copy
import io
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from construction_delays.models import build_pipeline
from construction_delays.persistence import (
    ZIP_EPOCH,
    UntrustedModelError,
    load_model,
    model_trusted_types,
    save_model,
)
from construction_delays.sample_data import generate

from tests.conftest import reference_config


@pytest.fixture(scope="module")
def fitted() -> tuple[Pipeline, Any]:
    params = reference_config()
    frame = generate(rows=150, seed=9)
    features = frame[params.data.feature_columns]
    pipeline, _ = build_pipeline("random_forest", params.models["random_forest"], params.data)
    pipeline.set_params(model__n_estimators=10)
    pipeline.fit(features, frame[params.data.target])
    return pipeline, features


def decoded_copy(path: Path) -> Path:
    """A copy under another name: this process did not save it, so loading really decodes it."""
    copy = path.with_name(f"copy-{path.name}")
    shutil.copyfile(path, copy)
    return copy


def test_a_model_saved_by_this_process_loads_without_decoding_while_unchanged(
    tmp_path: Path, fitted: tuple[Pipeline, Any]
) -> None:
    pipeline, _ = fitted
    path = save_model(pipeline, tmp_path / "model.skops")
    assert load_model(path) is pipeline  # the same bytes: the object that was saved

    sio.dump({"counts": collections.Counter("ab")}, path)  # the file changed since: decode it
    with pytest.raises(UntrustedModelError, match=r"collections\.Counter"):
        load_model(path)


def test_one_model_always_saves_to_the_same_bytes(
    tmp_path: Path, fitted: tuple[Pipeline, Any]
) -> None:
    """What DVC hashes must depend on the model only: a rerun on unchanged inputs then reproduces
    dvc.lock. skops alone names entries after memory addresses and stamps them with the time."""
    pipeline, features = fitted
    twin = copy.deepcopy(pipeline)  # equal model, other objects at other addresses
    assert sio.dumps(pipeline) != sio.dumps(twin)

    first = save_model(pipeline, tmp_path / "first.skops").read_bytes()
    second = save_model(twin, tmp_path / "second.skops").read_bytes()

    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as saved:
        assert {entry.date_time for entry in saved.infolist()} == {ZIP_EPOCH}
    loaded = load_model(decoded_copy(tmp_path / "second.skops"))
    np.testing.assert_allclose(loaded.predict_proba(features), pipeline.predict_proba(features))


def test_an_object_referenced_twice_loads_as_one_object(tmp_path: Path) -> None:
    scaler = StandardScaler().fit(np.arange(6.0).reshape(3, 2))
    path = save_model([scaler, scaler], tmp_path / "shared.skops")
    first, second = load_model(decoded_copy(path))
    assert first is second
    np.testing.assert_array_equal(first.mean_, scaler.mean_)


def test_roundtrip_predictions_are_equal(tmp_path: Path, fitted: tuple[Pipeline, Any]) -> None:
    pipeline, features = fitted
    path = save_model(pipeline, tmp_path / "nested" / "model.skops")

    assert path.is_file()
    assert not list(path.parent.glob(".*.tmp"))  # the temporary file was renamed into place
    loaded = load_model(decoded_copy(path))

    assert isinstance(loaded, Pipeline)
    np.testing.assert_array_equal(loaded.predict(features), pipeline.predict(features))
    np.testing.assert_allclose(loaded.predict_proba(features), pipeline.predict_proba(features))
    assert list(loaded.classes_) == list(pipeline.classes_)


SHIPPED_MODELS = list(reference_config().models)


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_every_shipped_model_loads_back(tmp_path: Path, name: str) -> None:
    """No model of the zoo needs a type the loader refuses (else evaluate could not load it)."""
    params = reference_config()
    frame = generate(rows=120, seed=4)
    pipeline, _ = build_pipeline(name, params.models[name], params.data)
    if params.models[name].estimator.startswith("sklearn.ensemble."):  # fewer trees: faster
        shrink = {"model__n_estimators": 5, "model__max_iter": 10}
        pipeline.set_params(**{k: v for k, v in shrink.items() if k in pipeline.get_params()})
    features = frame[params.data.feature_columns]
    pipeline.fit(features, frame[params.data.target])

    loaded = load_model(decoded_copy(save_model(pipeline, tmp_path / f"{name}.skops")))
    np.testing.assert_array_equal(loaded.predict(features), pipeline.predict(features))


def test_model_trusted_types_are_all_classes_of_the_stack(fitted: tuple[Pipeline, Any]) -> None:
    pipeline, _ = fitted
    trusted = model_trusted_types(pipeline)

    assert trusted == sio.get_untrusted_types(data=sio.dumps(pipeline))
    assert all(name.split(".")[0] in {"sklearn", "numpy", "scipy"} for name in trusted)


@pytest.mark.parametrize(
    ("payload", "refused"),
    [
        ({"counts": collections.Counter("aab")}, "collections.Counter"),
        ({"callback": len}, "builtins.len"),
        # A *function* from a trusted package is refused too: only classes are allowed.
        ({"scorer": f1_score}, "sklearn.metrics._classification.f1_score"),
        ({"loader": np.load}, "numpy.load"),
    ],
    ids=["class-outside-stack", "builtin-function", "sklearn-function", "numpy-function"],
)
def test_untrusted_types_are_refused(tmp_path: Path, payload: Any, refused: str) -> None:
    path = tmp_path / "tampered.skops"
    sio.dump(payload, path)
    assert refused in sio.get_untrusted_types(file=path)  # the premise: skops flags it

    with pytest.raises(UntrustedModelError, match=re.escape(str(path))) as caught:
        load_model(path)
    assert f"'{refused}'" in str(caught.value)


def test_refusal_lists_only_the_offending_types(tmp_path: Path) -> None:
    path = tmp_path / "mixed.skops"
    sio.dump({"ok": np.arange(3), "bad": collections.Counter("x"), "worse": len}, path)

    with pytest.raises(UntrustedModelError) as caught:
        load_model(path)
    refused = re.search(r"\[(.*)\]$", str(caught.value))
    assert refused is not None
    assert sorted(refused.group(1).split(", ")) == ["'builtins.len'", "'collections.Counter'"]


def test_model_trusted_types_refuses_untrusted_model() -> None:
    with pytest.raises(UntrustedModelError, match=r"^model: .*'collections\.Counter'"):
        model_trusted_types({"counts": collections.Counter("ab")})


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model file not found"):
        load_model(tmp_path / "absent.skops")
