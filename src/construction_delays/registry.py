"""Model registry operations: register the pipeline's best model as a new version (``challenger``),
promote it to ``champion`` behind the quality gates, and roll ``champion`` back.

Alias changes are atomic: everything is computed first, the aliases are captured, and if setting
the new ones fails half-way the captured ones are put back (:func:`set_aliases_atomically`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from construction_delays.config import Params
from construction_delays.errors import ProjectError
from construction_delays.files import read_json
from construction_delays.tracking import connect

CHALLENGER, CHAMPION, PREVIOUS = "challenger", "champion", "previous"
ALIASES = (CHAMPION, CHALLENGER, PREVIOUS)
WAS_CHAMPION_TAG = "promotion.was_champion"
# Set on the version a rollback moved @champion away from: main still builds that model until its
# merge is reverted, and promoting it again on the next main run would silently undo the rollback.
ROLLED_BACK_TAG = "promotion.rolled_back"
CONTENT_TAGS = ("dvc.model_md5", "dvc.data_md5")
PR_SUBJECT = re.compile(r"Merge pull request #(?P<a>\d+)|\(#(?P<b>\d+)\)\s*$")


class RegistryError(ProjectError, RuntimeError):
    pass


def _client(params: Params, root: Path) -> Any:
    from mlflow import MlflowClient

    connect(root, params.mlflow.experiment)
    return MlflowClient()


def register_challenger(params: Params, root: Path, run_info_path: Path) -> dict[str, Any]:
    """Register the logged model of the last pipeline run and point ``challenger`` at it.

    Idempotent: if a version already comes from that run, it is reused, not duplicated. A version
    is also reused when it holds the same model bytes trained on the same data (the DVC hashes
    ``dvc.model_md5`` and ``dvc.data_md5`` match): after a ``git revert`` DVC restores the old
    model and the pipeline re-logs it, and that is the old version again, not a new one.
    """
    from mlflow.exceptions import MlflowException

    if not run_info_path.is_file():
        raise RegistryError(
            f"{run_info_path}: not found; run the pipeline first (`mlops run` or `dvc repro`)"
        )
    info = read_json(run_info_path)
    client = _client(params, root)
    name = params.mlflow.registered_model
    try:
        run = client.get_run(info["run_id"])
    except MlflowException:
        raise RegistryError(
            f"{run_info_path}: run {info['run_id']} is not in the tracking store {info['tracking_uri']};"
            " log it there with `dvc repro --force --single-item log_run` (nothing retrains)"
        ) from None
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description=f"Best model of the {params.mlflow.experiment} pipeline"
        )
    existing = client.search_model_versions(f"name = '{name}' and run_id = '{info['run_id']}'")
    existing = existing or same_model_versions(client, name, run.data.tags)
    if existing:
        version = max(existing, key=lambda v: int(v.version))
        created = False
    else:
        version = client.create_model_version(
            name,
            source=info["model_uri"],
            run_id=info["run_id"],
            # A tracking server (unlike the SQLite store) rejects a models:/ source without it.
            model_id=info.get("model_id") or logged_model_id(info["model_uri"]),
            tags={
                k: v
                for k, v in run.data.tags.items()
                if k.startswith(("git.", "dvc.", "params.", "best_model"))
            },
            description=f"{info['best_model']} from commit {info['git_commit'][:12]}",
        )
        created = True
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    return {
        "name": name,
        "version": int(version.version),
        "alias": CHALLENGER,
        "created": created,
        "run_id": version.run_id,
    }


def logged_model_id(model_uri: str) -> str | None:
    """The logged-model id in ``models:/m-...`` (run records written before it was stored)."""
    prefix = "models:/"
    if model_uri.startswith(prefix) and "/" not in model_uri[len(prefix) :]:
        return model_uri[len(prefix) :]
    return None


def same_model_versions(client: Any, name: str, run_tags: Mapping[str, str]) -> list[Any]:
    """Versions of ``name`` whose DVC model and data hashes equal the run's (none if unknown)."""
    wanted = {tag: run_tags.get(tag) for tag in CONTENT_TAGS}
    if not all(wanted.values()):
        return []
    versions = client.search_model_versions(f"name = '{name}'")
    return [v for v in versions if all(v.tags.get(t) == h for t, h in wanted.items())]


# --- aliases -------------------------------------------------------------------------------------


