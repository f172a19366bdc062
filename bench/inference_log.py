"""The inference log's cost: serving with the log on S3 vs in a local directory vs switched off, and
reading a week of logged rows from S3 the way drift reads them.

Serving: one scratch project trained once (``bench.serving.prepare``); its version 1 is served three
times at once by ``gitops-ml serve``, each with its own ``[tool.gitops-ml.serving] inference_log``
(an S3 prefix on moto's server, ``logs/inference``, ``"off"``), and driven by ``bench.serving.drive``
at concurrency 1, 8 and 32 with single records and 100-record batches. Each row runs a warm-up
(not counted), then a few rounds in which the three servers take turns, the first of a round
rotating, so that a busy neighbour on the shared machine hurts all three alike; the table holds the
median of the rounds. After each row the rows the servers acknowledged (answers 200, warm-up
included) are counted in the bucket and in the directory, against the drops the service counted.

moto runs in its own process (``ThreadedMotoServer``, the tests' S3 server): inside this process it
would take the GIL from the client threads and slow the S3 server's clients only.

Reading: rows are written to S3 by the engine's own ``LogWriter`` (real object names and Parquet),
its clock moved across the last seven days so that the objects fall into seven day partitions; a
fresh process then calls ``monitor.sources.read_inference_log`` with a 7-day window, as ``drift``
does, and reports its seconds and peak RSS. The same read runs with the engine of ``BENCH_LOG_BASELINE``
(default: the commit before the reader streamed objects) for the same-run comparison.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gitops_ml.processes import free_port, stop, wait_for

from . import serving
from .drift import baseline_tree
from .serving import Measure, Scenario, bento_body, bodies_for, drive

COMMAND = "`BENCH_PARTS=inference_log make bench` (or `BENCH_PARTS=inference_log .venv/bin/python -m bench`)"
BUCKET = "bench-inference-log"
VARIANTS = ("s3", "local", "off")
LABELS = {"s3": "S3 (moto)", "local": "local directory", "off": "off"}
ROTATE_SECONDS = 10  # shorter than the default 60s, so each row's rows reach the bucket within seconds
ROTATE_AGE = f"{ROTATE_SECONDS}s"
ROUNDS = 6  # medians of six short rounds: a neighbour's burst moves one round, not the row
GOAL = 0.10  # throughput within 10 % of logging off, p99 no more than 10 % above it (at 8 and 32 callers)
ROWS_PER_OBJECT = 1_000
BASELINE = os.environ.get("BENCH_LOG_BASELINE", "f873539")
MOTO = """\
import sys, threading
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
threading.Event().wait()
"""
# A fresh process reads the window as drift does. Its peak RSS before the read (the engine imported, the
# spec loaded, one listing of the bucket, which loads botocore's service data) is the fixed part of the peak.
# Peaks are VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent (this process,
# hundreds of MB by then), VmHWM belongs to the child's own memory.
READER = """\
import json, sys, time
import fsspec, pandas, pyarrow.parquet, s3fs
from gitops_ml.config import load_spec
from gitops_ml.monitor.sources import read_inference_log
spec = load_spec(sys.argv[1])
fs, root = fsspec.core.url_to_fs(spec.serving.inference_log)
fs.ls(root.split("/")[0])
def peak_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
imported_mb = peak_mb()
start = time.perf_counter()
rows = read_inference_log(spec, 1, "7d")
print(json.dumps({"seconds": time.perf_counter() - start, "imported_mb": imported_mb,
                  "peak_mb": peak_mb(),
                  "rows_read": rows.rows_read, "rows_used": rows.rows_used, "files": rows.files}))
"""


@dataclass
class Row:
    """One scenario: each variant's rounds, the CPU its server used, and what reached the log."""

    scenario: Scenario
    rounds: dict[str, list[Measure]] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    acknowledged: dict[str, int] = field(default_factory=dict)  # rows answered 200, warm-up included
    stored: dict[str, int] = field(default_factory=dict)
    counted_drops: dict[str, int] = field(default_factory=dict)

    def median(self, variant: str, what: str) -> float:
        return statistics.median(getattr(m, what) for m in self.rounds[variant])

    def ratio(self, variant: str, what: str) -> float:
        return self.median(variant, what) / self.median("off", what)


