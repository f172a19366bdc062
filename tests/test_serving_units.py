"""Serving parts that need no server: the request contract and the inference log."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest
from pydantic import ValidationError

from gitops_ml.example.schema import ChurnSchema
from gitops_ml.serve.contract import (
    BatchChecker,
    Columns,
    derive_contract,
    nesting_depth,
    nests_deeper_than,
    request_model,
    to_frame,
    to_frame_columns,
)
from gitops_ml.serve.inference_log import LogWriter, read_log

GOOD = {
    "snapshot_date": "2025-10-19", "age": 44.0, "tenure_months": 15, "monthly_charges": 73.09,
    "total_charges": 1137.64, "support_calls": 5, "contract": "one-year", "internet_service": "fiber",
    "payment_method": "bank-transfer", "paperless_billing": "yes", "region": "north",
}


@pytest.fixture(scope="module")
def contract() -> dict:
    return derive_contract(ChurnSchema.to_schema(), exclude={"churned"})


def errors_of(model, payload) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(json.dumps(payload))
    return {".".join(str(p) for p in e["loc"]): e["type"] for e in caught.value.errors()}


def test_contract_follows_the_pandera_schema(contract):
    columns = {c["name"]: c for c in contract["columns"]}
    assert "churned" not in columns
    assert list(columns) == [c for c in ChurnSchema.to_schema().columns if c != "churned"]
    assert columns["age"] == {"name": "age", "type": "number", "nullable": True, "required": True, "ge": 18, "le": 100}
    assert columns["tenure_months"]["type"] == "integer"
    assert columns["contract"]["isin"] == ["month-to-month", "one-year", "two-year"]
    assert columns["snapshot_date"]["pattern"].startswith("^")
    assert contract["unenforced"] == []


def test_good_record_passes_and_nullable_fields_may_be_null_or_absent(contract):
    model = request_model(contract)
    assert model.model_validate_json(json.dumps(GOOD)).model_dump() == GOOD
    sparse = {k: v for k, v in GOOD.items() if k not in ("age", "region")} | {"total_charges": None}
    dumped = model.model_validate_json(json.dumps(sparse)).model_dump()
    assert dumped["age"] is None and dumped["region"] is None and dumped["total_charges"] is None


@pytest.mark.parametrize(("change", "field", "kind"), [
    ({"age": "44"}, "age", "value_error"),  # a string is not a number
    ({"age": 150}, "age", "less_than_equal"),  # out of range
    ({"tenure_months": 1.5}, "tenure_months", "int_type"),
    ({"tenure_months": None}, "tenure_months", "int_type"),  # not nullable
    ({"contract": "weekly"}, "contract", "literal_error"),  # unknown category
    ({"paperless_billing": True}, "paperless_billing", "value_error"),
    ({"snapshot_date": "19/10/2025"}, "snapshot_date", "string_pattern_mismatch"),
    ({"monthly_charges": float("inf")}, "monthly_charges", "finite_number"),
    ({"extra": 1}, "extra", "extra_forbidden"),
])
def test_each_bad_field_is_named(contract, change, field, kind):
    assert errors_of(request_model(contract), GOOD | change) == {field: kind}


def test_every_failing_field_is_listed_at_once(contract):
    payload = {k: v for k, v in GOOD.items() if k != "contract"} | {"age": -1, "region": "moon"}
    assert errors_of(request_model(contract), payload) == {
        "age": "greater_than_equal", "contract": "missing", "region": "literal_error"}


def test_extra_fields_can_be_ignored(contract):
    model = request_model(contract, extra_fields="ignore")
    assert model.model_validate_json(json.dumps(GOOD | {"extra": 1})).model_dump() == GOOD


def test_columns_that_are_not_identifiers_work():
    schema = pa.DataFrameSchema({
        "monthly charges": pa.Column(float, pa.Check.in_range(0, 10)),
        "model_config": pa.Column(str, pa.Check.str_length(1, 3)),
        "flag": pa.Column(bool, pa.Check(lambda s: s.notna()), nullable=True),
    })
    contract = derive_contract(schema)
    assert contract["unenforced"] == ["flag: <lambda>"] or contract["unenforced"][0].startswith("flag:")
    model = request_model(contract)
    record = model.model_validate_json('{"monthly charges": 3, "model_config": "ab", "flag": null}')
    assert record.model_dump() == {"monthly charges": 3.0, "model_config": "ab", "flag": None}
    assert set(errors_of(model, {"monthly charges": 11, "model_config": "abcd"})) == {"monthly charges", "model_config"}


def test_to_frame_gives_the_training_dtypes(contract):
    model = request_model(contract)
    rows = [model.model_validate_json(json.dumps(r)).model_dump() for r in (GOOD, GOOD | {"age": None})]
    frame = to_frame(rows, contract)
    assert list(frame.columns) == [c["name"] for c in contract["columns"]]
    assert str(frame["tenure_months"].dtype) == "int64" and str(frame["age"].dtype) == "float64"
    assert frame["age"].isna().tolist() == [False, True]
    sparse = to_frame([rows[0] | {"region": None}, rows[0]], contract)
    assert sparse["region"].isna().tolist() == [True, False]  # NaN, as pandas reads a gap in training data


# -- column-wise batch checks ----------------------------------------------------------------
BAD_VALUES = [
    {"age": "44"}, {"age": 150}, {"age": 17.9}, {"age": True}, {"age": float("nan")}, {"age": float("inf")},
    {"age": [44]}, {"tenure_months": 1.5}, {"tenure_months": None}, {"tenure_months": True}, {"tenure_months": -1},
    {"tenure_months": 121}, {"tenure_months": "3"}, {"monthly_charges": 10**400}, {"total_charges": -0.01},
    {"contract": "weekly"}, {"contract": 1}, {"contract": None}, {"paperless_billing": True}, {"region": "moon"},
    {"snapshot_date": "19/10/2025"}, {"snapshot_date": "\u0662\u0660\u0662\u0665-10-19"},
    {"snapshot_date": "2025-10-19\n"}, {"snapshot_date": 20251019}, {"extra": 1},
]
GOOD_VALUES = [{}, {"age": None}, {"age": 18}, {"total_charges": None}, {"region": None}, {"age": 100.0}]


@pytest.mark.parametrize("change", BAD_VALUES, ids=[repr(c)[:40] for c in BAD_VALUES])
def test_column_check_refuses_what_the_record_model_refuses_with_its_errors(contract, change):
    model = request_model(contract)
    with pytest.raises(ValidationError) as per_record:
        model.model_validate(GOOD | change)
    with pytest.raises(ValidationError) as columns:
        BatchChecker(contract, model).check([GOOD, GOOD | change, GOOD])
    expected = [(("root", 1, *e["loc"]), e["type"], e["msg"]) for e in per_record.value.errors()]
    assert [(e["loc"], e["type"], e["msg"]) for e in columns.value.errors()] == expected


def test_column_check_lists_every_failing_row_and_field(contract):
    rows = [GOOD | {"age": 7}, GOOD, {k: v for k, v in GOOD.items() if k != "contract"} | {"region": "moon"}]
    with pytest.raises(ValidationError) as caught:
        BatchChecker(contract, request_model(contract)).check(rows)
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [
        (("root", 0, "age"), "greater_than_equal"), (("root", 2, "contract"), "missing"),
        (("root", 2, "region"), "literal_error")]


def test_column_check_passes_what_the_record_model_passes_and_converts_alike(contract):
    model = request_model(contract)
    rows = [GOOD | change for change in GOOD_VALUES] + [{k: v for k, v in GOOD.items() if k != "region"}]
    checked = BatchChecker(contract, model).check(rows)
    dumped = [model.model_validate(row).model_dump() for row in rows]
    assert checked.rows == len(rows)
    assert checked.values == Columns.of_rows(dumped, contract).values  # numbers as floats, absent as None
    pd.testing.assert_frame_equal(to_frame_columns(checked, contract), to_frame(dumped, contract))


def test_extra_fields_ignored_by_the_column_check_too(contract):
    checked = BatchChecker(contract, request_model(contract, "ignore"), "ignore").check([GOOD | {"extra": 1}])
    assert set(checked.values) == set(GOOD)


def test_concatenated_columns_keep_row_order(contract):
    checker = BatchChecker(contract, request_model(contract))
    merged = Columns.concat([checker.check([GOOD]), checker.check([GOOD | {"age": 20.0}, GOOD | {"age": 30.0}])])
    assert merged.rows == 3 and merged.values["age"] == [44.0, 20.0, 30.0]


@pytest.mark.parametrize(("body", "depth"), [
    (b"5", 0), (b"{}", 1), (b'[{"a": 1}]', 2), (b"[" * 1000 + b"]" * 1000, 1000),
    (b'[{"a": "[[[[\\" ["}]', 2),  # brackets and an escaped quote inside a string do not count
])
def test_nesting_depth(body, depth):
    assert nesting_depth(body) == depth
    assert nests_deeper_than(body, 32) == (depth if depth > 32 else None)


def test_brackets_inside_strings_never_refuse_a_request():
    shallow = b'[{"note": "' + b"[" * 40 + b'"}]'
    assert nests_deeper_than(shallow, 32) is None


# -- inference log ---------------------------------------------------------------------------
def writer(folder: Path, **options) -> LogWriter:
    return LogWriter(folder, model_name="churn-classifier", model_version=3, data_fingerprint="ab" * 32,
                     flush_seconds=0.05, **options)


def test_log_lines_have_the_agreed_format(tmp_path):
    log = writer(tmp_path / "log")
    assert log.submit([GOOD, GOOD | {"age": None}], [1, 0], [0.8, 0.2]) == 2
    log.close()
    [path] = list((tmp_path / "log").iterdir())
    assert path.name.startswith("predictions-") and path.name.endswith(".jsonl")
    first = json.loads(path.read_text().splitlines()[0])
    assert list(first) == ["timestamp", "model_name", "model_version", "data_fingerprint", "request_id", "traffic",
                           "features", "prediction", "probability"]
    assert first["request_id"] is None and first["traffic"] == "production"  # no id given: null, not invented
    assert first["timestamp"].endswith("Z") and first["model_version"] == 3
    assert first["features"] == GOOD and first["prediction"] == 1 and first["probability"] == 0.8


def test_read_log_frame_filters_and_counts_corrupt_lines(tmp_path):
    log = writer(tmp_path)
    log.submit([GOOD] * 3, [1, 0, 1], [0.9, 0.1, 0.7])
    log.close()
    other = LogWriter(tmp_path, model_name="churn-classifier", model_version=4, data_fingerprint="cd",
                      flush_seconds=0.05)
    other.submit([GOOD], [0], [None])
    other.close()
    # A crash mid-write leaves a partial last line; a person may have edited a file.
    with open(sorted(tmp_path.iterdir())[0], "a", encoding="utf-8") as handle:
        handle.write('{"timestamp": "2026-11-23T14:00:00Z", "model_na')
    read = read_log(str(tmp_path))
    assert (read.rows, read.corrupt_lines, read.files) == (4, 1, 2)
    assert list(read.frame.columns) == [*GOOD, "prediction", "probability", "timestamp", "model_version",
                                        "request_id", "traffic"]
    assert str(read.frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert read_log(str(tmp_path), model_version=4).rows == 1
    assert read_log(str(tmp_path), since=datetime.now(UTC) + timedelta(minutes=1)).rows == 0
    assert read_log(str(tmp_path), since=datetime.now(UTC) - timedelta(minutes=5)).rows == 4


def test_log_rows_carry_request_ids_and_smoke_traffic_is_left_out(tmp_path):
    log = writer(tmp_path)
    log.submit([GOOD] * 2, [1, 0], [0.9, 0.1], request_ids=["batch-7:0", "batch-7:1"])
    log.submit([GOOD], [1], [0.6], request_ids=["smoke-1"], traffic="smoke")
    log.close()
    # A line written before request ids and traffic existed reads as production without an id.
    with open(next(tmp_path.iterdir()), "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"timestamp": "2026-11-23T14:00:00.000000Z", "model_name": "churn-classifier",
                                 "model_version": 3, "data_fingerprint": "ab", "features": GOOD,
                                 "prediction": 0, "probability": 0.2}) + "\n")
    production = read_log(str(tmp_path))
    assert production.rows == 3 and production.other_traffic == 1
    assert production.frame["request_id"].tolist() == [None, "batch-7:0", "batch-7:1"]  # oldest first
    assert set(production.frame["traffic"]) == {"production"}
    everything = read_log(str(tmp_path), traffic=None)
    assert everything.rows == 4 and "smoke-1" in set(everything.frame["request_id"])
    assert read_log(str(tmp_path), model_version=4).other_versions == 3


def test_missing_log_is_empty_not_an_error(tmp_path):
    read = read_log(str(tmp_path / "nothing-here"))
    assert read.rows == 0 and read.files == 0
    assert {"prediction", "probability", "timestamp", "model_version"} <= set(read.frame.columns)


def test_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    dropped: list[int] = []
    log = writer(tmp_path, capacity=5, on_drop=lambda rows, reason: dropped.append(rows))
    started = time.perf_counter()
    assert log.submit([GOOD] * 8, [1] * 8) == 5
    assert time.perf_counter() - started < 0.5
    log.close()
    assert log.dropped == 3 and dropped == [3]
    assert read_log(str(tmp_path)).rows == 5


def test_rotation_by_size_and_by_time(tmp_path):
    by_size = writer(tmp_path / "size", rotate_bytes=1)
    for _ in range(3):
        by_size.submit([GOOD], [1])
        assert by_size.flush()
    by_size.close()
    assert len(list((tmp_path / "size").iterdir())) == 3
    by_time = writer(tmp_path / "time", rotate_seconds=0.2)
    by_time.submit([GOOD], [1])
    assert by_time.flush()
    time.sleep(0.4)
    by_time.submit([GOOD], [1])
    by_time.close()
    assert len(list((tmp_path / "time").iterdir())) == 2
    assert read_log(str(tmp_path / "time")).rows == 2


def test_written_rows_are_on_disk_before_close(tmp_path):
    log = writer(tmp_path)
    log.submit([GOOD] * 4, [1] * 4)
    assert log.flush()
    # Not closed: what a crash would leave behind is already readable.
    assert read_log(str(tmp_path)).rows == 4
    log.close()


def test_a_file_uri_appends_to_a_directory_and_other_uris_upload_whole_objects(tmp_path):
    local = writer(f"file://{tmp_path / 'local'}")  # type: ignore[arg-type]
    local.submit([GOOD], [1])
    local.close()
    assert local.local and [p.name.endswith(".jsonl") for p in (tmp_path / "local").iterdir()] == [True]
    remote = writer(f"memory://{tmp_path.name}/log")  # type: ignore[arg-type]
    remote.submit([GOOD] * 2, [1, 0])
    remote.close()
    assert not remote.local and len(remote.objects) == 1 and "/dt=" in remote.objects[0]
    assert read_log(f"memory://{tmp_path.name}/log").rows == 2


def test_columns_and_records_make_the_same_lines(tmp_path):
    rows = [GOOD, GOOD | {"age": None, "region": None}]
    by_rows = writer(tmp_path / "rows")
    by_rows.submit(rows, [1, 0], [0.8, float("nan")])
    by_rows.close()
    by_columns = writer(tmp_path / "columns")
    by_columns.submit_columns({name: [row[name] for row in rows] for name in GOOD}, [1, 0], [0.8, float("nan")])
    by_columns.close()
    [a], [b] = (list((tmp_path / name).iterdir()) for name in ("rows", "columns"))
    lines = [[json.loads(line) for line in path.read_text().splitlines()] for path in (a, b)]
    for line in lines[0] + lines[1]:
        line.pop("timestamp")
    assert lines[0] == lines[1]
    assert lines[1][1]["features"]["age"] is None and lines[1][1]["probability"] is None  # NaN -> null


@pytest.mark.parametrize("port", ["70000", "0"])
def test_serve_refuses_a_port_outside_1_to_65535(tmp_path, monkeypatch, port):
    from click.testing import CliRunner

    from gitops_ml.cli import main

    monkeypatch.chdir(tmp_path)  # no project here: the port is refused before anything is read
    done = CliRunner().invoke(main, ["serve", "2", "--port", port])
    assert done.exit_code == 2, done.output
    assert "--port" in done.output and "65535" in done.output


def test_serve_with_the_log_off_tells_the_bento_so_over_a_host_setting(tmp_path, monkeypatch):
    """``inference_log = "off"`` reaches the bento as GITOPS_ML_INFERENCE_LOG=off, even where the host
    exports a log directory of its own (that variable wins over the bento's baked-in setting)."""
    import os

    from click.testing import CliRunner

    from gitops_ml.cli import main
    from gitops_ml.serve import package as packaging

    from .conftest import make_project

    root = make_project(tmp_path / "p", extra='\n[tool.gitops-ml.serving]\ninference_log = "off"\n')
    monkeypatch.setenv("GITOPS_ML_INFERENCE_LOG", str(tmp_path / "host-log"))
    monkeypatch.setattr(packaging, "package", lambda spec, version: packaging.PackageResult(
        bento_tag="churn-classifier:v1-x", model_version=1, model_tag="m:v1", archive=None, dockerfile="D"))
    started = {}
    monkeypatch.setattr(os, "execvpe", lambda file, args, env: started.update(args=args, env=env))
    done = CliRunner().invoke(main, ["--project", str(root), "serve", "1", "--port", "3111"])
    assert done.exit_code == 0, done.output
    assert started["env"]["GITOPS_ML_INFERENCE_LOG"] == "off" and "inference log: off" in done.output
    assert not (tmp_path / "host-log").exists() and not (root / "off").exists()
