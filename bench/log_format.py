"""The inference log's file format, by measurement: JSON Lines (as the writer makes it, plain and
gzipped) against Parquet, for 1,000,000 logged rows of the churn contract in 100 objects.

Write time is what the serving process spends turning rows into an object's bytes (on its writer
thread, beside the predictions); read time is what drift spends turning the objects back into one
frame. Run: ``python -m bench.log_format [ROWS]``; docs/monitoring.md records the outcome.
"""

from __future__ import annotations

import gzip
import sys
import time

import pandas as pd

from gitops_ml.serve.inference_log import LogWriter, _Batch, _frame, _parquet_frame, _parse_line, utc_timestamp

from .serving import EXAMPLE

OBJECTS = 100


def batches(frame: pd.DataFrame, rows: int) -> list[_Batch]:
    """The rows as the service hands them over: 100-row calls, columns in row order."""
    features = frame.drop(columns=["churned", "snapshot_date"])
    repeated = pd.concat([features] * (rows // len(features) + 1), ignore_index=True).iloc[:rows]
    repeated = repeated.astype(object).where(repeated.notna(), None)  # missing values as the contract gives them
    columns = {name: repeated[name].tolist() for name in repeated.columns}
    out = []
    for start in range(0, rows, 100):
        part = [values[start:start + 100] for values in columns.values()]
        n = len(part[0])
        out.append(_Batch(utc_timestamp(), list(columns), part, [1] * n, [0.5] * n))
    return out


def measure(rows: int) -> dict[str, dict[str, float]]:
    frame = pd.read_csv(EXAMPLE)
    calls = batches(frame, rows)
    per_object = len(calls) // OBJECTS
    writer = LogWriter("memory://bench-format", model_name="churn-classifier", model_version=1,
                       data_fingerprint="ab" * 32)
    results = {}

    started = time.perf_counter()
    objects = ["".join(writer._lines(b) for b in calls[i:i + per_object]).encode()
               for i in range(0, len(calls), per_object)]
    jsonl_write = time.perf_counter() - started
    started = time.perf_counter()
    gzipped = [gzip.compress(data, compresslevel=6) for data in objects]
    gzip_extra = time.perf_counter() - started

    started = time.perf_counter()
    records = [r for data in objects for r in map(_parse_line, data.decode().splitlines()) if r]
    _frame([pd.DataFrame.from_records(records)])
    jsonl_read = time.perf_counter() - started
    del records
    started = time.perf_counter()
    for data in gzipped:
        gzip.decompress(data)
    gunzip = time.perf_counter() - started
    results["jsonl"] = {"bytes": sum(map(len, objects)), "write_s": jsonl_write, "read_s": jsonl_read}
    results["jsonl.gz"] = {"bytes": sum(map(len, gzipped)), "write_s": jsonl_write + gzip_extra,
                           "read_s": jsonl_read + gunzip}
    writer.close()

    # Parquet as the writer makes it (zstd, features a struct) and as read_log reads it back.
    started = time.perf_counter()
    tables = [writer._parquet(calls[i:i + per_object]) for i in range(0, len(calls), per_object)]
    parquet_write = time.perf_counter() - started
    started = time.perf_counter()
    _frame([_parquet_frame(data) for data in tables])
    parquet_read = time.perf_counter() - started
    results["parquet"] = {"bytes": sum(map(len, tables)), "write_s": parquet_write, "read_s": parquet_read}
    return results


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    results = measure(rows)
    print(f"{rows:,} rows in {OBJECTS} objects")
    print("| format | size (MB) | write (s) | read (s) |\n|---|---|---|---|")
    for name, row in results.items():
        print(f"| {name} | {row['bytes'] / 2**20:.1f} | {row['write_s']:.2f} | {row['read_s']:.2f} |")


if __name__ == "__main__":
    main()