def version_by_alias(client: Any, name: str, alias: str) -> Any | None:
    """The version an alias points at, or None when the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def capture_aliases(client: Any, name: str) -> dict[str, str | None]:
    """The version each managed alias points at now (None when unset)."""
    captured = {}
    for alias in ALIASES:
        version = version_by_alias(client, name, alias)
        captured[alias] = None if version is None else str(version.version)
    return captured


def apply_aliases(client: Any, name: str, target: Mapping[str, str | None]) -> None:
    """Point each alias at its version, in order; None deletes the alias."""
    for alias, version in target.items():
        if version is None:
            if version_by_alias(client, name, alias) is not None:
                client.delete_registered_model_alias(name, alias)
        else:
            client.set_registered_model_alias(name, alias, str(version))


def restore_aliases(client: Any, name: str, captured: Mapping[str, str | None]) -> None:
    """Put the aliases back exactly as captured (the undo of a failed :func:`apply_aliases`)."""
    apply_aliases(client, name, captured)


def set_aliases_atomically(
    client: Any, name: str, target: Mapping[str, str | None], captured: Mapping[str, str | None]
) -> None:
    """Apply ``target``; on any exception restore ``captured`` and re-raise."""
    try:
        apply_aliases(client, name, target)
    except BaseException:
        restore_aliases(client, name, captured)
        raise


# --- scoring on the held-out split ---------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    """A version's metrics on the current test split, plus the per-class report (classification)."""

    metrics: dict[str, float]
    per_class: dict[str, Any]
    rows: int


def load_version_model(client: Any, name: str, version: str) -> Any:
    """Download a version's model and load it with the project's skops trust rule (never pickle)."""
    from construction_delays.persistence import load_model

    with tempfile.TemporaryDirectory(prefix="mlops-model-") as tmp:
        source = client.get_model_version_download_uri(name, version)
        import mlflow

        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp))
        files = sorted(local.rglob("model.skops"))
        if not files:
            raise RegistryError(f"{name} v{version}: no model.skops in its artifacts ({source})")
        return load_model(files[0])


def score_model(params: Params, model: Any, test_path: Path) -> Scores:
    """Score ``model`` on the test split at ``test_path`` with the pipeline's own metrics."""
    from sklearn.metrics import classification_report

    from construction_delays.evaluation import (
        classification_metrics,
        predict_proba_or_none,
        ranking_scores,
        regression_metrics,
        resolve_positive_label,
    )
    from construction_delays.stages import load_split

    if not test_path.is_file():
        raise RegistryError(
            f"{test_path}: not found; the promotion re-scores models on the test split"
            " (`dvc repro split`, or `dvc pull` it)"
        )
    features, target = load_split(params, test_path)
    missing = [c for c in params.data.feature_columns if c not in features.columns]
    if missing:
        raise RegistryError(f"{test_path}: columns {missing} missing")
    predictions = model.predict(features)
    if params.data.task != "classification":
        return Scores(regression_metrics(target, predictions), {}, len(features))
    classes = list(model.classes_)
    positive = resolve_positive_label(classes, params.data.positive_class)
    scores = ranking_scores(model, features, predict_proba_or_none(model, features))
    metrics = classification_metrics(target, predictions, scores, classes, positive)
    report = classification_report(target, predictions, output_dict=True, zero_division=0)
    return Scores(metrics, report, len(features))


def check_behaviour(
    params: Params, model: Any, label: str, test_path: Path, metrics: dict[str, float]
) -> dict[str, Any]:
    """The behavioural checks of params.yaml on ``model`` and the test split (as the `behaviour`
    stage runs them on the pipeline's best model)."""
    from construction_delays import behaviour
    from construction_delays.stages import load_split

    features, target = load_split(params, test_path)
    results = behaviour.run_checks(params, model, features, target, metrics)
    return behaviour.report(label, len(features), results)


def score_version(params: Params, client: Any, version: Any, test_path: Path) -> Scores:
    name = version.name
    return score_model(params, load_version_model(client, name, str(version.version)), test_path)


def logged_test_metrics(client: Any, version: Any) -> dict[str, float]:
    metrics = client.get_run(version.run_id).data.metrics
    return {k.removeprefix("test_"): v for k, v in metrics.items() if k.startswith("test_")}


# --- lineage -------------------------------------------------------------------------------------