# -- the S3 server -------------------------------------------------------------------------------
def start_moto(scratch: Path):
    """moto's ThreadedMotoServer in its own process on 127.0.0.1, the bucket made; (process, S3Server)."""
    from tests.support.s3 import S3Server

    port = free_port()
    with open(scratch / "moto.log", "ab") as handle:
        process = subprocess.Popen([sys.executable, "-c", MOTO, str(port)], stdout=handle, stderr=handle,
                                   start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/moto-api/", process, timeout=60)
        server = S3Server(port, process)
        server.client().create_bucket(Bucket=BUCKET)
    except Exception:
        stop(process)
        raise
    return process, server


# -- serving -------------------------------------------------------------------------------------
def location_of(variant: str) -> str:
    return {"s3": f"s3://{BUCKET}/serving/inference", "local": "logs/inference", "off": "off"}[variant]


def serve(project: Path, variant: str, env: dict, scratch: Path) -> tuple[subprocess.Popen, int]:
    """``gitops-ml serve 1`` with the variant's log setting written into the project first."""
    (project / "pyproject.toml").write_text(
        serving.PYPROJECT + f'\n[tool.gitops-ml.serving]\ninference_log = "{location_of(variant)}"\n'
        f'log_rotate_age = "{ROTATE_AGE}"\n')
    port = free_port()
    process = serving.start([str(Path(sys.executable).parent / "gitops-ml"), "serve", "1", "--port", str(port)],
                            project, env, scratch / f"serve-{variant}.log", f"http://127.0.0.1:{port}/readyz")
    said = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/metadata", timeout=10).read())
    expected = str((project / "logs" / "inference").resolve()) if variant == "local" else location_of(variant)
    if said.get("inference_log") != expected:  # the setting must have reached the bento, or the rows mean nothing
        stop(process)
        raise RuntimeError(f"server {variant}: /metadata says inference_log {said.get('inference_log')!r}, "
                           f"expected {expected!r}")
    return process, port


def tree_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process and its children (BentoML's supervisor and workers)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def counted_drops(port: int) -> int:
    """The service's own count of rows its log dropped (``/metrics``)."""
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return int(sum(float(line.split()[-1]) for line in metrics.splitlines()
                   if line.startswith("gitops_ml_inference_log_dropped_rows_total")))


def stored_rows(location: str) -> int:
    from gitops_ml.serve.inference_log import read_log

    return read_log(location, traffic=None).rows


def wait_until_stored(location: str, expected: int, timeout: float) -> int:
    """Rows in the log once it holds ``expected`` (or after ``timeout`` s: the shortfall is then reported)."""
    deadline = time.monotonic() + timeout
    found = stored_rows(location)
    while found < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        found = stored_rows(location)
    return found


def measure_row(scenario: Scenario, records: list[dict], servers: dict, rounds: int) -> Row:
    row = Row(scenario)
    path = "/predict_batch" if scenario.batch else "/predict"
    size = scenario.batch or 1
    warm = Scenario(scenario.concurrency, scenario.batch, max(scenario.concurrency * 2, 30))
    warm_bodies, bodies = bodies_for(records, warm, bento_body), bodies_for(records, scenario, bento_body)
    for variant, (_, port) in servers.items():
        done = drive(port, path, warm_bodies, size, scenario.concurrency)
        row.acknowledged[variant] = (done.requests - done.failures) * size
        row.rounds[variant], row.cpu_seconds[variant] = [], 0.0
    for turn in range(rounds):
        for variant in VARIANTS[turn % 3:] + VARIANTS[:turn % 3]:
            pid, port = servers[variant]
            before = tree_cpu_seconds(pid)
            done = drive(port, path, bodies, size, scenario.concurrency)
            row.cpu_seconds[variant] += tree_cpu_seconds(pid) - before
            row.rounds[variant].append(done)
            row.acknowledged[variant] += (done.requests - done.failures) * size
    return row


def check_delivery(rows: list[Row], servers: dict, project: Path) -> None:
    """Fill in, for the row just run, how many rows reached each log against those acknowledged."""
    row = rows[-1]
    for variant in ("s3", "local"):
        location = location_of(variant) if variant == "s3" else str(project / "logs" / "inference")
        so_far = sum(r.acknowledged[variant] for r in rows)
        before = sum(r.stored[variant] for r in rows[:-1])
        drops = counted_drops(servers[variant][1])
        # Rows the writer dropped never arrive: wait for the rest, at most two rotation ages and a margin.
        found = wait_until_stored(location, so_far - drops, 2 * ROTATE_SECONDS + 30)
        row.stored[variant] = found - before
        row.counted_drops[variant] = drops - sum(r.counted_drops[variant] for r in rows[:-1])


def writer_costs(scratch: Path, records: list[dict]) -> dict[str, float]:
    """Microseconds per logged row, in this process: ``submit_columns`` (the request path's share),
    and the writer thread's work until ``flush`` returns (JSON Lines + fsync; Parquet + upload)."""
    from gitops_ml.serve.inference_log import LogWriter

    names = list(records[0])
    batch = {name: [r[name] for r in records[:100]] for name in names}
    labels, scores = [1] * 100, [0.5] * 100
    costs: dict[str, float] = {}
    for kind, location in (("local", str(scratch / "writer-costs")), ("s3", f"s3://{BUCKET}/writer-costs")):
        best_submit = best_store = float("inf")
        for _ in range(3):
            log = LogWriter(location, model_name="bench", model_version=1, data_fingerprint="ab" * 32,
                            capacity=200_000, rotate_seconds=3600)
            started = time.perf_counter()
            for _ in range(200):  # 20,000 rows in 100-row calls, as /predict_batch hands them over
                log.submit_columns(batch, labels, scores, request_ids=[f"r{i}" for i in range(100)])
            submitted = time.perf_counter()
            if not log.flush(120):
                raise RuntimeError(f"writer cost ({kind}): 20,000 rows not stored within 120 s")
            stored = time.perf_counter()
            log.close()
            best_submit = min(best_submit, (submitted - started) / 20_000 * 1e6)
            best_store = min(best_store, (stored - submitted) / 20_000 * 1e6)
        costs[f"{kind}_submit_us"], costs[f"{kind}_store_us"] = best_submit, best_store
    return costs


# -- reading -------------------------------------------------------------------------------------
def write_week(location: str, rows: int, records: list[dict]) -> tuple[int, float]:
    """``rows`` logged rows in objects of ROWS_PER_OBJECT, by the engine's writer, stamped evenly over
    the last seven days (minus an hour, so the 7-day window holds them all); (objects, seconds)."""
    from gitops_ml.serve import inference_log

    calls = rows // ROWS_PER_OBJECT
    first = datetime.now(UTC) - timedelta(days=7) + timedelta(hours=1)
    step = (timedelta(days=7) - timedelta(hours=2)) / max(1, calls - 1)
    clock = iter(first + step * i for i in range(calls))
    names = list(records[0])
    real_clock = inference_log.utc_timestamp
    inference_log.utc_timestamp = lambda moment=None: real_clock(moment or next(clock))
    started = time.perf_counter()
    try:
        # Capacity twice an object: the writer seals at half its capacity, one object per call.
        log = inference_log.LogWriter(location, model_name="churn-classifier", model_version=1,
                                      data_fingerprint="ab" * 32, capacity=2 * ROWS_PER_OBJECT,
                                      rotate_bytes=2**30, rotate_seconds=24 * 3600)
        for call in range(calls):
            begin = (call * ROWS_PER_OBJECT) % (len(records) - ROWS_PER_OBJECT)
            chunk = records[begin: begin + ROWS_PER_OBJECT]
            while log.pending > ROWS_PER_OBJECT:  # room for the next call: never a dropped row
                time.sleep(0.002)
            accepted = log.submit_columns({name: [r[name] for r in chunk] for name in names},
                                          [int(i % 3 == 0) for i in range(len(chunk))],
                                          [(i % 100) / 100 for i in range(len(chunk))],
                                          request_ids=[f"{call}:{i}" for i in range(len(chunk))])
            if accepted != len(chunk):
                raise RuntimeError(f"the writer dropped {len(chunk) - accepted} rows while the week was written")
        if not log.flush(300):
            raise RuntimeError(f"{location}: the week's rows were not uploaded within 300 s")
        log.close()
    finally:
        inference_log.utc_timestamp = real_clock
    return len(log.objects), time.perf_counter() - started


def read_week(folder: Path, location: str, env: dict, source: Path | None = None) -> dict:
    """``read_inference_log`` over 7 days in a fresh process (with the engine in ``source`` when given)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    shutil.copy(serving.EXAMPLE, folder / "data" / "churn.csv")
    (folder / "pyproject.toml").write_text(serving.PYPROJECT + f'\n[tool.gitops-ml.serving]\ninference_log = '
                                           f'"{location}"\n')
    child_env = env if source is None else {**env, "PYTHONPATH": str(source)}
    done = subprocess.run([sys.executable, "-c", READER, str(folder)], capture_output=True, text=True,
                          env=child_env, check=False)
    if done.returncode:
        raise RuntimeError(f"reading {location} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def reading(scratch: Path, records: list[dict], env: dict, quick: bool) -> list[dict]:
    sizes = [10_000, 100_000] if quick else [100_000, 1_000_000]
    baseline = baseline_tree(scratch, BASELINE)
    results = []
    for rows in sizes:
        location = f"s3://{BUCKET}/week-{rows}/inference"
        objects, written = write_week(location, rows, records)
        found = {"rows": rows, "objects": objects, "write_seconds": written,
                 "now": read_week(scratch / f"read-{rows}", location, env)}
        if baseline is not None:
            found["baseline"] = read_week(scratch / f"read-{rows}-baseline", location, env, baseline)
        results.append(found)
        print(f"bench inference_log: read {rows:,} rows in {objects} objects: {found['now']['seconds']:.1f} s, "
              f"peak {found['now']['peak_mb']:.0f} MB", file=sys.stderr, flush=True)
    return results


# -- the run -------------------------------------------------------------------------------------
def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def run(quick: bool = False) -> str:
    return serving.in_scratch("bench-inference-log-", lambda scratch, processes: _run(scratch, quick, processes))


def _run(scratch: Path, quick: bool, processes: list[subprocess.Popen]) -> str:
    from tests.support.s3 import s3_environment

    started = time.perf_counter()
    loads = [load()]
    moto, s3 = start_moto(scratch)
    processes.append(moto)
    project = scratch / "project"
    _, records = serving.prepare(project)
    env = {**os.environ, **serving.ENV, **s3.environment(), "BENTOML_HOME": str(project / ".bentoml"),
           "GITOPS_ML_PROJECT": str(project)}
    servers = {}
    for variant in VARIANTS:
        process, port = serve(project, variant, env, scratch)
        processes.append(process)
        servers[variant] = (process.pid, port)
    rows: list[Row] = []
    with s3_environment(s3.endpoint, s3):
        for scenario in serving.scenarios(quick):  # the same rows and sizes as bench.serving
            rows.append(measure_row(scenario, records, servers, 1 if quick else ROUNDS))
            check_delivery(rows, servers, project)
            last = rows[-1]
            print(f"bench inference_log: c={scenario.concurrency} batch={scenario.batch or 1}: "
                  + "; ".join(f"{v} {last.median(v, 'rps'):.0f} req/s p99 {last.median(v, 'p99_ms'):.1f} ms"
                              for v in VARIANTS), file=sys.stderr, flush=True)
        loads.append(load())
        for process in processes[1:]:  # the servers: their CPU is not the reader's to share
            stop(process)
        costs = writer_costs(scratch, records)
        read = reading(scratch, records, env, quick)
    loads.append(load())
    return render(rows, costs, read, loads, quick, time.perf_counter() - started)


# -- the section ---------------------------------------------------------------------------------
def verdict(row: Row, variant: str) -> str:
    """Issue 13's goals for one row and variant, each met or not."""
    throughput = row.ratio(variant, "rps")
    parts = [f"throughput {throughput:.2f} of off ({'met' if throughput >= 1 - GOAL else 'NOT met'})"]
    if row.scenario.concurrency in (8, 32):
        p99 = row.ratio(variant, "p99_ms")
        parts.append(f"p99 {p99:.2f} of off ({'met' if p99 <= 1 + GOAL else 'NOT met'})")
    return ", ".join(parts)


def spread(row: Row, variant: str) -> float:
    """The slowest round's throughput over the fastest's: how much the machine alone moved one server."""
    rates = [m.rps for m in row.rounds[variant]]
    return min(rates) / max(rates)


def cpu_per_request_ms(row: Row, variant: str) -> float:
    requests = sum(m.requests for m in row.rounds[variant])
    return row.cpu_seconds[variant] / requests * 1000


def render(rows: list[Row], costs: dict, read: list[dict], loads: list[str], quick: bool, seconds: float) -> str:
    rounds = len(rows[0].rounds["off"])
    lines = [
        "## Inference log",
        "",
        f"Command: {COMMAND}{' with `BENCH_QUICK=1`' if quick else ''}. Took {seconds:.0f} s. Load "
        f"(`uptime`, on {os.cpu_count()} cores): "
        + "; ".join(f"{when} `{text.split('load average:')[-1].strip()}`"
                    for when, text in zip(("at the start", "after serving", "at the end"), loads, strict=False))
        + ".",
        "",
        "### Serving with the log on S3, in a directory, and off",
        "",
        "Version 1 of the churn example served three times at once by `gitops-ml serve` (one worker, "
        "`OMP_NUM_THREADS=1`), the same bento but for `[tool.gitops-ml.serving] inference_log`: an S3 prefix "
        "on moto's server (its own process on 127.0.0.1, `AWS_ENDPOINT_URL`, dummy credentials), "
        f"`logs/inference`, or `\"off\"`; `log_rotate_age = \"{ROTATE_AGE}\"` (default 60s) so each row's "
        "rows are in the bucket seconds after it, other log settings default. Keep-alive client threads "
        "on the same machine; `/predict` (1 record) or `/predict_batch` (100 records). Per row: a warm-up "
        f"per server (not counted), then {rounds} round(s) in which the three servers take turns, the "
        "first rotating; medians of the rounds. Ratios are against logging off in the same row. CPU: "
        "the serving process tree's user+system CPU per request (moto's own is not in it: in production "
        "the store runs elsewhere; here it shares the 2 cores).",
        "",
        "| records/request | concurrency | requests/round | req/s S3 / local / off | throughput ratio S3 / local "
        "| p50 ms S3 / local / off | p99 ms S3 / local / off | p99 ratio S3 / local | CPU ms/request S3 / "
        "local / off | off's own spread (slowest / fastest round) | rows acknowledged / stored / dropped "
        "(counted): S3 | same: local |",
        "|---:|---:|---:|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row.scenario

        def triple(what: str, fmt: str, row: Row = row) -> str:
            return " / ".join(format(row.median(v, what), fmt) for v in VARIANTS)

        lines.append(
            f"| {s.batch or 1} | {s.concurrency} | {s.requests} | {triple('rps', '.0f')} "
            f"| {row.ratio('s3', 'rps'):.2f} / {row.ratio('local', 'rps'):.2f} | {triple('p50_ms', '.1f')} "
            f"| {triple('p99_ms', '.1f')} | {row.ratio('s3', 'p99_ms'):.2f} / {row.ratio('local', 'p99_ms'):.2f} "
            f"| {' / '.join(f'{cpu_per_request_ms(row, v):.2f}' for v in VARIANTS)} | {spread(row, 'off'):.2f} "
            f"| {row.acknowledged['s3']} / {row.stored['s3']} / {row.counted_drops['s3']} "
            f"| {row.acknowledged['local']} / {row.stored['local']} / {row.counted_drops['local']} |")
    failures = sum(m.failures for row in rows for ms in row.rounds.values() for m in ms)
    missing = {v: sum(r.acknowledged[v] - r.stored[v] - r.counted_drops[v] for r in rows) for v in ("s3", "local")}
    lines += ["", f"Failed requests: {failures}. Rows acknowledged but neither stored nor counted as dropped: "
              f"S3 {missing['s3']}, local {missing['local']}.", "",
              "Goals (issue 13: throughput within 10 % of off; p99 at most 10 % above off at 8 and 32 callers), "
              "from this run:", ""]
    for row in rows:
        s = row.scenario
        lines.append(f"- {s.batch or 1} record(s), {s.concurrency} caller(s): S3 {verdict(row, 's3')}; "
                     f"local {verdict(row, 'local')}")
    batch_p50 = {v: statistics.median(r.median(v, "p50_ms") for r in rows if r.scenario.batch) for v in VARIANTS}
    lines += [
        "",
        "What logging a row costs, in one process (best of 3, 20,000 rows handed over in 100-row calls, µs "
        "per row): on the request path (`submit_columns`: queue the call's columns) "
        f"{costs['local_submit_us']:.2f} (local) and {costs['s3_submit_us']:.2f} (S3); on the writer's "
        f"threads until `flush` returns {costs['local_store_us']:.1f} (local: JSON Lines, write, fsync) and "
        f"{costs['s3_store_us']:.1f} (S3: Parquet, upload to moto, moto's work included). A 100-record request "
        f"thus hands the writer {costs['local_store_us'] * 100 / 1000:.2f} ms (local) or "
        f"{costs['s3_store_us'] * 100 / 1000:.2f} ms (S3) of work, against a median p50 of "
        f"{batch_p50['off']:.1f} ms for the whole request with the log off; that work runs on threads of the "
        "serving process, which share its GIL and the machine's 2 cores with the predictions.",
        "",
        "### Reading a week of logs for drift",
        "",
        f"Rows written to S3 by the engine's `LogWriter` ({ROWS_PER_OBJECT:,} rows an object, the writer's "
        "clock moved evenly over the last 7 days, so seven `dt=` partitions), then read in a fresh process by "
        "`read_inference_log` with a 7-day window, as `drift` reads the log (`drift.max_rows` 100,000). Peak: "
        "the process's peak RSS (`VmHWM`); \"before\": the same just before the read (pandas, pyarrow, s3fs and "
        f"the engine imported, the spec loaded, the bucket listed once). Baseline: the engine of `{BASELINE}` (before "
        "the reader streamed objects), the same objects, read right after.",
        "",
        "| rows | objects | write s | read s | peak RSS MB (before) | rows kept | baseline read s "
        "| baseline peak RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in read:
        now, base = r["now"], r.get("baseline")
        baseline = f"{base['seconds']:.1f} | {base['peak_mb']:.0f}" if base else "- | -"
        lines.append(f"| {r['rows']:,} | {r['objects']:,} | {r['write_seconds']:.1f} | {now['seconds']:.1f} "
                     f"| {now['peak_mb']:.0f} ({now['imported_mb']:.0f}) | {now['rows_used']:,} | {baseline} |")
    small, large = read[0], read[-1]
    sentence = (f"From {small['rows']:,} to {large['rows']:,} rows ({large['rows'] // small['rows']}x) the read "
                f"took {large['now']['seconds'] / small['now']['seconds']:.1f}x the time and its peak RSS rose by "
                f"{large['now']['peak_mb'] - small['now']['peak_mb']:.0f} MB")
    if "baseline" in large:
        sentence += (f"; the baseline's by {large['baseline']['peak_mb'] - small['baseline']['peak_mb']:.0f} MB, "
                     f"in {large['baseline']['seconds'] / small['baseline']['seconds']:.1f}x the time")
    lines += ["", sentence + ".", ""]
    return "\n".join(lines)
