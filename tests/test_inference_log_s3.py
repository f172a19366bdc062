"""The inference log on object storage, against a real S3 API (moto's server on 127.0.0.1) through s3fs:
whole objects rotated by size and by age, the window read by listing names, corrupt objects skipped
and counted, and the faults: storage down at start, slow storage, a missing bucket, refused
credentials, a missing driver. Assertions are on counters and the order of events, never on wall
clocks; every wait is bounded.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from gitops_ml.errors import CheckFailed
from gitops_ml.serve.inference_log import (
    OBJECT_PATTERN,
    DriverMissing,
    LogLocationError,
    LogWriter,
    missing_driver_message,
    read_log,
)

from .support.s3 import BUCKET, StorageProxy, s3_environment

ROW = {"age": 44.0, "tenure_months": 12, "contract": "one-year"}
LOCATION = f"s3://{BUCKET}/churn/inference"


def writer(location: str = LOCATION, **options) -> LogWriter:
    return LogWriter(location, model_name="churn-classifier", model_version=3, data_fingerprint="ab" * 32,
                     flush_seconds=0.05, **options)


def stops(log: LogWriter, within: float = 5.0) -> bool:
    """Whether the writer's threads end within ``within`` seconds of close()."""
    deadline = time.monotonic() + within
    while log.running and time.monotonic() < deadline:
        time.sleep(0.05)
    return not log.running


def objects(s3, prefix: str = "churn/inference/") -> list[str]:
    return [key for key in s3.keys(prefix=prefix) if key.endswith(".parquet")]


def test_rows_become_whole_objects_rotated_by_size(s3):
    log = writer(rotate_bytes=150)  # estimated from the last object (at first 64 bytes a row): 3 rows are past it
    for _ in range(4):
        assert log.submit([ROW] * 3, [1, 0, 1], [0.9, 0.1, 0.7]) == 3
    log.close()  # no flush between the calls: the size alone rotates
    keys = objects(s3)
    assert len(keys) == 4 and log.written == 12 and log.dropped == 0
    # One partition a day; names unique to the process; nothing but whole objects.
    assert all(key.split("/")[2].startswith("dt=") for key in keys)
    names = [OBJECT_PATTERN.match(key.rsplit("/", 1)[1]) for key in keys]
    assert all(names) and len({name.group(3, 4, 5) for name in names}) == 1  # host, pid, uuid: this process
    assert sorted(int(name.group(6)) for name in names) == [1, 2, 3, 4]
    read = read_log(LOCATION)
    assert (read.rows, read.files, read.corrupt_objects) == (12, 4, 0)
    assert list(read.frame.columns[:3]) == list(ROW)


def test_a_quiet_service_ships_its_rows_when_they_are_old_enough(s3):
    log = writer(rotate_seconds=0.3)
    log.submit([ROW], [1])
    deadline = time.monotonic() + 20
    while not objects(s3) and time.monotonic() < deadline:  # no flush: the age alone rotates it
        time.sleep(0.05)
    assert len(objects(s3)) == 1 and log.pending == 0
    log.submit([ROW] * 2, [1, 0])
    log.close()
    assert len(objects(s3)) == 2 and read_log(LOCATION).rows == 3


