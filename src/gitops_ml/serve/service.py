"""The BentoML service every bento of the engine is built from.

``gitops-ml package`` copies this module, ``contract.py`` and ``inference_log.py`` into the bento
(as the package ``gitops_ml_service``) beside ``bento_config.json``, which holds what the service
serves: the model's tag, version and data fingerprint, the request contract derived from the
project's pandera schema, and the serving settings. The bento therefore needs neither the
project's code nor the engine at serve time.

Endpoints (all JSON):
- ``POST /predict``: one record (an object) -> ``{"prediction": ..., "probability": ...}``
- ``POST /predict_batch``: a list of records -> a list of those, in order, checked column by column.
  Concurrent requests of both endpoints are merged into one model call (``ColumnBatcher``), without
  waiting when the model is idle.
- ``GET /metadata``: which model version and data fingerprint answer, the contract, the settings.
- BentoML's own ``/livez``, ``/readyz``, ``/metrics`` (Prometheus) and ``/docs.json``.
Every response carries ``X-Model-Name``, ``X-Model-Version`` and ``X-Data-Fingerprint`` headers.

Request ids: every prediction request has one, the caller's ``X-Request-ID`` when it sends one (at most
128 characters of ``A-Za-z0-9._:-``, else a 400 naming the header), else a generated uuid4 hex. The
response's ``X-Request-ID`` header holds it; ``/predict`` also returns it as ``request_id`` in the body,
and ``/predict_batch`` gives row ``i`` the id ``<request id>:<i>``. The inference log holds each row's id.
``X-Gitops-ML-Traffic`` marks a request as other than production traffic (``gitops-ml smoke`` sends
``smoke``): its rows are logged with that ``traffic`` and left out by drift and ``feedback join``.
The project's ``id_column`` (a contract column) is checked and logged but never given to the model.

A request that breaks the contract gets a 400 whose ``detail`` lists every failing field
(``loc`` is the field, prefixed by the row's index in a batch); the server goes on serving.
A prediction request whose Content-Type is not ``application/json`` gets a 415, and one nested deeper
than ``MAX_DEPTH`` levels a 400, before BentoML parses it.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import re
import uuid
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import bentoml
import orjson
from pydantic import BaseModel, Field, WithJsonSchema
from starlette.responses import Response

from .contract import BatchChecker, Columns, nests_deeper_than, request_model, to_frame_columns
from .inference_log import OFF, PRODUCTION, LogWriter

logger = logging.getLogger("gitops_ml.service")

CONFIG_FILE = "bento_config.json"
CONFIG_ENV = "GITOPS_ML_BENTO_CONFIG"  # another config file, for tests and debugging
LOG_ENV = "GITOPS_ML_INFERENCE_LOG"  # where the log goes on this host, over the baked-in setting


def _load_config() -> dict:
    path = Path(os.environ.get(CONFIG_ENV) or Path(__file__).resolve().parents[1] / CONFIG_FILE)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuntimeError(f"{path}: no bento config; build the bento with `gitops-ml package`") from None


# The service batches rows itself; one OpenMP thread per model call avoids oversubscribing the CPU
# (with several threads, a one-row call of a gradient-boosting model took 10x longer under load).
os.environ.setdefault("OMP_NUM_THREADS", "1")

CONFIG = _load_config()
SERVING = CONFIG["serving"]
CONTRACT = CONFIG["contract"]
MAX_BATCH = int(SERVING["max_batch_size"])

Record = request_model(CONTRACT, SERVING["extra_fields"])
# /predict_batch takes the records as plain JSON objects and checks them column by column (``BatchChecker``:
# a third of the per-record model's cost at 100 rows, with the same 400s); OpenAPI still shows the contract.
# The record's schema inline (a flat model has no $defs), since BentoML's OpenAPI cannot resolve references.
RECORD_SCHEMA = Record.model_json_schema()
RawBatch = Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_BATCH),
                     WithJsonSchema({"type": "array", "items": RECORD_SCHEMA, "minItems": 1, "maxItems": MAX_BATCH})]
CHECKER = BatchChecker(CONTRACT, Record, SERVING["extra_fields"])
# The record model's attribute of each contract column (fields are aliases of safe names).
RECORD_FIELDS = [(name, field.alias) for name, field in Record.model_fields.items()]
MAX_DEPTH = 32  # JSON nesting any endpoint accepts: a record is 1 level, a batch 2
API_ROUTES = ("/predict", "/predict_batch")
# What the model is given: the contract without the id column, which is only logged (and joined on).
ID_COLUMN = CONFIG.get("id_column")
MODEL_CONTRACT = {**CONTRACT, "columns": [c for c in CONTRACT["columns"] if c["name"] != ID_COLUMN]}

REQUEST_ID_HEADER = "X-Request-ID"
TRAFFIC_HEADER = "X-Gitops-ML-Traffic"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
TRAFFIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
# (request id, traffic) of the request being answered: set by the middleware, read by the endpoints.
REQUEST: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar("gitops_ml_request")


class Prediction(BaseModel):
    prediction: int | float | str | bool
    """The label (classification) or the value (regression)."""
    probability: float | None = None
    """Binary: probability of the positive class; multiclass: of the predicted class; regression: null."""


def _log_counters() -> dict[str, Any]:
    """The inference log's counters, made in the serving worker: rows dropped (with the reason), rows
    written, uploads that failed.

    prometheus_client is imported here, not at the top: BentoML sets ``PROMETHEUS_MULTIPROC_DIR`` in
    the worker after importing this module, and only then do the counters reach ``/metrics``
    (aggregated across workers). ``bentoml build`` imports the module too and makes none.
    """
    import prometheus_client

    return {
        "dropped": prometheus_client.Counter(
            "gitops_ml_inference_log_dropped_rows",
            "Served rows the inference log lost: its buffer was full, the disk failed, or storage did not take "
            "them before shutdown"),
        "dropped_by_reason": prometheus_client.Counter(
            "gitops_ml_inference_log_lost_rows", "Served rows the inference log lost, by reason",
            ["reason"]),
        "written": prometheus_client.Counter(
            "gitops_ml_inference_log_written_rows", "Served rows written to the inference log"),
        "upload_errors": prometheus_client.Counter(
            "gitops_ml_inference_log_upload_failures",
            "Uploads of inference-log objects that failed (each is retried with backoff)"),
    }


# What /metadata and the response headers say; the service adds the model's classes when it loads.
IDENTITY = ("model_name", "model_version", "model_tag", "data_fingerprint", "git_commit", "run_id", "task")
METADATA: dict[str, Any] = {key: CONFIG.get(key) for key in IDENTITY} | {
    "bento": CONFIG.get("service_name"),
    "contract": CONTRACT,
    "serving": SERVING,
    "gitops_ml_version": CONFIG.get("gitops_ml_version"),
}


def json_answer(payload: Any, status: int = 200) -> Response:
    """An answer encoded by orjson (a tenth of pydantic's time for a 100-row answer; docs/benchmarks.md)."""
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def refusal(status: int, kind: str, message: str) -> tuple[int, bytes]:
    """A 4xx body in the shape of the service's other 400s: ``error`` and a ``detail`` list."""
    return status, orjson.dumps({"error": message, "detail": [{"type": kind, "loc": ["body"], "msg": message}]})


def request_identity(headers: dict[bytes, bytes]) -> tuple[str, str] | tuple[int, bytes]:
    """(request id, traffic) of a prediction request's headers, or a 400 naming the header that is wrong.

    The id is the caller's ``X-Request-ID`` (1 to 128 characters of ``A-Za-z0-9._:-``, so it is safe in
    logs, file names and CSV) or a new uuid4 hex; traffic is ``X-Gitops-ML-Traffic`` (lower case) or
    ``production``.
    """
    sent = headers.get(REQUEST_ID_HEADER.lower().encode())
    if sent is None:
        request_id = uuid.uuid4().hex
    else:
        request_id = sent.decode("latin-1")
        if not REQUEST_ID.fullmatch(request_id):
            return refusal(400, "invalid_header", f"header {REQUEST_ID_HEADER} must be 1 to 128 characters of "
                           f"A-Za-z0-9._:- (got {len(request_id)} characters: {request_id[:40]!r})")
    marked = headers.get(TRAFFIC_HEADER.lower().encode())
    traffic = PRODUCTION if marked is None else marked.decode("latin-1").lower()
    if not TRAFFIC.fullmatch(traffic):
        return refusal(400, "invalid_header", f"header {TRAFFIC_HEADER} must be 1 to 32 characters of "
                       f"A-Za-z0-9_- such as smoke (got {traffic[:40]!r})")
    return request_id, traffic


def check_request(content_type: str, body: bytes) -> tuple[int, bytes] | None:
    """A refusal for a prediction request that is not a JSON body of bounded depth; None when it is."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        return refusal(415, "unsupported_media_type",
                       f"Content-Type must be application/json, got {content_type or '(none)'!r}")
    depth = nests_deeper_than(body, MAX_DEPTH)
    if depth is not None:
        return refusal(400, "json_too_deep", f"request body nests {depth} levels deep; at most {MAX_DEPTH}")
    return None


class ServiceMiddleware:
    """Answer ``GET /metadata``, refuse prediction requests that are not bounded JSON before BentoML parses
    them (415 for another content type, 400 past ``MAX_DEPTH`` levels), and stamp every response with
    the model's identity headers."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.headers = [
            (b"x-model-name", str(CONFIG["model_name"]).encode()),
            (b"x-model-version", str(CONFIG["model_version"]).encode()),
            (b"x-data-fingerprint", str(CONFIG["data_fingerprint"]).encode()),
        ]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].rstrip("/")
        if path == "/metadata" and scope["method"] in ("GET", "HEAD"):
            body = json.dumps(METADATA, default=str).encode()
            await self.answer(send, 200, body if scope["method"] == "GET" else b"", len(body))
            return
        stamp = self.headers
        if path in API_ROUTES and scope["method"] == "POST":
            body, receive = await read_body(receive)
            headers = dict(scope.get("headers") or [])
            identity = request_identity(headers)
            if isinstance(identity[0], int):
                await self.answer(send, *identity)
                return
            refused = check_request(headers.get(b"content-type", b"").decode("latin-1"), body)
            if refused is not None:
                await self.answer(send, *refused, request_id=identity[0])
                return
            REQUEST.set(identity)  # the endpoint runs in this context (or a copy of it)
            stamp = [*self.headers, (b"x-request-id", identity[0].encode())]

        async def stamped(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *stamp]
            await send(message)

        await self.app(scope, receive, stamped)

    async def answer(self, send: Any, status: int, body: bytes, length: int | None = None,
                     request_id: str | None = None) -> None:
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body) if length is None
                                                                           else length).encode()),
            *self.headers, *([(b"x-request-id", request_id.encode())] if request_id else [])]})
        await send({"type": "http.response.body", "body": body})


