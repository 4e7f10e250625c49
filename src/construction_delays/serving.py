"""REST serving of the champion model: FastAPI on uvicorn, one worker.

Endpoints: ``POST /predict`` (``{"records": [{column: value, ...}, ...]}``), ``GET /health``
(liveness), ``GET /ready`` (model loaded), ``GET /metadata``, ``GET /metrics`` (Prometheus).

The request schema is built from the model's feature schema (MLflow signature or params.yaml):
every column is a required key, values may be ``null`` (the pipeline imputes), numbers must be
finite JSON numbers, categories strings or numbers (integer codes: 3 is read as "3", as training
read them), and unknown keys are refused, so a bad request gets
a 422 naming the record and the column instead of a 500. The hot path validates the raw body with
pydantic-core straight into dicts keyed by column name, hands column arrays to the
:class:`~construction_delays.scoring.Predictor`, and answers with orjson.

Each prediction request is appended to a JSONL log (timestamp, model version, inputs, outputs,
latency) through an in-memory buffer flushed by a background thread, so disk writes stay off the
request path.
"""

from __future__ import annotations

import datetime as dt
import gc
import hmac
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from pydantic import (
    ConfigDict,
    Field,
    GetPydanticSchema,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic_core import core_schema
from starlette.concurrency import run_in_threadpool
from typing_extensions import TypedDict

from construction_delays.data import category_text
from construction_delays.scoring import FeatureSchema, Scorer, columns_from_records

MAX_RECORDS = 10_000
INLINE_RECORDS = 256  # larger requests are predicted in a worker thread (keeps /health responsive)
INLINE_BODY_BYTES = 64 << 10  # larger bodies are validated in a worker thread, for the same reason
API_KEY_HEADER = "x-api-key"
ENDPOINTS = ("/predict", "/health", "/ready", "/metadata", "/metrics")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


# --------------------------------------------------------------------------------------------
# Request schema
# --------------------------------------------------------------------------------------------


# A category is text, or a JSON number turned into the text training saw (3 and 3.0 as "3", see
# category_text): strings pass untouched with no Python call on the hot path; booleans and
# non-finite numbers are refused (strict), with one error per value rather than one per branch.
CATEGORY_SCHEMA = core_schema.nullable_schema(
    core_schema.union_schema(
        [
            core_schema.str_schema(strict=True),
            core_schema.no_info_after_validator_function(
                category_text,
                core_schema.union_schema(
                    [
                        core_schema.int_schema(strict=True),
                        core_schema.float_schema(strict=True, allow_inf_nan=False),
                    ]
                ),
            ),
        ],
        custom_error_type="category_type",
        custom_error_message="Input should be a string or a finite number",
    )
)


def record_type(schema: FeatureSchema) -> type:
    """A TypedDict of one record: keys are the column names (spaces and all), values nullable."""
    number = Annotated[float | None, Field(strict=True, allow_inf_nan=False)]
    text = Annotated[str | None, GetPydanticSchema(lambda _type, _handler: CATEGORY_SCHEMA)]
    fields: dict[str, Any] = {name: number for name in schema.numeric}
    fields.update({name: text for name in schema.categorical})
    record = TypedDict("Record", fields)  # type: ignore[misc]  # functional form: keys with spaces
    record.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    return record


def request_model(schema: FeatureSchema, max_records: int) -> type:
    """The pydantic model of a ``/predict`` body: ``{"records": [record, ...]}``."""
    return create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        records=(
            Annotated[list[record_type(schema)], Field(min_length=1, max_length=max_records)],  # type: ignore[misc]
            ...,
        ),
    )


def request_openapi(schema: FeatureSchema, max_records: int) -> dict[str, Any]:
    """The request body for the OpenAPI document (the route reads the raw body itself)."""
    record = TypeAdapter(record_type(schema)).json_schema()
    example = {name: 1.0 for name in schema.numeric} | {name: "text" for name in schema.categorical}
    body = {
        "type": "object",
        "properties": {
            "records": {"type": "array", "items": record, "minItems": 1, "maxItems": max_records}
        },
        "required": ["records"],
        "additionalProperties": False,
        "example": {"records": [example]},
    }
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}


MAX_ERRORS_LISTED = 20  # a 10,000-record body of bad values would otherwise answer with 80 MB