def pr_number(root: Path, commit: str | None) -> str | None:
    """The pull request a commit came from: ``PR_NUMBER`` when set, else parsed from the commit
    subject ("Merge pull request #12 from ..." or a squash merge's "Title (#12)")."""
    from_env = os.environ.get("PR_NUMBER", "").strip()
    if from_env.isdigit():
        return from_env
    for ref in (commit, "HEAD"):
        if not ref:
            continue
        result = subprocess.run(
            ["git", "log", "-1", "--format=%s", ref],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            match = PR_SUBJECT.search(result.stdout.strip())
            return (match["a"] or match["b"]) if match else None
    return None


def lineage_tags(
    run_tags: Mapping[str, str],
    pr: str | None,
    validation: Mapping[str, Any],
    scores: Scores,
) -> dict[str, str]:
    """Model-version tags: where the version came from and what it scores."""
    tags = {
        key: run_tags[key]
        for key in ("git.commit", "dvc.data_md5", "dvc.model_md5", "params.digest", "best_model")
        if run_tags.get(key)
    }
    if pr:
        tags["git.pr_number"] = pr
    tags["data.rows"] = str(validation.get("rows", "unknown"))
    if validation.get("md5"):
        tags["data.md5"] = str(validation["md5"])
    tags["data.schema"] = json.dumps(validation.get("schema", {}), separators=(",", ":"))
    tags["metrics.test_rows"] = str(scores.rows)
    tags.update({f"metrics.{k}": f"{v:.4f}" for k, v in scores.metrics.items()})
    return tags


# --- promotion -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromotionInputs:
    """Files the promotion reads and writes (paths relative to the project root by default)."""

    test: Path = Path("outputs/split/test.parquet")
    validation: Path = Path("reports/validation.json")
    card: Path = Path("reports/model_card.md")


def _champion_reference(
    params: Params, client: Any, champion: Any, test_path: Path
) -> tuple[dict[str, dict[str, float]], dict[str, float] | None, list[str]]:
    """The champion re-scored on the same test split as the challenger. If its model cannot score
    that split (e.g. the features changed), fall back to its logged metrics and say so. A champion
    trained for another target or task, or tested on another kind of split, is not compared at all
    (see :func:`gates.problem_change`)."""
    from mlflow.exceptions import MlflowException

    from construction_delays.gates import ScoredProblem, problem_change

    label = f"champion v{champion.version}"
    logged = client.get_run(champion.run_id).data.params
    current = ScoredProblem.of(params.data.model_dump())
    if note := problem_change(current, ScoredProblem.of(logged), label):
        return {}, None, [note]
    try:
        scores = score_version(params, client, champion, test_path)
    except (ProjectError, MlflowException, OSError, KeyError, ValueError) as error:
        note = f"{label} could not be re-scored on this test split ({error}); compared with its logged test metrics"
        return {f"{label} (logged)": logged_test_metrics(client, champion)}, None, [note]
    return {f"{label} (same test split)": scores.metrics}, scores.metrics, []


def _write_card(
    params: Params, client: Any, challenger: Any, inputs: PromotionInputs, **card: Any
) -> Path:
    from construction_delays.modelcard import CARD_ARTIFACT_DIR, CardInputs, build_model_card

    run = client.get_run(challenger.run_id)
    text = build_model_card(
        CardInputs(
            name=challenger.name,
            version=str(challenger.version),
            run_id=challenger.run_id,
            estimator=run.data.tags.get("best_model", "unknown"),
            task=params.data.task,
            target=params.data.target,
            positive_class=params.data.positive_class,
            group=params.data.group,
            **card,
        )
    )
    inputs.card.parent.mkdir(parents=True, exist_ok=True)
    inputs.card.write_text(text, encoding="utf-8")
    client.log_artifact(challenger.run_id, str(inputs.card), artifact_path=CARD_ARTIFACT_DIR)
    return inputs.card


def fetch_card(client: Any, version: Any, card: Path) -> bool:
    """Download a version's model card to ``card`` (read-only; False when it has none)."""
    import shutil

    from mlflow.exceptions import MlflowException

    from construction_delays.modelcard import CARD_ARTIFACT_DIR, CARD_FILE_NAME

    with tempfile.TemporaryDirectory(prefix="mlops-card-") as tmp:
        try:
            path = client.download_artifacts(
                version.run_id, f"{CARD_ARTIFACT_DIR}/{CARD_FILE_NAME}", tmp
            )
        except (MlflowException, OSError):
            return False
        card.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, card)
    return True


def fetch_version_card(params: Params, root: Path, version: int, card: Path) -> bool:
    """Download the model card logged with registry ``version`` to ``card``; False when the
    registry does not hold the model, the version or its card."""
    from mlflow.exceptions import MlflowException

    if not holds_model(params, root):
        return False
    client = _client(params, root)
    try:
        found = client.get_model_version(params.mlflow.registered_model, str(version))
    except MlflowException:
        return False
    return fetch_card(client, found, card)