async def read_body(receive: Any) -> tuple[bytes, Any]:
    """The whole request body, and a ``receive`` that hands it on to the app as one message."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"", receive
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


@bentoml.service(
    name=CONFIG["service_name"],
    workers=int(SERVING.get("workers", 1)),
    traffic={"timeout": max(60, int(SERVING.get("max_latency_ms", 10_000)) // 1000 + 30)},
)
class ModelService:
    """Serves one registered model version, checked by the project's contract, logged for monitoring."""

    bento_model = bentoml.models.BentoModel(CONFIG["model_tag"])

    def __init__(self) -> None:
        self.batcher = ColumnBatcher(self._predict_columns, MAX_BATCH)
        self.model = _load_estimator(self.bento_model)
        classes = getattr(self.model, "classes_", None)
        METADATA["classes"] = None if classes is None else classes.tolist()
        location = os.environ.get(LOG_ENV) or SERVING["inference_log"]
        counters = _log_counters()

        def dropped(rows: int, reason: str) -> None:
            counters["dropped"].inc(rows)
            counters["dropped_by_reason"].labels(reason=reason).inc(rows)

        # inference_log = "off": no writer at all, so a prediction pays nothing for the log.
        self.log = None if location == OFF else LogWriter(
            location,
            model_name=CONFIG["model_name"],
            model_version=int(CONFIG["model_version"]),
            data_fingerprint=CONFIG["data_fingerprint"],
            capacity=int(SERVING["log_queue_size"]),
            rotate_bytes=int(float(SERVING["log_rotate_mb"]) * 2**20),
            rotate_seconds=float(SERVING.get("log_rotate_seconds", 60)),
            on_drop=dropped,
            on_write=counters["written"].inc,
            on_upload_error=lambda reason: counters["upload_errors"].inc(),
        )
        self.flush_seconds = float(SERVING.get("log_flush_seconds", 20))
        METADATA["inference_log"] = _log_place(self.log)
        logger.info("serving %s v%s; inference log: %s", CONFIG["model_name"], CONFIG["model_version"],
                    METADATA["inference_log"])

    @bentoml.api(route="/predict")
    async def predict(self, record: Record, /) -> Prediction:  # type: ignore[valid-type]
        """Predict one record. Concurrent records are batched into one model call."""
        columns = Columns({name: [getattr(record, attribute)] for attribute, name in RECORD_FIELDS}, 1)
        request_id, traffic = _identity()
        predictions, probabilities = await self.batcher(columns)
        if self.log is not None:
            self.log.submit_columns(columns.values, predictions, probabilities, request_ids=[request_id],
                                    traffic=traffic)
        return json_answer({"prediction": predictions[0], "probability": probabilities[0], "request_id": request_id})

    @bentoml.api(route="/predict_batch")
    async def predict_batch(self, records: RawBatch, /) -> list[Prediction]:  # type: ignore[valid-type]
        """Predict a list of records (1 to ``max_batch_size``), answers in the same order.

        Concurrent requests are merged into one model call (up to ``max_batch_size`` rows); a request
        that finds the model idle is predicted at once.
        """
        columns = CHECKER.check(records)
        batch_id, traffic = _identity()
        predictions, probabilities = await self.batcher(columns)
        ids = [f"{batch_id}:{i}" for i in range(len(predictions))]
        if self.log is not None:
            self.log.submit_columns(columns.values, predictions, probabilities, request_ids=ids, traffic=traffic)
        return json_answer([{"prediction": p, "probability": q, "request_id": r}
                            for p, q, r in zip(predictions, probabilities, ids, strict=True)])

    def _predict_columns(self, columns: Columns) -> tuple[list, list]:
        return self._predict(to_frame_columns(columns, MODEL_CONTRACT))

    def _predict(self, frame: Any) -> tuple[list, list]:
        if CONFIG.get("task") == "classification" and hasattr(self.model, "predict_proba"):
            # One model pass: the label is the most probable class (what predict returns for the
            # engine's classifiers), so label and probability always agree.
            scores = self.model.predict_proba(frame)
            predictions = self.model.classes_[scores.argmax(axis=1)].tolist()
            # Binary: the positive class's probability, what thresholds and drift checks read.
            probabilities = (scores[:, 1] if scores.shape[1] == 2 else scores.max(axis=1)).tolist()
            return predictions, probabilities
        # Regression, or a non-scikit-learn flavor: whatever shape predict returns, one value a row.
        import numpy as np

        values = np.asarray(self.model.predict(frame)).reshape(len(frame), -1)[:, 0]
        return values.tolist(), [None] * len(frame)

    @bentoml.on_shutdown
    def close_log(self) -> None:
        """On SIGTERM (BentoML's shutdown): store the rows still held, within ``log_flush_timeout``."""
        if self.log is None:
            return
        held = self.log.pending
        self.log.close(self.flush_seconds)
        logger.info("inference log %s: closed; %d row(s) were held at shutdown, %d written in all, %d lost in all",
                    METADATA["inference_log"], held, self.log.written, self.log.dropped)


