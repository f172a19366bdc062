"""Drift benchmark: time and peak memory of ``gitops-ml drift`` at 10,000, 100,000 and 1,000,000 rows.

A scratch project with 30 columns (20 numbers, 9 categories, the target) is trained once on
20,000 rows; each size then runs the whole ``monitor.drift`` (read the Parquet file in chunks,
sample above ``drift.max_rows``, check the contract, Evidently, HTML and JSON) in a fresh
process, whose own peak RSS is what is reported. Reproduce: ``BENCH_PARTS=drift make bench``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

NUMBERS, CATEGORIES = 20, 9
LEVELS = ["a", "b", "c", "d", "e"]
REFERENCE_ROWS = 20_000
CHUNK = 100_000

SCHEMA = textwrap.dedent('''\
    """30 columns for the drift benchmark."""
    import pandera.pandas as pa
    from pandera.typing import Series
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    NUMBERS = [f"n{{i}}" for i in range({numbers})]
    CATEGORIES = [f"c{{i}}" for i in range({categories})]


    class BenchSchema(pa.DataFrameModel):
    {fields}
        y: Series[int] = pa.Field(isin=[0, 1])

        class Config:
            strict = True
            coerce = True


    def build_model():
        encode = ColumnTransformer([("n", "passthrough", NUMBERS),
                                    ("c", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                                     CATEGORIES)])
        return Pipeline([("encode", encode), ("model", HistGradientBoostingClassifier(max_iter=50))])
''')

PYPROJECT = """\
[project]
name = "drift-bench"
version = "0"

[tool.gitops-ml]
model_name = "drift-bench"
task = "classification"
data = "data/train.parquet"
target = "y"
schema = "bench_model:BenchSchema"
model_factory = "bench_model:build_model"
"""

CHILD = """\
import json, resource, sys, time
start = time.perf_counter()
from gitops_ml.config import load_spec
from gitops_ml.monitor import drift
result = drift(load_spec(sys.argv[1]), "staging", current=sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "decision": result.decision, "rows_read": result.current.rows_read,
                  "rows_used": result.current.rows_used, "sampled": result.current.sampled,
                  "drifted": len(result.drifted)}))
"""


def make_rows(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Rows of the benchmark's distribution; ``shift`` moves the first ten numbers."""
    rng = np.random.default_rng(seed)
    data = {f"n{i}": rng.normal(shift if i < 10 else 0.0, 1.0, n) for i in range(NUMBERS)}
    data.update({f"c{i}": rng.choice(LEVELS, n) for i in range(CATEGORIES)})
    logit = data["n0"] - data["n1"] + 0.5 * (data["c0"] == "a")
    data["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(data)


def write_current(path: Path, rows: int) -> None:
    """A Parquet file written a chunk at a time, so the benchmark's own memory stays small."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for index, start in enumerate(range(0, rows, CHUNK)):
        table = pa.Table.from_pandas(make_rows(min(CHUNK, rows - start), seed=100 + index, shift=0.3),
                                     preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def make_project(root: Path) -> dict:
    """Train version 1 on the reference rows and point the ``staging`` alias at it."""
    fields = "\n".join([f"    n{i}: Series[float] = pa.Field(nullable=True)" for i in range(NUMBERS)]
                       + [f"    c{i}: Series[str] = pa.Field(isin={LEVELS!r})" for i in range(CATEGORIES)])
    (root / "data").mkdir(parents=True)
    (root / "bench_model.py").write_text(SCHEMA.format(numbers=NUMBERS, categories=CATEGORIES, fields=fields))
    (root / "pyproject.toml").write_text(PYPROJECT)
    make_rows(REFERENCE_ROWS, seed=1).to_parquet(root / "data" / "train.parquet", index=False)
    done = subprocess.run([sys.executable, "-c", TRAIN, str(root)], check=True, capture_output=True, text=True,
                          env=_env())
    return json.loads(done.stdout.strip().splitlines()[-1])


# Train twice in one process: without the drift calibration (version 1), then with it (version 2, which
# staging runs), so the calibration's share of `train` is measured in the same run on the same data.
TRAIN = """\
import json, sys, time
import gitops_ml.train as training
from gitops_ml import tracking
from gitops_ml.config import load_spec
spec = load_spec(sys.argv[1])
logged = training._log_drift_calibration
training._log_drift_calibration = lambda *a, **k: None
start = time.perf_counter(); training.train(spec); plain = time.perf_counter() - start
calibrating = 0.0
def timed(*args, **kwargs):
    global calibrating
    begun = time.perf_counter(); logged(*args, **kwargs); calibrating = time.perf_counter() - begun
training._log_drift_calibration = timed
start = time.perf_counter(); v = training.train(spec).version; full = time.perf_counter() - start
tracking.connect(spec).set_registered_model_alias(spec.model_name, "staging", str(v))
print(json.dumps({"train_seconds": plain, "train_calibrated_seconds": full, "calibration_seconds": calibrating}))
"""


EXAMPLE = """\
[project]
name = "calibration-bench"
version = "0"

[tool.gitops-ml]
model_name = "churn-classifier"
task = "classification"
data = "data/churn.csv"
target = "churned"
time_column = "snapshot_date"
schema = "gitops_ml.example.schema:ChurnSchema"
model_factory = "gitops_ml.example.model:build_model"
"""


def train_example(root: Path) -> dict:
    """`train` on the bundled churn example without and with the drift calibration, in one process."""
    import shutil

    from gitops_ml.example import __file__ as example

    (root / "data").mkdir(parents=True)
    shutil.copy(Path(example).parent / "data" / "churn.csv", root / "data" / "churn.csv")
    (root / "pyproject.toml").write_text(EXAMPLE)
    done = subprocess.run([sys.executable, "-c", TRAIN, str(root)], check=True, capture_output=True, text=True,
                          env=_env())
    return json.loads(done.stdout.strip().splitlines()[-1])


# The previous engine for same-run ratios: the source tree of BENCH_BASELINE (a git ref; default: the commit
# before issue 16's calibration fixes and cost work) put first on PYTHONPATH in its own child processes.
BASELINE = os.environ.get("BENCH_BASELINE", "c1e249e")
CALIBRATE = """\
import sys, time
import pandas as pd
import evidently.legacy.calculations.stattests  # imported by both: not part of the calibration's time
from gitops_ml.config import load_spec
from gitops_ml.monitor.calibration import calibrate
spec = load_spec(sys.argv[1])
data = spec.resolve(spec.data)
frame = pd.read_csv(data) if str(data).endswith(".csv") else pd.read_parquet(data)
features = [c for c in frame.columns if c not in (spec.target, spec.time_column)]
start = time.perf_counter()
calibrate(frame, features, spec.drift, spec.seed, frame[spec.target].astype(str), "categorical")
print(time.perf_counter() - start)
"""


def baseline_tree(scratch: Path) -> Path | None:
    """The baseline's ``src`` folder, extracted from git; None when the ref cannot be read."""
    repo = Path(__file__).resolve().parents[1]
    target = scratch / "baseline"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(repo), "archive", BASELINE, "src"], capture_output=True)
    if archive.returncode:
        return None
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target / "src"


