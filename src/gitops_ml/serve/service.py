"""The BentoML service every bento of the engine is built from.

``gitops-ml package`` copies this module, ``contract.py`` and ``inference_log.py`` into the bento
(as the package ``gitops_ml_service``) beside ``bento_config.json``, which holds what the service
serves: the model's tag, version and data fingerprint, the request contract derived from the
project's pandera schema, and the serving settings. The bento therefore needs neither the
project's code nor the engine at serve time.

Endpoints (all JSON):
- ``POST /predict``: one record (an object) -> ``{"prediction": ..., "probability": ...}``
- ``POST /predict_batch``: a list of records -> a list of those, in order. Adaptive batching
  merges concurrent calls into one model call; concurrent ``/predict`` records are batched too.
- ``GET /metadata``: which model version and data fingerprint answer, the contract, the settings.
- BentoML's own ``/livez``, ``/readyz``, ``/metrics`` (Prometheus) and ``/docs.json``.
Every response carries ``X-Model-Name``, ``X-Model-Version`` and ``X-Data-Fingerprint`` headers.

A request that breaks the contract gets a 400 whose ``detail`` lists every failing field
(``loc`` is the field, prefixed by the row's index in a batch); the server goes on serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import bentoml
from pydantic import BaseModel, Field

from .contract import request_model, to_frame
from .inference_log import LogWriter

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
Batch = Annotated[list[Record], Field(min_length=1, max_length=MAX_BATCH)]  # type: ignore[valid-type]


class Prediction(BaseModel):
    prediction: int | float | str | bool
    """The label (classification) or the value (regression)."""
    probability: float | None = None
    """Binary: probability of the positive class; multiclass: of the predicted class; regression: null."""


def _log_counters() -> tuple[Any, Any]:
    """(dropped, written) row counters, made in the serving worker.

    prometheus_client is imported here, not at the top: BentoML sets ``PROMETHEUS_MULTIPROC_DIR`` in
    the worker after importing this module, and only then do the counters reach ``/metrics``
    (aggregated across workers). ``bentoml build`` imports the module too and makes none.
    """
    import prometheus_client

    dropped = prometheus_client.Counter(
        "gitops_ml_inference_log_dropped_rows",
        "Served rows the inference log dropped because its queue was full or the disk failed",
    )
    written = prometheus_client.Counter(
        "gitops_ml_inference_log_written_rows", "Served rows written to the inference log")
    return dropped, written


# What /metadata and the response headers say; the service adds the model's classes when it loads.
IDENTITY = ("model_name", "model_version", "model_tag", "data_fingerprint", "git_commit", "run_id", "task")
METADATA: dict[str, Any] = {key: CONFIG.get(key) for key in IDENTITY} | {
    "bento": CONFIG.get("service_name"),
    "contract": CONTRACT,
    "serving": SERVING,
    "gitops_ml_version": CONFIG.get("gitops_ml_version"),
}


class IdentityMiddleware:
    """Answer ``GET /metadata`` and stamp every response with the model's identity headers."""

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
        if scope["path"].rstrip("/") == "/metadata" and scope["method"] in ("GET", "HEAD"):
            body = json.dumps(METADATA, default=str).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                *self.headers]})
            await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
            return

        async def stamped(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, stamped)


@bentoml.service(
    name=CONFIG["service_name"],
    workers=int(SERVING.get("workers", 1)),
    traffic={"timeout": max(60, int(SERVING.get("max_latency_ms", 10_000)) // 1000 + 30)},
)
class ModelService:
    """Serves one registered model version, checked by the project's contract, logged for monitoring."""

    bento_model = bentoml.models.BentoModel(CONFIG["model_tag"])

    def __init__(self) -> None:
        self._single = RecordBatcher(self._predict_records, MAX_BATCH)
        self.model = _load_estimator(self.bento_model)
        classes = getattr(self.model, "classes_", None)
        METADATA["classes"] = None if classes is None else classes.tolist()
        location = os.environ.get(LOG_ENV) or SERVING["inference_log"]
        dropped, written = _log_counters()
        self.log = LogWriter(
            location,
            model_name=CONFIG["model_name"],
            model_version=int(CONFIG["model_version"]),
            data_fingerprint=CONFIG["data_fingerprint"],
            capacity=int(SERVING["log_queue_size"]),
            rotate_bytes=int(float(SERVING["log_rotate_mb"]) * 2**20),
            rotate_seconds=float(SERVING.get("log_rotate_minutes", 60)) * 60,
            on_drop=dropped.inc,
            on_write=written.inc,
        )
        METADATA["inference_log"] = str(self.log.directory.resolve())
        logger.info("serving %s v%s; inference log in %s", CONFIG["model_name"], CONFIG["model_version"],
                    self.log.directory)

    @bentoml.api(route="/predict")
    async def predict(self, record: Record, /) -> Prediction:  # type: ignore[valid-type]
        """Predict one record. Concurrent records are batched into one model call."""
        return await self._single(record)

    @bentoml.api(
        route="/predict_batch",
        batchable=True,
        max_batch_size=MAX_BATCH,
        max_latency_ms=int(SERVING.get("max_latency_ms", 10_000)),
    )
    def predict_batch(self, records: Batch, /) -> list[Prediction]:  # type: ignore[valid-type]
        """Predict a list of records (1 to ``max_batch_size``), answers in the same order.

        Adaptive batching merges concurrent requests into one model call.
        """
        return self._predict_records(records)

    def _predict_records(self, records: Any) -> list[Prediction]:
        rows = [record.model_dump() for record in records]
        predictions, probabilities = self._predict(to_frame(rows, CONTRACT))
        self.log.submit(rows, predictions, probabilities)
        pairs = zip(predictions, probabilities, strict=True)
        return [Prediction(prediction=p, probability=q) for p, q in pairs]

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
        self.log.close()


ModelService.add_asgi_middleware(IdentityMiddleware)


class RecordBatcher:
    """Batch single records without waiting: one model call at a time; the records that arrive
    while it runs make up the next call (up to ``max_batch``).

    At low load a record is predicted at once; under load the batches grow with the queue. BentoML's
    documented way to batch one-record calls, ``self.to_async.predict_batch([record])``, loops back
    through an in-process HTTP client that dropped connections under concurrency in 1.4.39 (500s,
    "Server disconnected"), and its dispatcher holds early requests for seconds while it calibrates.
    """

    def __init__(self, predict: Any, max_batch: int) -> None:
        self.predict = predict
        self.max_batch = max_batch
        self.waiting: list[tuple[Any, asyncio.Future]] = []
        self.running = False

    async def __call__(self, record: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((record, future))
        if not self.running:
            self.running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[: self.max_batch], self.waiting[self.max_batch:]
                try:
                    answers = await anyio.to_thread.run_sync(self.predict, [record for record, _ in batch])
                except Exception as exc:  # every caller of the batch gets the error
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), answer in zip(batch, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
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
