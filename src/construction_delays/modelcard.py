"""Model cards: one Markdown page per registered model version, generated at promotion.

The card is built from data the promotion already has (the version's lineage, the validation
report of its data, its metrics re-scored on the held-out test split, the gate verdicts), so it
says what the registry says. It has no timestamps: the same inputs give the same card, which keeps
promotion idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from construction_delays.gates import GateResult

CARD_ARTIFACT_DIR = "model_card"
CARD_FILE_NAME = "model_card.md"

LIMITATIONS = (
    "Trained and evaluated on the data described above only; predictions for activities, regions "
    "or activity types outside that distribution are unreliable.",
    "Test metrics come from one held-out split; they estimate, not guarantee, production performance.",
    "Missing values are imputed (median for numbers, most frequent value for categories), so "
    "inputs with many missing fields are scored on imputed guesses.",
    "The model finds associations, not causes: do not read feature importance as the reason an "
    "activity is delayed.",
)


@dataclass(frozen=True)
class CardInputs:
    """Everything a model card shows; plain values so it can be built in tests without MLflow."""

    name: str
    version: str
    run_id: str
    estimator: str
    task: str
    target: str
    positive_class: Any
    lineage: Mapping[str, str]
    validation: Mapping[str, Any]
    metrics: Mapping[str, float]
    per_class: Mapping[str, Any]
    test_rows: int
    gates: list[GateResult]
    verdict: str
    notes: list[str] = field(default_factory=list)
    group: str | None = None  # data.group: the test split holds groups training never saw


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    lines = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    lines += [f"| {' | '.join(str(cell) for cell in row)} |" for row in rows]
    return lines


def _intended_use(inputs: CardInputs) -> list[str]:
    what = (
        f"predicts `{inputs.target}` (positive class: `{inputs.positive_class}`)"
        if inputs.task == "classification"
        else f"predicts `{inputs.target}` (regression)"
    )
    return [
        "## Intended use",
        "",
        f"A `{inputs.estimator}` pipeline that {what} for one construction activity from its "
        "schedule and activity features. It supports planners in flagging activities at risk; it "
        "is not meant to make contractual, staffing or safety decisions on its own.",
    ]


def _data_section(validation: Mapping[str, Any]) -> list[str]:
    rows = validation.get("rows", "unknown")
    lines = ["## Data", "", f"- rows: {rows}", f"- file: `{validation.get('file', 'unknown')}`"]
    if validation.get("md5"):
        lines.append(f"- md5: `{validation['md5']}`")
    schema = validation.get("schema") or {}
    missing = validation.get("missing_values") or {}
    if schema:
        total = rows if isinstance(rows, int) and rows > 0 else None
        table = [
            (
                f"`{column}`",
                dtype,
                missing.get(column, 0),
                f"{missing.get(column, 0) / total:.1%}" if total else "–",
            )
            for column, dtype in schema.items()
        ]
        lines += ["", *_table(("column", "type", "missing", "missing share"), table)]
    balance = validation.get("target_distribution") or {}
    if balance:
        lines += [
            "",
            "Class balance:",
            "",
            *_table(("class", "share"), [(k, f"{v:.1%}") for k, v in balance.items()]),
        ]
    return lines


def _metrics_section(inputs: CardInputs) -> list[str]:
    lines = [
        "## Metrics",
        "",
        f"Re-scored at promotion on the held-out test split ({inputs.test_rows} rows"
        + (
            f"; whole groups of `{inputs.group}` that training never saw)."
            if inputs.group
            else ")."
        ),
        "",
        *_table(("metric", "value"), [(k, f"{v:.4f}") for k, v in inputs.metrics.items()]),
    ]
    per_class = {
        label: scores
        for label, scores in inputs.per_class.items()
        if isinstance(scores, Mapping) and label not in {"macro avg", "weighted avg"}
    }
    if per_class:
        rows = [
            (
                label,
                f"{scores['precision']:.4f}",
                f"{scores['recall']:.4f}",
                f"{scores['f1-score']:.4f}",
                int(scores["support"]),
            )
            for label, scores in per_class.items()
        ]
        lines += [
            "",
            "Per class:",
            "",
            *_table(("class", "precision", "recall", "f1", "support"), rows),
        ]
    return lines


def _gates_section(inputs: CardInputs) -> list[str]:
    rows = [
        (r.gate, r.threshold, r.value, "✅ pass" if r.passed else "❌ fail") for r in inputs.gates
    ]
    lines = ["## Gates", "", f"Verdict: **{inputs.verdict}**", ""]
    lines += _table(("gate", "threshold", "value", "result"), rows) if rows else ["No gates."]
    lines += [f"- {note}" for note in inputs.notes]
    return lines


def _lineage_section(lineage: Mapping[str, str]) -> list[str]:
    shown = {k: v for k, v in lineage.items() if not k.startswith(("metrics.", "data.schema"))}
    return ["## Lineage", "", *_table(("tag", "value"), [(k, f"`{v}`") for k, v in shown.items()])]


def _monitoring_section(inputs: CardInputs) -> list[str]:
    return [
        "## Monitoring",
        "",
        "This version's run holds its reference profile (`reports/reference_profile.json`: the"
        " training data's distributions and the test-set predictions). Judge new data or the"
        " server's prediction log against it:",
        "",
        f"    mlops monitor --input <batch.csv | reports/predictions.jsonl> --model models:/{inputs.name}/{inputs.version}",
        "",
        "It exits 1 on drift; the thresholds are under `monitoring:` in params.yaml.",
    ]


def card_title(name: str, version: object) -> str:
    """The card's first line: it says which version the card is about."""
    return f"# Model card: {name} v{version}"


def build_model_card(inputs: CardInputs) -> str:
    """The card as Markdown: intended use, data, metrics, gates, lineage, monitoring, limitations."""
    sections = [
        [
            card_title(inputs.name, inputs.version),
            "",
            f"MLflow run `{inputs.run_id}`; estimator `{inputs.estimator}`.",
        ],
        _intended_use(inputs),
        _data_section(inputs.validation),
        _metrics_section(inputs),
        _gates_section(inputs),
        _lineage_section(inputs.lineage),
        _monitoring_section(inputs),
        ["## Limitations", "", *[f"- {item}" for item in LIMITATIONS]],
    ]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"
