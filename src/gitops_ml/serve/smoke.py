"""Smoke test of a running service over HTTP: health, identity, well-formed predictions, the contract.

Used by ``gitops-ml smoke URL`` locally and by the level-2 workflows against the freshly built bento.
Every request it sends carries ``X-Gitops-ML-Traffic: smoke``: the service logs those rows as smoke
traffic, which drift and ``feedback join`` leave out (only production traffic counts).
"""

from __future__ import annotations

import functools
import json
import math
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field

from .. import tracking
from ..config import Spec
from ..data import read_table
from ..errors import GitopsMLError

TRAFFIC_HEADER = "X-Gitops-ML-Traffic"  # the service's marker of traffic that is not production
SMOKE_HEADERS = {TRAFFIC_HEADER: "smoke"}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class SmokeResult:
    url: str
    model_version: int | None = None
    data_fingerprint: str | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(passed), detail))
        return bool(passed)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self):
        return json.loads(self.body)


def call(url: str, method: str = "GET", payload=None, timeout: float = 30.0,
         headers: dict[str, str] | None = None) -> Answer:
    """One HTTP request; an HTTP error status is an answer, not an exception."""
    data = payload if payload is None or isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, method=method, headers=sent | (headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.read(), _lower(response.headers))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read(), _lower(exc.headers))


def _lower(headers) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


probe = functools.partial(call, headers=SMOKE_HEADERS)  # what every smoke check sends


def wait_ready(url: str, seconds: float) -> bool:
    """Poll ``/readyz`` for up to ``seconds``: a freshly started bento needs a few."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if probe(f"{url}/readyz", timeout=5).status == 200:
                return True
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def sample_rows(spec: Spec, columns: list[str], count: int) -> list[dict]:
    """``count`` rows of the project's data (seeded sample), as JSON records (NaN -> null)."""
    frame = read_table(spec.data_uri)
    frame = frame.sample(n=min(count, len(frame)), random_state=spec.seed)
    records = []
    for row in frame[[c for c in columns if c in frame.columns]].to_dict(orient="records"):
        records.append({key: _native(value) for key, value in row.items()})
    return records


def _native(value):
    """numpy scalars as Python values, NaN as None (JSON null)."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and math.isnan(value) else value


def smoke(spec: Spec, url: str, expect_version: int | None = None, expect_fingerprint: str | None = None,
          rows: int = 20, wait: float = 30.0) -> SmokeResult:
    """Run every check against the service at ``url``; the result says which passed."""
    url = url.rstrip("/")
    result = SmokeResult(url=url)
    try:
        _run_checks(spec, url, result, expect_version, expect_fingerprint, rows, wait)
    except (OSError, ValueError) as exc:  # refused connections, timeouts, bodies that are not JSON
        result.check("reachable", False, f"{type(exc).__name__}: {exc}")
    return result


def _run_checks(spec: Spec, url: str, result: SmokeResult, expect_version: int | None,
                expect_fingerprint: str | None, rows: int, wait: float) -> None:
    if not result.check("readyz", wait_ready(url, wait), f"GET {url}/readyz"):
        return
    live = probe(f"{url}/livez")
    result.check("livez", live.status == 200, f"status {live.status}")
    meta = probe(f"{url}/metadata")
    if not result.check("metadata", meta.status == 200, f"status {meta.status}"):
        return
    metadata = meta.json()
    result.model_version = metadata.get("model_version")
    result.data_fingerprint = metadata.get("data_fingerprint")
    _check_identity(spec, result, metadata, expect_version, expect_fingerprint)

    columns = [c["name"] for c in metadata["contract"]["columns"]]
    records = sample_rows(spec, columns, max(rows, 2))
    single = probe(f"{url}/predict", "POST", records[0])
    result.check("predict", single.status == 200 and _well_formed(single.json(), metadata),
                 f"status {single.status}: {single.body[:200].decode(errors='replace')}")
    result.check("identity headers", single.headers.get("x-model-version") == str(result.model_version)
                 and single.headers.get("x-data-fingerprint") == result.data_fingerprint,
                 f"x-model-version {single.headers.get('x-model-version')!r}")
    request_id = single.headers.get("x-request-id", "")
    result.check("request id", bool(request_id) and single.status == 200
                 and single.json().get("request_id") == request_id,
                 f"x-request-id {request_id!r}")
    batch = probe(f"{url}/predict_batch", "POST", records)
    answers = batch.json() if batch.status == 200 else []
    result.check("predict_batch", batch.status == 200 and len(answers) == len(records)
                 and all(_well_formed(a, metadata) for a in answers),
                 f"status {batch.status}, {len(answers)} answers for {len(records)} rows")
    _check_contract(url, result, records[0], columns[0])


def _check_identity(spec: Spec, result: SmokeResult, metadata: dict, expect_version: int | None,
                    expect_fingerprint: str | None) -> None:
    if expect_version is not None:
        result.check("model version", result.model_version == expect_version,
                     f"serves v{result.model_version}, expected v{expect_version}")
        if expect_fingerprint is None:
            try:
                client = tracking.connect(spec)
                expect_fingerprint = tracking.get_version(spec, client, expect_version).data_fingerprint
            except GitopsMLError as exc:
                result.check("data fingerprint", False,
                             f"cannot read v{expect_version} from the registry: {exc}")
                return
    if expect_fingerprint is not None:
        result.check("data fingerprint", result.data_fingerprint == expect_fingerprint,
                     f"serves {str(result.data_fingerprint)[:12]}, expected {expect_fingerprint[:12]}")
    if metadata.get("model_name") != spec.model_name:
        result.check("model name", False,
                     f"serves {metadata.get('model_name')!r}, the project is {spec.model_name!r}")


def _check_contract(url: str, result: SmokeResult, record: dict, column: str) -> None:
    """A record missing a field must get a 400 naming it, and the service must keep answering."""
    broken = {k: v for k, v in record.items() if k != column}
    answer = probe(f"{url}/predict", "POST", broken)
    result.check("bad request refused", 400 <= answer.status < 500 and column.encode() in answer.body,
                 f"missing '{column}': status {answer.status}")
    again = probe(f"{url}/predict", "POST", record)
    result.check("serves after a bad request", again.status == 200, f"status {again.status}")


def _well_formed(answer: dict, metadata: dict) -> bool:
    if not isinstance(answer, dict) or "prediction" not in answer:
        return False
    prediction, probability = answer["prediction"], answer.get("probability")
    if metadata.get("task") == "classification":
        classes = metadata.get("classes")
        in_classes = classes is None or prediction in classes
        return in_classes and (probability is None or 0.0 <= float(probability) <= 1.0)
    return isinstance(prediction, int | float) and math.isfinite(prediction)