def describe_errors(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors without the offending input echoed back (it may be large or sensitive),
    the first ``MAX_ERRORS_LISTED`` of them and a count of the rest."""
    details = []
    for item in error.errors(include_url=False, include_context=False, include_input=False):
        if len(details) == MAX_ERRORS_LISTED:
            break
        loc = [part for part in item["loc"] if part != "body"]
        field = ".".join(str(part) for part in loc) or "(body)"
        details.append({"loc": loc, "field": field, "msg": item["msg"], "type": item["type"]})
    more = error.error_count() - len(details)
    if more > 0:
        details.append(
            {"loc": [], "field": "(more)", "msg": f"{more} more errors", "type": "truncated"}
        )
    return details


# --------------------------------------------------------------------------------------------
# Prediction log
# --------------------------------------------------------------------------------------------


class PredictionLog:
    """Append-only JSONL log with an in-memory buffer flushed by a background thread."""

    def __init__(self, path: Path, flush_seconds: float = 1.0, max_lines: int = 2000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("ab")
        self._lines: list[bytes] = []
        self._lock = threading.Lock()
        self._max_lines = max_lines
        self._stop = threading.Event()
        self._flush_seconds = flush_seconds
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self.errors = 0
        self._thread.start()

    def write(self, entry: dict[str, Any]) -> None:
        line = orjson.dumps(entry, option=JSON_OPTIONS | orjson.OPT_APPEND_NEWLINE)
        with self._lock:
            self._lines.append(line)
            full = len(self._lines) >= self._max_lines
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if not lines or self._file.closed:
            return
        try:
            self._file.write(b"".join(lines))
            self._file.flush()
        except OSError as error:  # a full disk must not take predictions down
            self.errors += 1
            if self.errors == 1:
                print(f"prediction log {self.path}: write failed: {error}", file=sys.stderr)

    def _run(self) -> None:
        while not self._stop.wait(self._flush_seconds):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()
        self._file.close()


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    predictions: Counter
    predicted_class: Counter
    model_info: Gauge

    @classmethod
    def create(cls, metadata: dict[str, Any]) -> Metrics:
        disable_created_metrics()  # no `*_created` series: they double the output for nothing
        registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        metrics = cls(
            registry=registry,
            requests=Counter(
                "mlops_http_requests",
                "HTTP requests by endpoint, method and status code",
                ["endpoint", "method", "status"],
                registry=registry,
            ),
            latency=Histogram(
                "mlops_http_request_duration_seconds",
                "HTTP request latency by endpoint (seconds)",
                ["endpoint"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            predictions=Counter(
                "mlops_predictions", "Rows predicted", ["model_version"], registry=registry
            ),
            predicted_class=Counter(
                "mlops_predicted_class", "Rows predicted per class", ["label"], registry=registry
            ),
            model_info=Gauge(
                "mlops_model_info",
                "The served model (value is always 1)",
                ["name", "version", "alias", "run_id", "git_sha"],
                registry=registry,
            ),
        )
        metrics.model_info.labels(
            *(str(metadata.get(k) or "") for k in ("name", "version", "alias", "run_id", "git_sha"))
        ).set(1)
        return metrics


class MetricsMiddleware:
    """Pure ASGI middleware: request count and latency per endpoint (unknown paths -> 'other')."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        endpoint = path if path in ENDPOINTS else "other"
        status = 500
        started = time.perf_counter()

        async def send_with_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
            self.metrics.requests.labels(endpoint, scope["method"], str(status)).inc()


# --------------------------------------------------------------------------------------------
# The application
# --------------------------------------------------------------------------------------------


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(payload, option=JSON_OPTIONS),
        status_code=status,
        media_type="application/json",
    )


