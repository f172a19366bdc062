"""Serving benchmark: the engine's bento under `bentoml serve` vs `mlflow models serve` vs in-process predict.

One scratch project on the bundled churn data is trained once; the same registered version is then
served both ways on 127.0.0.1 and driven by a thread pool of keep-alive HTTP clients at concurrency
1, 8 and 32, with single records and 100-record batches. In-process ``predict`` on the same rows
(records -> DataFrame -> predict_proba, one caller) is the limit neither server can beat.
A larger version of the test suite's load test (good and malformed requests mixed) closes the run.

Both servers run one worker and one OpenMP thread per model call (``OMP_NUM_THREADS=1``), and so does
the in-process baseline: on a shared 2-core machine, OpenMP's default of a thread per core made a
one-row call ten times slower. The client runs on the same cores as the server.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gitops_ml.processes import free_port, stop, wait_for

COMMAND = "`BENCH_PARTS=serving make bench` (or `BENCH_PARTS=serving .venv/bin/python -m bench`)"
EXAMPLE = Path(__file__).resolve().parents[1] / "src" / "gitops_ml" / "example" / "data" / "churn.csv"
PYPROJECT = """\
[project]
name = "bench-serving"
version = "0.0.1"

[tool.gitops-ml]
model_name = "churn-classifier"
task = "classification"
data = "data/churn.csv"
target = "churned"
time_column = "snapshot_date"
schema = "gitops_ml.example.schema:ChurnSchema"
model_factory = "gitops_ml.example.model:build_model"
"""
ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "BENTOML_DO_NOT_TRACK": "True", "DO_NOT_TRACK": "1",
       "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "OMP_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Scenario:
    concurrency: int
    batch: int  # 0: one record per request (the single-record endpoint)
    requests: int


@dataclass(frozen=True)
class Measure:
    requests: int
    rows: int
    failures: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


# -- servers ---------------------------------------------------------------------------------
def start(command: list[str], cwd: Path, env: dict, log: Path, ready: str) -> subprocess.Popen:
    with open(log, "ab") as handle:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=handle, stderr=handle, start_new_session=True)
    try:
        wait_for(ready, process, timeout=180)
    except Exception:
        stop(process)
        raise
    return process


# -- load ------------------------------------------------------------------------------------
def drive(port: int, path: str, bodies: list[bytes], rows_each: int, concurrency: int, expect: int = 200,
          content_type: str = "application/json") -> Measure:
    """Send every body once from ``concurrency`` threads, each with its own keep-alive connection;
    an answer other than ``expect`` counts as a failure."""
    local = threading.local()
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()

    def send(body: bytes) -> None:
        nonlocal failures
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        started = time.perf_counter()
        try:
            connection.request("POST", path, body, {"Content-Type": content_type})
            answer = connection.getresponse()
            answer.read()
            ok = answer.status == expect
        except (OSError, http.client.HTTPException):
            ok = False
            local.connection = None
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)
            failures += not ok

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, bodies))
    seconds = time.perf_counter() - started
    return Measure(len(bodies), len(bodies) * rows_each, failures, seconds, *percentiles(latencies))


def percentiles(latencies: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    latencies = sorted(latencies)
    return latencies[len(latencies) // 2] * 1000, latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000


def bodies_for(records: list[dict], scenario: Scenario, wrap) -> list[bytes]:
    size = scenario.batch or 1
    out = []
    for i in range(scenario.requests):
        start_at = (i * size) % (len(records) - size)
        chunk = records[start_at: start_at + size]
        out.append(json.dumps(wrap(chunk, scenario.batch)).encode())
    return out


def bento_body(chunk: list[dict], batch: int):
    return chunk if batch else chunk[0]


def mlflow_body(chunk: list[dict], batch: int):
    return {"dataframe_records": chunk}


def in_process(model, records: list[dict], scenario: Scenario) -> Measure:
    """One caller, no HTTP: records -> DataFrame -> predict_proba and the most probable label."""
    import pandas as pd
    from threadpoolctl import threadpool_limits

    size = scenario.batch or 1
    latencies = []
    with threadpool_limits(1):
        started = time.perf_counter()
        for i in range(scenario.requests):
            start_at = (i * size) % (len(records) - size)
            begin = time.perf_counter()
            frame = pd.DataFrame.from_records(records[start_at: start_at + size])
            scores = model.predict_proba(frame)  # the bento's work: probabilities, label = most probable
            model.classes_[scores.argmax(axis=1)]
            latencies.append(time.perf_counter() - begin)
        seconds = time.perf_counter() - started
    return Measure(scenario.requests, scenario.requests * size, 0, seconds, *percentiles(latencies))


# -- what one 100-row request pays inside the service ------------------------------------------
def request_path(records: list[dict], model, rows: int = 100) -> list[tuple[str, float, float]]:
    """(step, before ms, now ms): the old per-record path against the new column-wise one, in-process.

    Best of 7 rounds of 50 calls each, so a busy neighbour on the shared machine inflates neither side.
    """
    from typing import Annotated, Any

    import orjson
    from pydantic import BaseModel, Field, TypeAdapter

    from gitops_ml.example.schema import ChurnSchema
    from gitops_ml.serve.contract import (
        BatchChecker,
        derive_contract,
        nests_deeper_than,
        request_model,
        to_frame,
        to_frame_columns,
    )
    contract = derive_contract(ChurnSchema.to_schema(), exclude={"churned"})
    record = request_model(contract)
    body = json.dumps(records[:rows]).encode()
    per_record = TypeAdapter(Annotated[list[record], Field(min_length=1)])  # type: ignore[valid-type]
    raw = TypeAdapter(Annotated[list[dict[str, Any]], Field(min_length=1)])
    checker = BatchChecker(contract, record)

    class Prediction(BaseModel):
        prediction: int | float | str | bool
        probability: float | None = None

    answers = TypeAdapter(list[Prediction])
    labels, scores = [1] * rows, [0.5] * rows
    checked_records = per_record.validate_json(body)
    columns = checker.check(raw.validate_json(body))
    steps = [
        ("parse and check the records", lambda: per_record.validate_json(body),
         lambda: checker.check(raw.validate_json(body))),
        ("records to the model's frame", lambda: to_frame([r.model_dump() for r in checked_records], contract),
         lambda: to_frame_columns(columns, contract)),
        ("encode the answer", lambda: answers.dump_json([Prediction(prediction=p, probability=q)
                                                         for p, q in zip(labels, scores, strict=True)]),
         lambda: orjson.dumps([{"prediction": p, "probability": q} for p, q in zip(labels, scores, strict=True)])),
    ]
    frame = to_frame_columns(columns, contract)
    costs = [(name, best_ms(before), best_ms(now)) for name, before, now in steps]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        model_ms = best_ms(lambda: model.predict_proba(frame))
    depth_ms = best_ms(lambda: nests_deeper_than(body, 32))
    return [("bound the nesting depth (new, every request)", 0.0, depth_ms), *costs,
            ("the model: `predict_proba` on the frame", model_ms, model_ms)]


def best_ms(function, calls: int = 50, rounds: int = 7) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1000


# -- the run ---------------------------------------------------------------------------------
def prepare(folder: Path):
    """A scratch project, trained once; returns (spec, records of its data without the target)."""
    from gitops_ml.config import load_spec
    from gitops_ml.data import read_table
    from gitops_ml.train import train

    (folder / "data").mkdir(parents=True)
    shutil.copy(EXAMPLE, folder / "data" / "churn.csv")
    (folder / "pyproject.toml").write_text(PYPROJECT)
    spec = load_spec(folder)
    train(spec)
    frame = read_table(spec.data_uri).drop(columns=[spec.target])
    records = json.loads(frame.to_json(orient="records"))  # NaN -> null, as a client would send
    return spec, records


def scenarios(quick: bool) -> list[Scenario]:
    single, batch = (30, 10) if quick else (300, 150)
    return [Scenario(c, b, single if b == 0 else batch) for b in (0, 100) for c in (1, 8, 32)]


def mixed_load(port: int, records: list[dict], log_dir: Path, total: int) -> dict:
    """The test suite's load test, larger: 16 good and 16 malformed clients at once on ``/predict``."""
    from gitops_ml.serve.inference_log import read_log

    before = read_log(str(log_dir)).rows
    bad = [json.dumps(records[0] | {"age": "old"}).encode(), json.dumps({"contract": "weekly"}).encode(),
           json.dumps(records[1] | {"unknown_field": 1}).encode(), b"{not json"]
    good_bodies = [json.dumps(records[i % len(records)]).encode() for i in range(total * 3 // 4)]
    bad_bodies = [bad[i % len(bad)] for i in range(total - len(good_bodies))]
    results: dict[str, Measure] = {}
    threads = [
        threading.Thread(target=lambda: results.update(good=drive(port, "/predict", good_bodies, 1, 16))),
        threading.Thread(target=lambda: results.update(bad=drive(port, "/predict", bad_bodies, 1, 16, expect=400))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + 30
    while read_log(str(log_dir)).rows - before < len(good_bodies) and time.monotonic() < deadline:
        time.sleep(0.3)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    dropped = sum(float(line.split()[-1]) for line in metrics.splitlines()
                  if line.startswith("gitops_ml_inference_log_dropped_rows_total"))
    return {"good": len(good_bodies), "bad": len(bad_bodies), "good_failed": results["good"].failures,
            "bad_not_refused": results["bad"].failures, "logged": read_log(str(log_dir)).rows - before,
            "dropped": int(dropped)}


def run(quick: bool = False) -> str:
    return in_scratch("bench-serving-", lambda scratch, processes: _run(scratch, quick, processes))


def in_scratch(prefix: str, body) -> str:
    """``body(scratch, processes)`` in a fresh scratch folder with the benchmark's environment; every
    server it appended to ``processes`` is stopped (the last started first) and the folder removed,
    whatever happens. The serving benchmarks share it."""
    for key, value in ENV.items():
        os.environ.setdefault(key, value)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    processes: list[subprocess.Popen] = []
    try:
        return body(scratch, processes)
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(scratch, ignore_errors=True)


def _run(scratch: Path, quick: bool, processes: list[subprocess.Popen]) -> str:
    from gitops_ml.serve.package import package

    started = time.perf_counter()
    project = scratch / "project"
    spec, records = prepare(project)
    env = {**os.environ, **ENV, "BENTOML_HOME": str(project / ".bentoml"), "GITOPS_ML_PROJECT": str(project)}
    os.environ["BENTOML_HOME"] = env["BENTOML_HOME"]
    try:
        result = package(spec, 1)
    finally:
        os.environ.pop("BENTOML_HOME", None)
    bin_dir = Path(sys.executable).parent
    bento_port, mlflow_port = free_port(), free_port()
    processes.append(start([str(bin_dir / "gitops-ml"), "serve", "1", "--port", str(bento_port)], project, env,
                           scratch / "bento.log", f"http://127.0.0.1:{bento_port}/readyz"))
    processes.append(start([str(bin_dir / "mlflow"), "models", "serve", "-m", "models:/churn-classifier/1",
                            "--env-manager", "local", "--host", "127.0.0.1", "--port", str(mlflow_port),
                            "--workers", "1"],
                           # mlflow execs `uvicorn` by name: the virtualenv's bin must be on PATH.
                           project, {**env, "MLFLOW_TRACKING_URI": spec.tracking,
                                     "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"},
                           scratch / "mlflow.log",
                           f"http://127.0.0.1:{mlflow_port}/ping"))

    import mlflow.sklearn

    from gitops_ml import tracking

    tracking.connect(spec)
    model = mlflow.sklearn.load_model("models:/churn-classifier/1")
    rows = []
    for scenario in scenarios(quick):
        # Warm both servers up; BentoML's batching dispatcher calibrates on its first ~20 calls.
        warm = Scenario(scenario.concurrency, scenario.batch, max(scenario.concurrency * 2, 30))
        path = "/predict_batch" if scenario.batch else "/predict"
        drive(bento_port, path, bodies_for(records, warm, bento_body), scenario.batch or 1, scenario.concurrency)
        drive(mlflow_port, "/invocations", bodies_for(records, warm, mlflow_body), scenario.batch or 1,
              scenario.concurrency)
        bento = drive(bento_port, path, bodies_for(records, scenario, bento_body), scenario.batch or 1,
                      scenario.concurrency)
        other = drive(mlflow_port, "/invocations", bodies_for(records, scenario, mlflow_body), scenario.batch or 1,
                      scenario.concurrency)
        limit = in_process(model, records, Scenario(1, scenario.batch, min(scenario.requests, 200)))
        rows.append((scenario, bento, other, limit))
        print(f"bench serving: c={scenario.concurrency} batch={scenario.batch or 1}: bentoml {bento.rps:.0f} req/s "
              f"p99 {bento.p99_ms:.0f} ms; mlflow {other.rps:.0f} req/s p99 {other.p99_ms:.0f} ms",
              file=sys.stderr, flush=True)
    door = at_the_door(bento_port, mlflow_port, records, scenarios(quick)[3])
    load = mixed_load(bento_port, records, project / "logs" / "inference", 400 if quick else 2000)
    costs = request_path(records, model)
    return render(rows, load, quick, time.perf_counter() - started, result.bento_tag, costs, door)


def at_the_door(bento_port: int, mlflow_port: int, records: list[dict], scenario: Scenario) -> dict[str, Measure]:
    """A lone caller's 100-record body refused at each server's door (415, wrong Content-Type): the
    HTTP round trip with that body, client included, which no change inside the service can remove."""
    bento = drive(bento_port, "/predict_batch", bodies_for(records, scenario, bento_body), 0, 1, expect=415,
                  content_type="text/plain")
    mlflow = drive(mlflow_port, "/invocations", bodies_for(records, scenario, mlflow_body), 0, 1, expect=415,
                   content_type="text/plain")
    return {"bento": bento, "mlflow": mlflow}


# The previous service (per-record pydantic checks, BentoML's adaptive dispatcher for /predict_batch,
# pydantic answers), measured 2026-11-23 by this benchmark: (records, callers) -> (throughput ratio,
# p99 ratio, bento rows/s over in-process).
BEFORE = {(1, 1): (1.10, 0.75, 0.60), (1, 8): (2.95, 0.21, 1.70), (1, 32): (6.57, 0.28, 2.97),
          (100, 1): (0.68, 1.38, 0.47), (100, 8): (1.20, 0.57, 0.61), (100, 32): (1.26, 1.02, 0.86)}


def goals(rows) -> list[str]:
    """Issue 17's goals, each met or not, with the number that decides it."""
    out = []
    for scenario, bento, other, limit in rows:
        records, callers = scenario.batch or 1, scenario.concurrency
        ratio, p99 = bento.rps / other.rps, bento.p99_ms / other.p99_ms
        share = bento.rows_per_s / limit.rows_per_s
        if records == 100:
            out.append(f"100 records, {callers} caller(s): throughput {ratio:.2f}x MLflow (goal 1.3x: "
                       f"{'met' if ratio >= 1.3 else 'NOT met'}), p99 {p99:.2f} of MLflow's (goal at most 1: "
                       f"{'met' if p99 <= 1 else 'NOT met'})")
            if callers == 8:
                out.append(f"100 records, 8 callers: {share:.2f} of in-process rows/s (goal 0.8: "
                           f"{'met' if share >= 0.8 else 'NOT met'})")
        else:
            was_ratio, was_p99, _ = BEFORE[(records, callers)]
            same = ratio >= was_ratio * 0.9 and p99 <= was_p99 * 1.1
            out.append(f"1 record, {callers} caller(s): throughput {ratio:.2f}x MLflow (was {was_ratio:.2f}x), p99 "
                       f"{p99:.2f} (was {was_p99:.2f}): {'unchanged or better' if same else 'worse'} (10 % tolerance)")
    return out


def lone_batch(rows, costs: list, door: dict[str, Measure]) -> list[str]:
    """Where a lone caller's 100-record request spends its p50, for both servers, and what 1.3x needs."""
    scenario, bento, other, _ = next(row for row in rows if row[0].batch == 100 and row[0].concurrency == 1)
    model_ms = costs[-1][2]
    own_ms = sum(now for _, _, now in costs[:-1])
    bento_rest = bento.p50_ms - door["bento"].p50_ms - model_ms - own_ms
    mlflow_rest = other.p50_ms - door["mlflow"].p50_ms - model_ms
    needed = other.p50_ms / 1.3
    return [
        "A lone caller's 100-record request, p50 ms (same run; \"at the door\": the same body refused with "
        "415 for its Content-Type before any parsing, so the HTTP round trip with that body, client included):",
        "",
        "| server | whole request | at the door | the model | the service's own steps | the rest (framework: routing, "
        "parsing, dispatch, answer) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| BentoML | {bento.p50_ms:.2f} | {door['bento'].p50_ms:.2f} | {model_ms:.2f} | {own_ms:.2f} | "
        f"{bento_rest:.2f} |",
        f"| MLflow | {other.p50_ms:.2f} | {door['mlflow'].p50_ms:.2f} | {model_ms:.2f} (`predict`) | - | "
        f"{mlflow_rest:.2f} |",
        "",
        f"1.3x MLflow's throughput for a lone caller needs the whole request in {needed:.2f} ms: "
        f"{bento.p50_ms - needed:.2f} ms less than now, while the door and the model alone take "
        f"{door['bento'].p50_ms + model_ms:.2f} ms.",
    ]


def render(rows, load: dict, quick: bool, seconds: float, bento_tag: str, costs: list,
           door: dict[str, Measure]) -> str:
    lines = [
        "## Serving",
        "",
        f"Command: {COMMAND}{' with `BENCH_QUICK=1`' if quick else ''}. Took {seconds:.0f} s.",
        "",
        f"The bento `{bento_tag}` under `bentoml serve` (`gitops-ml serve`) against `mlflow models serve "
        "--env-manager local --workers 1` of the same registered version, over loopback, on the same "
        "machine as the client. One worker each, `OMP_NUM_THREADS=1`. Requests: `/predict` (one record) "
        "or `/predict_batch` (100 records) on the bento, `/invocations` with `dataframe_records` on MLflow. "
        "Each client thread keeps its HTTP connection alive; a warm-up round per row is not counted. "
        "In-process: one caller, records -> DataFrame -> `predict_proba` (label = most probable class, "
        "as the bento does), no HTTP. The bento answers a label and a probability per row; MLflow's "
        "`/invocations` answers the label only (`predict`). \"before\" columns: the previous service, "
        "measured 2026-11-23 by the same command.",
        "",
        "| records/request | concurrency | requests | BentoML req/s | MLflow req/s | throughput ratio (before) | "
        "BentoML p50 / p99 ms | MLflow p50 / p99 ms | p99 ratio (before) | in-process rows/s | "
        "BentoML / in-process (before) | failed (BentoML / MLflow) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, bento, other, limit in rows:
        was = BEFORE[(scenario.batch or 1, scenario.concurrency)]
        lines.append(
            f"| {scenario.batch or 1} | {scenario.concurrency} | {bento.requests} | {bento.rps:.0f} | {other.rps:.0f} "
            f"| {bento.rps / other.rps:.2f} ({was[0]:.2f}) | {bento.p50_ms:.1f} / {bento.p99_ms:.1f} "
            f"| {other.p50_ms:.1f} / {other.p99_ms:.1f} | {bento.p99_ms / other.p99_ms:.2f} ({was[1]:.2f}) "
            f"| {limit.rows_per_s:.0f} | {bento.rows_per_s / limit.rows_per_s:.2f} ({was[2]:.2f}) "
            f"| {bento.failures} / {other.failures} |")
    lines += ["", "Goals (issue 17), from this run:", ""] + [f"- {goal}" for goal in goals(rows)]
    lines += [
        "",
        "Throughput ratio: BentoML over MLflow (above 1: the bento serves more). p99 ratio: BentoML over "
        "MLflow (below 1: the bento's tail is shorter). BentoML / in-process: the share of the "
        "no-HTTP limit the served bento reaches, in rows per second (above 1 with single records: the "
        "bento batches concurrent records into one model call, the in-process loop predicts one at a time).",
        "",
        "What one 100-record request pays inside the service, in-process, best of 7 rounds (ms):",
        "",
        "| step | before | now | how |",
        "|---|---:|---:|---|",
    ]
    how = {
        "bound the nesting depth (new, every request)": "brackets counted on the raw bytes before any parser "
        "recurses; strings cut out only when the body looks too deep",
        "parse and check the records": "pydantic model per record -> JSON to plain objects, then the contract "
        "checked on whole columns (min/max, set membership, one type test per column); failing rows are "
        "re-checked by the record model, so the 400 is the same",
        "records to the model's frame": "`model_dump` per record and a frame from rows -> the checked columns "
        "straight into numpy arrays, one DataFrame without reindexing",
        "encode the answer": "pydantic models and their serializer -> orjson of plain dicts",
        "the model: `predict_proba` on the frame": "the same in both: the floor of a lone caller's request, "
        "for the bento and for MLflow alike",
    }
    for name, before, now in costs:
        lines.append(f"| {name} | {before:.2f} | {now:.2f} | {how[name]} |")
    lines += ["", *lone_batch(rows, costs, door)]
    lines += [
        "",
        f"Mixed load at concurrency 32 (16 good + 16 malformed clients): {load['good']} good `/predict` "
        f"requests, {load['good_failed']} failed; {load['bad']} malformed, {load['bad_not_refused']} not "
        f"answered 400; the inference log gained {load['logged']} rows for {load['good']} good rows with "
        f"{load['dropped']} counted drops.",
        "",
    ]
    return "\n".join(lines)
