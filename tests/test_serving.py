"""Packaging and serving a version the engine trained: real bentos, real `bentoml serve`, real HTTP."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from gitops_ml.config import load_spec
from gitops_ml.errors import ConfigError
from gitops_ml.serve.inference_log import read_log
from gitops_ml.serve.package import package
from gitops_ml.serve.smoke import call, sample_rows

from .conftest import copy_project, free_port
from .support.serving import project_environment, serving

GITOPS = str(Path(sys.executable).parent / "gitops-ml")
pytestmark = pytest.mark.slow


class Served:
    """A project copy, its bento, and `gitops-ml serve` running it on 127.0.0.1."""

    def __init__(self, root: Path, bento_tag: str, port: int, process: subprocess.Popen):
        self.root = root
        self.bento_tag = bento_tag
        self.url = f"http://127.0.0.1:{port}"
        self.process = process
        self.log_dir = root / "logs" / "inference"

    def logged_rows(self) -> int:
        return read_log(str(self.log_dir)).rows

    def metric(self, name: str) -> float:
        text = call(f"{self.url}/metrics").body.decode()
        match = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0


@pytest.fixture(scope="module")
def served(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = copy_project(trained_project, tmp_path_factory.mktemp("serving") / "project")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("BENTOML_HOME", raising=False)
        result = package(load_spec(root))
    with serving(root) as server:
        yield Served(root, result.bento_tag, server.port, server.process)


def test_package_builds_a_bento_with_a_dockerfile_and_reuses_it(served, tmp_path, monkeypatch):
    monkeypatch.delenv("BENTOML_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    spec = load_spec(served.root)
    again = package(spec, 1, export_dir=Path("exported"))  # a relative export directory
    assert again.bento_tag == served.bento_tag and again.model_version == 1
    assert Path(again.dockerfile).is_file() and again.dockerfile.endswith("env/docker/Dockerfile")
    assert again.dockerfile.startswith(str(served.root / ".bentoml"))
    assert again.archive == str(tmp_path / "exported" / f"{served.bento_tag.replace(':', '-')}.bento")
    assert Path(again.archive).stat().st_size > 100_000  # the model travels inside the archive
    assert sorted(p.name for p in (served.root / ".bentoml" / "bentos").iterdir()) == ["churn-classifier"]
    built = [p.name for p in (served.root / ".bentoml" / "bentos" / "churn-classifier").iterdir()]
    assert sorted(built) == sorted(["latest", served.bento_tag.split(":")[1]])  # reused, not rebuilt
    build = (Path(again.dockerfile).parents[2] / "src" / "bentofile.yaml").read_text()
    assert "lock_packages: false" in build and "- mlflow==" in build and "- skops==" in build


def test_package_refuses_an_unknown_version(served, monkeypatch):
    monkeypatch.delenv("BENTOML_HOME", raising=False)
    with pytest.raises(ConfigError, match="no version 7"):
        package(load_spec(served.root), 7)


def test_package_cli_json(served):
    done = subprocess.run([GITOPS, "package", "1", "--json"], cwd=served.root, env=project_environment(served.root),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["bento_tag"] == served.bento_tag and payload["archive"] is None
    assert set(payload) == {"bento_tag", "model_version", "model_tag", "archive", "dockerfile"}


def test_metadata_and_headers_say_which_model_answers(served):
    spec = load_spec(served.root)
    answer = call(f"{served.url}/metadata")
    assert answer.status == 200
    metadata = answer.json()
    assert metadata["model_name"] == "churn-classifier" and metadata["model_version"] == 1
    assert len(metadata["data_fingerprint"]) == 64 and metadata["classes"] == [0, 1]
    assert metadata["inference_log"] == str(served.log_dir.resolve())
    record = sample_rows(spec, [c["name"] for c in metadata["contract"]["columns"]], 1)[0]
    predicted = call(f"{served.url}/predict", "POST", record)
    assert predicted.status == 200
    assert predicted.headers["x-model-version"] == "1"
    assert predicted.headers["x-data-fingerprint"] == metadata["data_fingerprint"]
    body = predicted.json()
    assert body["prediction"] in (0, 1) and 0 <= body["probability"] <= 1


def test_smoke_passes_and_fails_on_the_wrong_version(served):
    env = project_environment(served.root)
    done = subprocess.run([GITOPS, "smoke", served.url, "--expect-version", "1", "--json"], cwd=served.root,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["passed"] and result["model_version"] == 1
    assert {c["name"] for c in result["checks"]} >= {"readyz", "livez", "model version", "data fingerprint",
                                                      "predict", "predict_batch", "bad request refused"}
    wrong = subprocess.run([GITOPS, "smoke", served.url, "--expect-version", "2"], cwd=served.root,
                           env=env, capture_output=True, text=True, timeout=300)
    assert wrong.returncode == 1
    assert "model version" in wrong.stderr
    nobody = subprocess.run([GITOPS, "smoke", f"http://127.0.0.1:{free_port()}", "--wait", "1"], cwd=served.root,
                            env=env, capture_output=True, text=True, timeout=300)
    assert nobody.returncode == 1


def bad_requests(record: dict, max_batch: int) -> list[tuple[str, object, str]]:
    """(route, body, what the 400 must name)."""
    missing = {k: v for k, v in record.items() if k != "tenure_months"}
    return [
        ("/predict", record | {"age": "old"}, "age"),  # wrong type
        ("/predict", missing, "tenure_months"),  # missing field
        ("/predict", record | {"monthly_charges": 9999}, "monthly_charges"),  # out of range
        ("/predict", record | {"contract": "weekly"}, "contract"),  # unknown category
        ("/predict", record | {"favourite_colour": "red"}, "favourite_colour"),  # extra field (rejected)
        ("/predict_batch", [], "too_short"),  # empty batch
        ("/predict_batch", [record] * (max_batch + 1), "too_long"),  # above serving.max_batch_size
        ("/predict_batch", [record, record | {"region": "moon"}], "region"),  # one bad row in a batch
        ("/predict", b"{this is not json", "json_invalid"),
    ]


def test_bad_requests_get_400_naming_the_field_then_good_ones_200(served):
    spec = load_spec(served.root)
    metadata = call(f"{served.url}/metadata").json()
    record = sample_rows(spec, [c["name"] for c in metadata["contract"]["columns"]], 1)[0]
    for route, body, named in bad_requests(record, spec.serving.max_batch_size):
        answer = call(f"{served.url}{route}", "POST", body)
        assert answer.status == 400, (route, named, answer.status, answer.body[:300])
        assert named.encode() in answer.body, (route, named, answer.body[:300])
        assert call(f"{served.url}/predict", "POST", record).status == 200


def test_bounded_load_of_good_and_malformed_requests(served):
    """Concurrent good and bad requests: no good one fails, the log holds exactly the good rows
    (minus counted drops), and the worker's memory stays flat."""
    spec = load_spec(served.root)
    metadata = call(f"{served.url}/metadata").json()
    records = sample_rows(spec, [c["name"] for c in metadata["contract"]["columns"]], 50)
    bad = bad_requests(records[0], spec.serving.max_batch_size)
    worker = max(psutil.Process(served.process.pid).children(recursive=True), key=lambda p: p.memory_info().rss)

    def wait_for_log(expected: int) -> int:
        deadline = time.monotonic() + 15
        while served.logged_rows() < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        return served.logged_rows()

    def one(i: int) -> tuple[bool, int, bool]:
        """(good, rows that should be logged, answered as expected)"""
        if i % 4 == 3:
            route, body, _ = bad[i % len(bad)]
            return False, 0, call(f"{served.url}{route}", "POST", body).status == 400
        if i % 4 == 1:
            batch = records[i % 40: i % 40 + 5]
            answer = call(f"{served.url}/predict_batch", "POST", batch)
            return True, len(batch), answer.status == 200 and len(answer.json()) == len(batch)
        answer = call(f"{served.url}/predict", "POST", records[i % 50])
        return True, 1, answer.status == 200 and "prediction" in answer.json()

    rss = []
    lock = threading.Lock()
    outcomes = []
    logged_before = wait_for_log(0)
    dropped_before = served.metric("gitops_ml_inference_log_dropped_rows_total")
    for rounds in range(3):
        with ThreadPoolExecutor(8) as pool:
            for outcome in pool.map(one, range(rounds * 200, rounds * 200 + 200)):
                with lock:
                    outcomes.append(outcome)
        rss.append(worker.memory_info().rss)
    good = [o for o in outcomes if o[0]]
    assert all(ok for _, _, ok in good), f"{sum(not ok for _, _, ok in good)} good requests failed"
    assert all(ok for is_good, _, ok in outcomes if not is_good), "a malformed request was not answered 400"
    expected = sum(rows for _, rows, _ in good)
    dropped = served.metric("gitops_ml_inference_log_dropped_rows_total") - dropped_before
    assert wait_for_log(logged_before + expected - dropped) - logged_before == expected - dropped
    assert served.metric("gitops_ml_inference_log_written_rows_total") >= expected - dropped
    # Flat: after the first round warmed everything up, later rounds add less than 25 MB.
    assert rss[-1] - rss[0] < 25 * 2**20, [r // 2**20 for r in rss]


def test_serve_refuses_an_environment_that_runs_nothing(served):
    done = subprocess.run([GITOPS, "serve", "--env", "staging", "--port", str(free_port())], cwd=served.root,
                          env=project_environment(served.root), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "staging" in done.stderr


# -- the table of bad prediction requests (issue 15, items 11 and 13, and the contract) -----------
def post(url: str, route: str, body: bytes, content_type: str | None = "application/json",
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One raw POST (any content type, any bytes, any extra headers): (status, body)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        sent = {"Content-Type": content_type} if content_type else {}
        connection.request("POST", route, body, sent | (headers or {}))
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def bad_request_table(record: dict, max_batch: int) -> dict[str, tuple[str, bytes, str | None, int, list[str]]]:
    """name -> (route, body, content type, status, texts the answer must contain: the field, the row)."""
    js = json.dumps

    def one(change: dict, drop: str | None = None) -> bytes:
        return js({k: v for k, v in (record | change).items() if k != drop}).encode()

    def batch(*rows: dict) -> bytes:
        return js(list(rows)).encode()

    def literal(change: dict[str, bytes]) -> bytes:
        """A record with JSON literals json.dumps would not write (NaN, Infinity, huge integers)."""
        text = one({name: f"@{name}@" for name in change})
        for name, value in change.items():
            text = text.replace(f'"@{name}@"'.encode(), value)
        return text

    return {
        "wrong type": ("/predict", one({"age": "old"}), "application/json", 400, ['"age"']),
        "number as string": ("/predict", one({"age": "44"}), "application/json", 400, ['"age"']),
        "missing field": ("/predict", one({}, drop="tenure_months"), "application/json", 400, ['"tenure_months"']),
        "out of range": ("/predict", one({"monthly_charges": 9999}), "application/json", 400, ['"monthly_charges"']),
        "negative count": ("/predict", one({"support_calls": -1}), "application/json", 400, ['"support_calls"']),
        "unknown category": ("/predict", one({"contract": "weekly"}), "application/json", 400, ['"contract"']),
        "category in another case": ("/predict", one({"contract": "One-Year"}), "application/json", 400,
                                     ['"contract"']),
        "extra field": ("/predict", one({"favourite_colour": "red"}), "application/json", 400, ['"favourite_colour"']),
        "boolean as integer": ("/predict", one({"tenure_months": True}), "application/json", 400,
                               ['"tenure_months"']),
        "fraction as integer": ("/predict", one({"tenure_months": 1.5}), "application/json", 400,
                                ['"tenure_months"']),
        "null where not nullable": ("/predict", one({"tenure_months": None}), "application/json", 400,
                                    ['"tenure_months"']),
        "object as a value": ("/predict", one({"age": {"years": 44}}), "application/json", 400, ['"age"']),
        "date in Arabic-Indic digits": ("/predict", one({"snapshot_date": "\u0662\u0660\u0662\u0665-10-19"}),
                                        "application/json", 400, ['"snapshot_date"']),
        "date with a trailing newline": ("/predict", one({"snapshot_date": "2025-10-19\n"}), "application/json", 400,
                                         ['"snapshot_date"']),
        "date with a leading space": ("/predict", one({"snapshot_date": " 2025-10-19"}), "application/json", 400,
                                      ['"snapshot_date"']),
        "NaN literal": ("/predict", literal({"monthly_charges": b"NaN"}), "application/json", 400,
                        ['"monthly_charges"']),
        "not JSON": ("/predict", b"{this is not json", "application/json", 400, ["json_invalid"]),
        "trailing garbage": ("/predict", one({}) + b" x", "application/json", 400, ["json_invalid"]),
        "empty body": ("/predict", b"", "application/json", 400, ['"snapshot_date"']),
        "a list to /predict": ("/predict", batch(record), "application/json", 400, ["model_type"]),
        "text/plain to /predict": ("/predict", one({}), "text/plain", 415, ["Content-Type", "text/plain"]),
        "text/plain to /predict_batch": ("/predict_batch", batch(record), "text/plain", 415, ["Content-Type"]),
        "form content type": ("/predict", one({}), "application/x-www-form-urlencoded", 415, ["Content-Type"]),
        "no content type": ("/predict_batch", batch(record), None, 415, ["Content-Type"]),
        "1,000 levels deep to /predict_batch": ("/predict_batch", deep(1000), "application/json", 400,
                                                ["json_too_deep", "1000 levels"]),
        "1,000 levels deep to /predict": ("/predict", b'{"age": ' + deep(1000) + b"}", "application/json", 400,
                                          ["json_too_deep"]),
        "empty batch": ("/predict_batch", b"[]", "application/json", 400, ["too_short"]),
        "batch above max_batch_size": ("/predict_batch", batch(*[record] * (max_batch + 1)), "application/json", 400,
                                       ["too_long"]),
        "an object to /predict_batch": ("/predict_batch", one({}), "application/json", 400, ["list_type"]),
        "a row that is not an object": ("/predict_batch", js([record, 5]).encode(), "application/json", 400,
                                        ['["root",1]', "dict_type"]),
        "one bad row in a batch": ("/predict_batch", batch(record, record | {"region": "moon"}), "application/json",
                                   400, ['["root",1,"region"]']),
        "every bad row and field listed": (
            "/predict_batch", batch(record | {"age": 7}, record, {k: v for k, v in record.items() if k != "contract"}
                                    | {"support_calls": "3"}),
            "application/json", 400,
            ['["root",0,"age"]', '["root",2,"contract"]', '["root",2,"support_calls"]']),
        "infinity in a batch": ("/predict_batch", b"[" + literal({"monthly_charges": b"Infinity"}) + b"]",
                                "application/json", 400, ['["root",0,"monthly_charges"]']),
        "integer too large for a float": ("/predict_batch", b"[" + literal({"total_charges": b"1" + b"0" * 400}) + b"]",
                                          "application/json", 400, ['["root",0,"total_charges"]']),
        "Arabic-Indic date in a batch": ("/predict_batch", batch(record, record | {"snapshot_date": "\u0662025-10-19"}),
                                         "application/json", 400, ['["root",1,"snapshot_date"]']),
        "batch of lists": ("/predict_batch", js([[record]]).encode(), "application/json", 400,
                           ['["root",0]', "dict_type"]),
    }


def bad_header_table(record: dict) -> dict[str, tuple[str, bytes, dict[str, str], list[str]]]:
    """name -> (route, body, headers, texts the 400 must contain): request ids and traffic marks."""
    good = json.dumps(record).encode()
    batch = json.dumps([record]).encode()
    return {
        "request id of 129 characters": ("/predict", good, {"X-Request-ID": "a" * 129}, ["X-Request-ID", "129"]),
        "request id with a space": ("/predict", good, {"X-Request-ID": "two words"}, ["X-Request-ID"]),
        "request id with a slash": ("/predict_batch", batch, {"X-Request-ID": "../etc/passwd"}, ["X-Request-ID"]),
        "request id with a comma": ("/predict", good, {"X-Request-ID": "a,b"}, ["X-Request-ID"]),
        "request id with a quote": ("/predict", good, {"X-Request-ID": 'a"b'}, ["X-Request-ID"]),
        "request id not ASCII": ("/predict", good, {"X-Request-ID": "caf\u00e9"}, ["X-Request-ID"]),
        "empty request id": ("/predict", good, {"X-Request-ID": ""}, ["X-Request-ID"]),
        "traffic mark with a space": ("/predict", good, {"X-Gitops-ML-Traffic": "smoke test"},
                                      ["X-Gitops-ML-Traffic"]),
        "traffic mark too long": ("/predict_batch", batch, {"X-Gitops-ML-Traffic": "s" * 33},
                                  ["X-Gitops-ML-Traffic"]),
    }


BAD_HEADERS = list(bad_header_table({}))


@pytest.mark.parametrize("case", BAD_HEADERS)
def test_bad_header_table(served, case):
    """A bad X-Request-ID or traffic mark: a 400 naming the header, nothing logged, the service goes on."""
    spec = load_spec(served.root)
    metadata = call(f"{served.url}/metadata").json()
    record = sample_rows(spec, [c["name"] for c in metadata["contract"]["columns"]], 1)[0]
    route, body, headers, named = bad_header_table(record)[case]
    before = served.logged_rows()
    answered, text = post(served.url, route, body, headers={k: v.encode("utf-8").decode("latin-1")
                                                             for k, v in headers.items()})
    assert answered == 400, (case, answered, text[:300])
    for fragment in named:
        assert fragment.encode() in text, (case, fragment, text[:400])
    assert post(served.url, "/predict", json.dumps(record).encode())[0] == 200
    deadline = time.monotonic() + 15
    while served.logged_rows() < before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.logged_rows() == before + 1, case


def answer_of(url: str, route: str, payload: object, headers: dict[str, str] | None = None):
    """(status, headers in lower case, JSON body) of one POST."""
    import urllib.request

    request = urllib.request.Request(f"{url}{route}", data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"} | (headers or {}))
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, {k.lower(): v for k, v in answer.headers.items()}, json.loads(answer.read())


def logged_by_id(served: Served, wanted: set[str], traffic: str | None = "production") -> dict[str, dict]:
    """Logged rows whose request id is in ``wanted`` (waiting for the writer), by id."""
    deadline = time.monotonic() + 15
    while True:
        frame = read_log(str(served.log_dir), traffic=traffic).frame
        found = {row["request_id"]: row for row in frame.to_dict("records") if row["request_id"] in wanted}
        if len(found) == len(wanted) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_request_ids_are_answered_and_logged(served):
    spec = load_spec(served.root)
    metadata = call(f"{served.url}/metadata").json()
    records = sample_rows(spec, [c["name"] for c in metadata["contract"]["columns"]], 3)
    # The caller's id: echoed in the header and the body, and in the log.
    status, headers, body = answer_of(served.url, "/predict", records[0], {"X-Request-ID": "order-42.a:7_b-c"})
    assert status == 200 and headers["x-request-id"] == "order-42.a:7_b-c" == body["request_id"]
    assert answer_of(served.url, "/predict", records[0], {"X-Request-ID": "x" * 128})[2]["request_id"] == "x" * 128
    # No id sent: a generated uuid4 hex, a new one each time.
    _, generated, first = answer_of(served.url, "/predict", records[1])
    _, _, second = answer_of(served.url, "/predict", records[1])
    assert re.fullmatch(r"[0-9a-f]{32}", first["request_id"]) and generated["x-request-id"] == first["request_id"]
    assert first["request_id"] != second["request_id"]
    # A batch: the header holds the batch's id, row i is "<batch id>:<i>", with or without a caller's id.
    _, batch_headers, rows = answer_of(served.url, "/predict_batch", records, {"X-Request-ID": "batch-9"})
    assert batch_headers["x-request-id"] == "batch-9"
    assert [r["request_id"] for r in rows] == ["batch-9:0", "batch-9:1", "batch-9:2"]
    _, own_headers, own = answer_of(served.url, "/predict_batch", records[:2])
    assert [r["request_id"] for r in own] == [f"{own_headers['x-request-id']}:{i}" for i in range(2)]
    wanted = {"order-42.a:7_b-c", first["request_id"], "batch-9:0", "batch-9:1", "batch-9:2"}
    logged = logged_by_id(served, wanted)
    assert set(logged) == wanted
    assert logged["batch-9:2"]["prediction"] == rows[2]["prediction"]
    assert logged["batch-9:1"]["tenure_months"] == records[1]["tenure_months"]  # each id on its own row


def test_marked_traffic_is_logged_as_such_and_left_out(served):
    spec = load_spec(served.root)
    metadata = call(f"{served.url}/metadata").json()
    record = sample_rows(spec, [c["name"] for c in metadata["contract"]["columns"]], 1)[0]
    status, _, body = answer_of(served.url, "/predict", record,
                                {"X-Request-ID": "smoke-probe-1", "X-Gitops-ML-Traffic": "Smoke"})
    assert status == 200 and body["request_id"] == "smoke-probe-1"
    marked = logged_by_id(served, {"smoke-probe-1"}, traffic=None)
    assert marked["smoke-probe-1"]["traffic"] == "smoke"  # kept for the record, lower case
    assert logged_by_id(served, {"smoke-probe-1"}) == {}  # but not production traffic


BAD_REQUESTS = list(bad_request_table({"monthly_charges": 1.0, "total_charges": 1.0}, 1))


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_request_table(served, case):
    """Each bad request: its status, an answer naming the row and field, and no row in the inference log."""
    spec = load_spec(served.root)
    metadata = call(f"{served.url}/metadata").json()
    record = sample_rows(spec, [c["name"] for c in metadata["contract"]["columns"]], 1)[0]
    route, body, content_type, status, named = bad_request_table(record, spec.serving.max_batch_size)[case]
    before = served.logged_rows()
    answered, text = post(served.url, route, body, content_type)
    assert answered == status, (case, answered, text[:300])
    for fragment in named:
        assert fragment.encode() in text.replace(b", ", b","), (case, fragment, text[:400])
    # The next good request is logged; had the bad one been logged, its row would be on disk first.
    assert post(served.url, "/predict", json.dumps(record).encode())[0] == 200
    deadline = time.monotonic() + 15
    while served.logged_rows() < before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.logged_rows() == before + 1, case


def test_openapi_still_shows_the_contract_for_both_endpoints(served):
    """/predict_batch takes plain objects and checks them itself; its OpenAPI schema is still the contract's."""
    answer = call(f"{served.url}/docs.json")
    assert answer.status == 200
    text = json.dumps(answer.json())
    metadata = call(f"{served.url}/metadata").json()
    for column in metadata["contract"]["columns"]:
        assert f'"{column["name"]}"' in text
    assert '"maxItems": 1000' in text and "one-year" in text