def calibration_seconds(root: Path, source: Path | None = None) -> float:
    env = _env() if source is None else {**_env(), "PYTHONPATH": str(source)}
    done = subprocess.run([sys.executable, "-c", CALIBRATE, str(root)], check=True, capture_output=True,
                          text=True, env=env)
    return float(done.stdout.strip().splitlines()[-1])


def _env() -> dict:
    return {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
            "BENTOML_DO_NOT_TRACK": "True", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def measure(root: Path, rows: int, baseline: Path | None = None) -> dict:
    current = root / f"current-{rows}.parquet"
    started = time.perf_counter()
    write_current(current, rows)
    written = time.perf_counter() - started
    done = subprocess.run([sys.executable, "-c", CHILD, str(root), str(current)], check=True,
                          capture_output=True, text=True, env=_env())
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(rows=rows, file_mb=current.stat().st_size / 2**20, write_seconds=written)
    if baseline is not None:  # the same file, the baseline engine, right after
        done = subprocess.run([sys.executable, "-c", CHILD, str(root), str(current)], check=True,
                              capture_output=True, text=True, env={**_env(), "PYTHONPATH": str(baseline)})
        result["baseline_seconds"] = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    current.unlink()
    return result


def run(quick: bool = False) -> str:
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as scratch:
        root = Path(scratch) / "project"
        trained = {"bench": make_project(root), "example": train_example(Path(scratch) / "example")}
        baseline = baseline_tree(Path(scratch))
        results = [measure(root, rows, baseline if rows == sizes[0] else None) for rows in sizes]
        if baseline is not None:
            for name, folder in (("bench", root), ("example", Path(scratch) / "example")):
                trained[name]["calibrate_now"] = calibration_seconds(folder)
                trained[name]["calibrate_baseline"] = calibration_seconds(folder, baseline)
    return render(results, trained, (load_before, os.getloadavg()[0]))


def render(results: list[dict], trained: dict | None = None, load: tuple[float, float] = (0.0, 0.0)) -> str:
    """The Markdown section: the table, and how time and memory grew with the rows."""
    lines = [
        "## Drift",
        "",
        f"`gitops-ml drift` (the `monitor.drift` function) on a Parquet file of 30 columns (20 numbers, "
        f"9 categories, the target) against a reference of {REFERENCE_ROWS:,} training rows; ten numbers "
        "shifted by 0.3 standard deviations. Each size runs in a fresh process; seconds and peak memory "
        "(the process's maximum resident set size) include importing MLflow, Evidently and scikit-learn, "
        "loading the model and writing the HTML report. Above `drift.max_rows` (100,000) the file is "
        "streamed in 100,000-row chunks and a seeded uniform sample of 100,000 rows is compared.",
        "",
        "| rows | file MB | seconds | peak RSS MB | rows compared | sampled | drifted columns | decision |",
        "|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in results:
        lines.append(f"| {r['rows']:,} | {r['file_mb']:.1f} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | "
                     f"{r['rows_used']:,} | {'yes' if r['sampled'] else 'no'} | {r['drifted']} | {r['decision']} |")
    first, last = results[0], results[-1]
    if "baseline_seconds" in first:
        ratio = first["seconds"] / first["baseline_seconds"]
        lines += ["", f"At {first['rows']:,} rows the baseline engine (`{BASELINE}`), run on the same file right "
                  f"after: {first['baseline_seconds']:.1f} s; now / baseline {ratio:.2f}."]
    lines += [
        "",
        f"From {first['rows']:,} to {last['rows']:,} rows ({last['rows'] // first['rows']}x) time grew "
        f"{last['seconds'] / first['seconds']:.1f}x and peak memory {last['peak_mb'] / first['peak_mb']:.1f}x. "
        f"Most of the {first['peak_mb']:.0f} MB and of the seconds at {first['rows']:,} rows is fixed cost "
        "(imports, model, Evidently's rendering of the report). Up to `drift.max_rows` the variable cost "
        "grows with the rows compared (Evidently's tests sort each column: n log n); above it the rows "
        "compared stay at 100,000, reading grows linearly in time, and memory holds the sample plus one "
        "chunk whatever the file's size. "
        f"Load average (1 min) at the start and the end of this part: {load[0]:.1f} and {load[1]:.1f} on "
        f"{os.cpu_count()} cores; with other jobs on the machine seconds vary by tens of percent between runs.",
        "",
    ]
    lines += [
        "Where the time goes at 10,000 rows (cProfile of one `drift` call, 2026-12-03, load average 3 to 5, "
        "26.2 s under the profiler against 7.5 s unprofiled on the idle machine): imports 6.6 s (Evidently "
        "5.7 s; skops 3.5 s, which MLflow needs to load the skops-serialized model and whose trusted-type "
        "table imports all of scikit-learn; matplotlib no longer: only drawing a card or training imports "
        "it), `drift` itself 19.5 s, of which Evidently's `Report.run` 15.7 s. Inside it the preset computes "
        "the drift twice: once per column in `ValueDrift` (4.7 s, which also renders a widget per column, "
        "3.5 s, that the preset then discards for its own table) and again in the legacy `DataDriftTable` "
        "it renders as the report's main view (5.1 s). A report built from `ValueDrift` alone would skip "
        "the second pass and the table, about a fifth of the profiled run: not done, because that table "
        "(every column's test, score and verdict in one view) is what a person opens the report for. "
        "The goals (under 6 s at 10,000 rows with the report, under 60 s at 1,000,000 rows) are measured "
        "against the table above.",
        "",
    ]
    for name, found in (trained or {}).items():
        rest = found["train_calibrated_seconds"] - found["calibration_seconds"]
        share = found["calibration_seconds"] / rest
        what = ("the bundled churn example (8,000 rows x 10 features)" if name == "example"
                else f"the benchmark's {REFERENCE_ROWS:,} rows x 30 columns")
        lines += [
            f"Drift calibration at training time on {what}, one process: `train` took "
            f"{found['train_seconds']:.1f} s without it (the first call, which also pays first-use imports) "
            f"and {found['train_calibrated_seconds']:.1f} s with it, of which the calibration "
            f"{found['calibration_seconds']:.1f} s: {share:.0%} added to the rest of that `train` "
            f"(goal: at most 20 %: {'met' if share <= 0.2 else 'NOT met'})."
            + (f" The calibration alone, in fresh processes right after one another: {found['calibrate_now']:.1f} s "
               f"now, {found['calibrate_baseline']:.1f} s with the baseline (`{BASELINE}`), a ratio of "
               f"{found['calibrate_now'] / found['calibrate_baseline']:.2f}." if "calibrate_now" in found else ""),
            "",
        ]
    lines += [
        "Reproduce: `BENCH_PARTS=drift make bench` (or `BENCH_PARTS=drift .venv/bin/python -m bench`; "
        "`BENCH_QUICK=1` for the two small sizes).",
        "",
    ]
    return "\n".join(lines)