def test_the_window_lists_names_and_downloads_only_what_is_inside(s3, monkeypatch):
    log = writer()
    log.submit([ROW] * 5, [1] * 5)
    log.close()
    [recent] = objects(s3)
    old_day = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%d")
    old_stamp = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y%m%dT%H%M%S")
    body = s3.client().get_object(Bucket=BUCKET, Key=recent)["Body"].read()
    client = s3.client()
    # Ten days old, by its name and by its partition: never downloaded by a 7-day window.
    client.put_object(Bucket=BUCKET, Key=f"churn/inference/dt={old_day}/predictions-{old_stamp}-{old_stamp}"
                                         f"-otherhost-1-0000aaaa-1.parquet", Body=body)
    # Inside the window but cut in half (a truncated upload): skipped whole and counted, the rest still read.
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    client.put_object(Bucket=BUCKET, Key=f"churn/inference/dt={today}/predictions-{stamp}-{stamp}"
                                         f"-otherhost-1-0000bbbb-1.parquet", Body=body[: len(body) // 2])
    # Not a log object at all: ignored.
    client.put_object(Bucket=BUCKET, Key=f"churn/inference/dt={today}/notes.txt", Body=b"hello")

    import s3fs

    opened: list[str] = []
    original = s3fs.S3FileSystem._open

    def recording(self, path, *args, **kwargs):
        opened.append(path)
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "_open", recording)
    read = read_log(LOCATION, since=datetime.now(UTC) - timedelta(days=7))
    assert (read.rows, read.files, read.corrupt_objects, read.outside_window) == (5, 2, 1, 0)
    assert not any("0000aaaa" in path for path in opened)  # the old partition was never even listed
    assert len(opened) == len(set(opened)) == 2  # each object read once
    everything = read_log(LOCATION)
    assert (everything.rows, everything.corrupt_objects) == (10, 1)


def test_storage_down_at_start_then_back_delivers_the_buffered_rows(s3):
    proxy = StorageProxy(s3.port)  # down: nothing listens on its port yet
    failures: list[str] = []
    with s3_environment(proxy.endpoint, s3):
        log = writer(on_upload_error=failures.append)
        assert log.submit([ROW] * 4, [1] * 4) == 4  # the service takes rows while storage is down
        deadline = time.monotonic() + 30
        while not failures and time.monotonic() < deadline:
            log.flush(0.1)
        assert failures and log.written == 0 and objects(s3) == []
        assert log.submit([ROW] * 2, [0] * 2) == 2
        proxy.up()
        try:
            assert log.flush(60), "the buffered rows did not arrive once storage was back"
            log.close()
        finally:
            proxy.down()
    assert log.written == 6 and log.dropped == 0 and log.errors == len(failures) >= 1
    assert read_log(LOCATION).rows == 6
    assert "Error" in failures[0] or "error" in failures[0].lower()


def test_storage_down_with_a_full_buffer_counts_what_it_drops(s3):
    proxy = StorageProxy(s3.port)
    drops: list[tuple[int, str]] = []
    with s3_environment(proxy.endpoint, s3):
        log = writer(capacity=10, on_drop=lambda rows, reason: drops.append((rows, reason)))
        accepted = sum(log.submit([ROW] * 4, [1] * 4) for _ in range(5))  # 20 rows into room for 10
        proxy.up()
        try:
            assert log.flush(60)
            log.close()
        finally:
            proxy.down()
    assert accepted == 10 and log.written == 10 and log.dropped == 10
    assert sum(rows for rows, _ in drops) == 10 and {reason for _, reason in drops} == {"buffer_full"}
    assert read_log(LOCATION).rows == 10


def test_slow_storage_does_not_hold_up_predictions(s3):
    proxy = StorageProxy(s3.port).up()
    proxy.delay = 0.5  # every request to S3 waits
    try:
        with s3_environment(proxy.endpoint, s3):
            log = writer(rotate_bytes=300)  # an object per call: many slow uploads queue up
            accepted = [log.submit([ROW] * 2, [1, 0]) for _ in range(8)]
            # Every call was taken at once, before the first slow upload could finish.
            assert accepted == [2] * 8 and log.written == 0
            assert log.flush(120)
            log.close()
    finally:
        proxy.down()
    assert proxy.delayed >= 1 and log.written == 16 and log.dropped == 0
    assert read_log(LOCATION).rows == 16


def test_a_missing_bucket_is_counted_by_the_writer_and_named_by_the_reader(s3, project):
    failures: list[str] = []
    log = writer("s3://no-such-bucket/churn/inference", on_upload_error=failures.append)
    log.submit([ROW], [1])
    deadline = time.monotonic() + 30
    while not failures and time.monotonic() < deadline:
        log.flush(0.1)
    log.close(timeout=1)
    assert failures and log.written == 0 and log.drops_by_reason == {"shutdown": 1}
    assert stops(log), "the uploader kept retrying rows close() had counted as lost"
    assert "NoSuchBucket" in failures[0] or "does not exist" in failures[0] or "FileNotFound" in failures[0]
    with pytest.raises(LogLocationError, match="no-such-bucket"):
        read_log("s3://no-such-bucket/churn/inference")
    # Drift reading that location stops with exit 1, naming the setting and the location.
    from gitops_ml.config import load_spec
    from gitops_ml.monitor.sources import read_inference_log

    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text().replace(
        "[tool.gitops-ml.gates]", '[tool.gitops-ml.serving]\ninference_log = "s3://no-such-bucket/churn"\n\n'
                                  "[tool.gitops-ml.gates]"))
    with pytest.raises(CheckFailed, match=r"inference_log: .*s3://no-such-bucket/churn.*does not exist"):
        read_inference_log(load_spec(project), 1, "7d")


def test_a_missing_prefix_in_an_existing_bucket_is_an_empty_log(s3):
    read = read_log(f"s3://{BUCKET}/nothing/yet")
    assert read.rows == 0 and read.files == 0


def test_refused_credentials_are_counted_by_the_writer_and_named_by_the_reader(s3, monkeypatch):
    import moto.settings

    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto now checks the keys
    failures: list[str] = []
    log = writer(on_upload_error=failures.append)
    log.submit([ROW], [1])
    deadline = time.monotonic() + 30
    while not failures and time.monotonic() < deadline:
        log.flush(0.1)
    log.close(timeout=1)
    assert failures and log.written == 0 and log.dropped == 1
    assert stops(log), "the uploader kept retrying rows close() had counted as lost"
    assert any(word in failures[0] for word in ("PermissionError", "InvalidAccessKeyId", "Forbidden"))
    with pytest.raises(LogLocationError, match=f"s3://{BUCKET}/churn/inference"):
        read_log(LOCATION)


@pytest.mark.parametrize(("location", "extra", "package"), [
    ("gs://bucket/churn/inference", "gcs", "gcsfs"),
    ("az://container/churn/inference", "azure", "adlfs"),
    ("s3://bucket/churn/inference", "s3", "s3fs"),
])
def test_a_missing_driver_names_the_extra_to_install(location, extra, package, monkeypatch):
    import importlib.util
    import sys

    if importlib.util.find_spec(package) is not None:
        monkeypatch.setitem(sys.modules, package, None)  # as if it were not installed
    message = missing_driver_message(location)
    assert message == (f"inference log {location}: the {location.split(':')[0]}:// driver ({package}) is not "
                       f"installed; pip install 'gitops-ml[{extra}]' (in a bento or image: pip install {package})")
    with pytest.raises(DriverMissing) as raised:
        writer(location)
    assert str(raised.value) == message and not isinstance(raised.value, ImportError)
    with pytest.raises(DriverMissing, match=rf"pip install 'gitops-ml\[{extra}\]'"):
        read_log(location)