def promote_challenger(
    params: Params, root: Path, inputs: PromotionInputs | None = None
) -> dict[str, Any]:
    """Make ``challenger`` the ``champion`` if it passes the metric gates and is not worse than the
    current champion by more than ``gates.max_regression`` on the SAME held-out test split (the
    champion's model is re-scored, not its metrics from older data trusted). The old champion
    becomes ``previous``. A challenger that was champion before (a ``git revert`` brought it back)
    is checked against the absolute gates only: the revert is the decision to leave the current one.

    Every evaluated version gets lineage tags and a model card (also when it is not promoted).
    Idempotent (the champion again changes nothing) and atomic (see :func:`set_aliases_atomically`).
    """
    from construction_delays.gates import all_passed, behaviour_gate, model_gates

    inputs = inputs or PromotionInputs()
    client = _client(params, root)
    name = params.mlflow.registered_model
    captured = capture_aliases(client, name)
    if captured[CHALLENGER] is None:
        raise RegistryError(
            f"{name}: no version has the alias '{CHALLENGER}'; run `mlops register` first"
        )
    challenger = client.get_model_version(name, captured[CHALLENGER])
    outcome: dict[str, Any] = {
        "name": name,
        "challenger": int(challenger.version),
        "promoted": False,
        "previous": _int(captured[PREVIOUS]),
    }
    if captured[CHAMPION] == captured[CHALLENGER]:
        fetch_card(client, challenger, inputs.card)
        return {**outcome, "champion": int(challenger.version), "reason": "already champion"}
    rolled_back = challenger.tags.get(ROLLED_BACK_TAG)
    if rolled_back:
        return {
            **outcome,
            "champion": _int(captured[CHAMPION]),
            "reason": (
                f"v{challenger.version} was rolled back ({rolled_back}): revert its merge or train"
                f" a new model; `make rollback ROLLBACK_TO={challenger.version}` (`mlops rollback"
                f" --to {challenger.version}`) returns to it on purpose"
            ),
        }

    champion = (
        None if captured[CHAMPION] is None else client.get_model_version(name, captured[CHAMPION])
    )
    returning = champion is not None and challenger.tags.get(WAS_CHAMPION_TAG) == "true"
    model = load_version_model(client, name, str(challenger.version))
    scores = score_model(params, model, inputs.test)
    references: dict[str, dict[str, float]] = {}
    champion_scores, notes = None, []
    if champion is not None and not returning:
        references, champion_scores, notes = _champion_reference(
            params, client, champion, inputs.test
        )
    if returning:
        notes.append(
            f"v{challenger.version} was champion before and returns (git revert or rollback):"
            f" the regression gate against champion v{champion.version} is not applied"
        )
    results = model_gates(params.gates, scores.metrics, references)
    if params.gates.behaviour and params.behaviour.configured:
        results.append(
            behaviour_gate(
                check_behaviour(
                    params, model, f"v{challenger.version}", inputs.test, scores.metrics
                )
            )
        )
    passed = all_passed(results)
    failed = ", ".join(
        f"{r.gate}: {r.value} (needs {r.threshold})" for r in results if not r.passed
    )
    reason = "passed the gates" if passed else f"gates failed: {failed}"
    if notes:
        reason += f" ({'; '.join(notes)})"

    # Everything is known: record lineage and the card (idempotent), then move the aliases.
    run_tags = client.get_run(challenger.run_id).data.tags
    validation = read_json(inputs.validation) if inputs.validation.is_file() else {}
    tags = lineage_tags(run_tags, pr_number(root, run_tags.get("git.commit")), validation, scores)
    tags["promotion.verdict"] = "passed" if passed else "failed"
    tags["promotion.reason"] = reason[:4000]
    for key, value in tags.items():
        client.set_model_version_tag(name, challenger.version, key, value)
    card = _write_card(
        params,
        client,
        challenger,
        inputs,
        lineage=tags,
        validation=validation,
        metrics=scores.metrics,
        per_class=scores.per_class,
        test_rows=scores.rows,
        gates=results,
        verdict="promoted to champion" if passed else "stays challenger",
        notes=notes,
    )
    outcome.update(
        gates=[r.to_dict() for r in results],
        scores={"challenger": scores.metrics, "champion": champion_scores},
        lineage=tags,
        model_card=str(card),
        reason=reason,
    )
    if not passed:
        return {**outcome, "champion": _int(captured[CHAMPION])}
    target = {
        CHAMPION: str(challenger.version),
        PREVIOUS: captured[CHAMPION] or captured[PREVIOUS],
    }
    set_aliases_atomically(client, name, target, captured)
    client.set_model_version_tag(name, challenger.version, WAS_CHAMPION_TAG, "true")
    return {
        **outcome,
        "promoted": True,
        "champion": int(challenger.version),
        "previous": _int(target[PREVIOUS]),
    }


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)