class PayloadTooLargeError(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes without buffering them all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class ServingConfig:
    api_key: str | None = None
    log_path: Path | None = Path("reports/predictions.jsonl")
    max_records: int = MAX_RECORDS

    @property
    def max_body_bytes(self) -> int:
        """Bodies above this get a 413 before parsing: 1 MiB plus 2 KiB per allowed record."""
        return (1 << 20) + self.max_records * 2048


class PredictionService:
    """The model side of ``/predict``: validation, prediction, response, log and metrics."""

    def __init__(self, scorer: Scorer, config: ServingConfig, metrics: Metrics) -> None:
        self.scorer, self.config, self.metrics = scorer, config, metrics
        self.adapter = TypeAdapter(request_model(scorer.schema, config.max_records))
        self.log: PredictionLog | None = None
        meta = scorer.metadata
        self.model_name, self.model_version = meta.get("name"), meta.get("version")
        self.classes = scorer.classes
        self._counted = metrics.predictions.labels(str(self.model_version or ""))

    def parse(self, body: bytes) -> list[dict[str, Any]]:
        return self.adapter.validate_json(body).records

    def predict(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        prediction = self.scorer.predictor.predict(
            columns_from_records(records, self.scorer.schema)
        )
        labels = prediction.labels.tolist()
        response: dict[str, Any] = {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "predictions": labels,
        }
        if prediction.probabilities is not None:
            response["classes"] = self.scorer.metadata["classes"]
            response["probabilities"] = prediction.probabilities
        return response

    def record(
        self, records: list[dict[str, Any]], response: dict[str, Any], seconds: float
    ) -> None:
        self._counted.inc(len(records))
        if self.classes is not None:
            values, counts = np.unique(
                np.asarray(response["predictions"], dtype=object), return_counts=True
            )
            for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                self.metrics.predicted_class.labels(str(value)).inc(count)
        if self.log is not None:
            self.log.write(
                {
                    "ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                    "request_id": uuid.uuid4().hex,
                    "model_name": self.model_name,
                    "model_version": self.model_version,
                    "latency_ms": round(seconds * 1000, 3),
                    "n": len(records),
                    "inputs": records,
                    "predictions": response["predictions"],
                    "probabilities": response.get("probabilities"),
                }
            )


def create_app(scorer: Scorer, config: ServingConfig | None = None) -> FastAPI:
    """The FastAPI application serving ``scorer``."""
    config = config or ServingConfig()
    metrics = Metrics.create(scorer.metadata)
    service = PredictionService(scorer, config, metrics)
    state = {"ready": False}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if config.log_path is not None:
            try:
                service.log = PredictionLog(config.log_path)
            except OSError as error:  # e.g. a read-only filesystem: serve without the log
                print(f"prediction log disabled: {config.log_path}: {error}", file=sys.stderr)
        gc.collect()
        gc.freeze()  # the loaded model is long-lived: keep it out of the collector's scans
        state["ready"] = True
        try:
            yield
        finally:
            state["ready"] = False
            if service.log is not None:
                service.log.close()

    app = FastAPI(
        title="construction-delays model server",
        version=str(scorer.metadata.get("version") or "local"),
        lifespan=lifespan,
        default_response_class=Response,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    def authorised(request: Request) -> bool:
        if not config.api_key:
            return True
        given = request.headers.get(API_KEY_HEADER, "")
        return hmac.compare_digest(given.encode(), config.api_key.encode())

    def unauthorised() -> Response:
        return json_response({"detail": "missing or invalid API key (header X-API-Key)"}, 401)

    @app.post("/predict", openapi_extra=request_openapi(scorer.schema, config.max_records))
    async def predict(request: Request) -> Response:
        """Predict for 1..N records; returns labels, class probabilities and the model version."""
        if not authorised(request):
            return unauthorised()
        # JSON only: a browser page may POST text/plain cross-origin without a preflight.
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            detail = "send the body as JSON, with the header Content-Type: application/json"
            return json_response({"detail": detail}, 415)
        try:
            body = await read_body(request, config.max_body_bytes)
        except PayloadTooLargeError:
            return json_response({"detail": f"body larger than {config.max_body_bytes} bytes"}, 413)
        started = time.perf_counter()
        try:
            # A large body takes a while to validate: off the event loop, /health stays quick.
            records = (
                service.parse(body)
                if len(body) <= INLINE_BODY_BYTES
                else await run_in_threadpool(service.parse, body)
            )
        except ValidationError as error:
            return json_response({"detail": describe_errors(error)}, 422)
        if len(records) <= INLINE_RECORDS:
            response = service.predict(records)
        else:
            response = await run_in_threadpool(service.predict, records)
        seconds = time.perf_counter() - started
        service.record(records, response, seconds)
        return json_response(response)

    @app.get("/health")
    async def health() -> Response:
        """Liveness: the process answers."""
        return json_response({"status": "ok"})

    @app.get("/ready")
    async def ready() -> Response:
        """Readiness: the model is loaded and the server is not shutting down."""
        if not state["ready"]:
            return json_response({"ready": False}, 503)
        return json_response(
            {
                "ready": True,
                "model_name": service.model_name,
                "model_version": service.model_version,
            }
        )

    @app.get("/metadata")
    async def metadata(request: Request) -> Response:
        """The served model: name, version, alias, run, git commit, test metrics, feature schema."""
        if not authorised(request):
            return unauthorised()
        return json_response(
            {
                **scorer.metadata,
                "max_records": config.max_records,
                "prediction_log": str(config.log_path) if config.log_path else None,
            }
        )

    @app.get("/metrics")
    async def prometheus() -> Response:
        """Prometheus metrics: requests and latency per endpoint, predictions, model info."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def run_server(
    scorer: Scorer, config: ServingConfig, host: str, port: int, access_log: bool = False
) -> None:
    """Run the app with uvicorn (one worker; uvloop and httptools when installed)."""
    import uvicorn

    uvicorn.run(
        create_app(scorer, config),
        host=host,
        port=port,
        workers=1,
        access_log=access_log,
        server_header=False,
        log_level="info",
        timeout_graceful_shutdown=10,
    )