ModelService.add_asgi_middleware(ServiceMiddleware)


def _log_place(log: LogWriter | None) -> str:
    """Where the log goes, as /metadata says it: an absolute directory, a URI, or "off"."""
    if log is None:
        return OFF
    return str(log.directory.resolve()) if log.local else log.location


def _identity() -> tuple[str, str]:
    """The answered request's (id, traffic); a new id when called outside the middleware (in-process calls)."""
    return REQUEST.get(None) or (uuid.uuid4().hex, PRODUCTION)


class ColumnBatcher:
    """Batch requests without waiting: one model call at a time; the requests that arrive while it runs
    make up the next call (up to ``max_rows`` rows, a request never split).

    A lone request, a single record or a full batch, is predicted at once; under load the calls grow
    with the queue. It replaces BentoML's adaptive dispatcher for ``/predict_batch``: the dispatcher
    counts requests, not rows, against ``max_batch_size``, so a lone 100-row request waited for company
    it could not use (``CorkDispatcher.controller`` in 1.4.39). BentoML's documented way to batch
    one-record calls, ``self.to_async.predict_batch([record])``, loops back through an in-process HTTP
    client that dropped connections under concurrency in 1.4.39 (500s, "Server disconnected").
    """

    def __init__(self, predict: Any, max_rows: int) -> None:
        self.predict = predict
        self.max_rows = max_rows
        self.waiting: list[tuple[Columns, asyncio.Future]] = []
        self.running = False

    async def __call__(self, columns: Columns) -> tuple[list, list]:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((columns, future))
        if not self.running:
            self.running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    def _next_call(self) -> list[tuple[Columns, asyncio.Future]]:
        taken, rows = 0, 0
        while taken < len(self.waiting) and (taken == 0 or rows + self.waiting[taken][0].rows <= self.max_rows):
            rows += self.waiting[taken][0].rows
            taken += 1
        call, self.waiting = self.waiting[:taken], self.waiting[taken:]
        return call

    async def _drain(self) -> None:
        try:
            while self.waiting:
                call = self._next_call()
                try:
                    predictions, probabilities = await anyio.to_thread.run_sync(
                        self.predict, Columns.concat([columns for columns, _ in call]))
                except Exception as exc:  # every caller of the call gets the error
                    for _, future in call:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                start = 0
                for columns, future in call:
                    end = start + columns.rows
                    if not future.done():
                        future.set_result((predictions[start:end], probabilities[start:end]))
                    start = end
        finally:
            self.running = False


def _load_estimator(bento_model: Any) -> Any:
    """The scikit-learn estimator (for ``predict_proba``); the generic pyfunc for other flavors."""
    import mlflow

    path = bento_model.path_of("mlflow_model")
    flavors = mlflow.models.Model.load(path).flavors
    if "sklearn" in flavors:
        import mlflow.sklearn

        return mlflow.sklearn.load_model(path)
    return mlflow.pyfunc.load_model(path)