# --- rollback ------------------------------------------------------------------------------------


def rollback_champion(params: Params, root: Path, to: int | None = None) -> dict[str, Any]:
    """Point ``champion`` at ``to`` (default: ``previous``) and ``previous`` at the old champion, so
    a second rollback undoes the first. No gates: a rollback returns to a version people chose.

    Returns the outcome with ``captured`` (the aliases before), for :func:`restore_aliases` if a
    later step of the rollback (the deploy commit) fails. Rolling back to the champion is a no-op.
    """
    from mlflow.exceptions import MlflowException

    client = _client(params, root)
    name = params.mlflow.registered_model
    captured = capture_aliases(client, name)
    if captured[CHAMPION] is None:
        from construction_delays.tracking import redact, tracking_uri

        raise RegistryError(
            f"{name}: no version has the alias '{CHAMPION}' in the registry at"
            f" {redact(tracking_uri(root))}: nothing to roll back"
        )
    target_version = str(to) if to is not None else captured[PREVIOUS]
    if target_version is None:
        raise RegistryError(
            f"{name}: no '{PREVIOUS}' alias; name the version to return to:"
            " `make rollback ROLLBACK_TO=N` (`mlops rollback --to N`)"
        )
    try:
        returning_to = client.get_model_version(name, target_version)
    except MlflowException:
        raise RegistryError(f"{name}: version {target_version} does not exist") from None
    outcome: dict[str, Any] = {
        "name": name,
        "from": int(captured[CHAMPION]),
        "champion": int(target_version),
        "captured": captured,
        # The rollback tags as they were, for undo_rollback.
        "captured_tags": {
            captured[CHAMPION]: None,
            target_version: returning_to.tags.get(ROLLED_BACK_TAG),
        },
    }
    if target_version == captured[CHAMPION]:
        return {**outcome, "changed": False, "previous": _int(captured[PREVIOUS])}
    target = {CHAMPION: target_version, PREVIOUS: captured[CHAMPION]}
    set_aliases_atomically(client, name, target, captured)
    client.set_model_version_tag(name, target_version, WAS_CHAMPION_TAG, "true")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    note = f"champion until {when}, rolled back to v{target_version}"
    _set_rollback_tags(client, name, {captured[CHAMPION]: note, target_version: None})
    return {**outcome, "changed": True, "previous": int(captured[CHAMPION])}


def _set_rollback_tags(client: Any, name: str, tags: Mapping[str, str | None]) -> None:
    """Tag versions as rolled back (a note) or not (None). Returning to a version is choosing it:
    an earlier rollback of it no longer stands."""
    for version, note in tags.items():
        if note is not None:
            client.set_model_version_tag(name, version, ROLLED_BACK_TAG, note)
        elif client.get_model_version(name, version).tags.get(ROLLED_BACK_TAG) is not None:
            client.delete_model_version_tag(name, version, ROLLED_BACK_TAG)


def undo_rollback(params: Params, root: Path, outcome: Mapping[str, Any]) -> None:
    """Put back the aliases and tags a rollback changed (used when its deploy commit fails)."""
    client, name = _client(params, root), params.mlflow.registered_model
    restore_aliases(client, name, outcome["captured"])
    _set_rollback_tags(client, name, outcome["captured_tags"])


def holds_model(params: Params, root: Path) -> bool:
    """Whether the registry knows the registered model at all. A CI job without a tracking server
    has no local store: answered False without creating one (MLflow would, with a migration)."""
    from mlflow.exceptions import MlflowException

    from construction_delays.tracking import store_missing

    if store_missing(root):
        return False
    try:
        _client(params, root).get_registered_model(params.mlflow.registered_model)
    except MlflowException:
        return False
    return True


def verify_version(params: Params, root: Path, version: int) -> bool:
    """Fail if the registry holds the model but not ``version`` (a typo would deploy a model that
    does not exist). Returns False when the store does not hold the model at all (a CI job's fresh
    local store), where nothing can be checked."""
    from mlflow.exceptions import MlflowException

    if not holds_model(params, root):
        return False
    client, name = _client(params, root), params.mlflow.registered_model
    try:
        client.get_model_version(name, str(version))
    except MlflowException:
        found = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        known = f"versions {found[0]}-{found[-1]}" if found else "no versions"
        raise RegistryError(
            f"{name}: version {version} does not exist (the registry has {known})"
        ) from None
    return True


def champion_version(params: Params, root: Path) -> int | None:
    """The version ``champion`` points at, or None."""
    found = version_by_alias(_client(params, root), params.mlflow.registered_model, CHAMPION)
    return None if found is None else int(found.version)
