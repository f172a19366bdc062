"""Only production traffic counts, and the id column travels to the log but never into the model.

A project whose contract has a ``customer_id`` (``[tool.gitops-ml] id_column``), trained, released to
staging and served by the real `gitops-ml serve` on 127.0.0.1. `gitops-ml smoke` runs against it, as
the pipeline does, then N production rows are sent: drift counts N, and `feedback join --on
customer_id` joins labels back onto exactly those rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from gitops_ml import release, tracking
from gitops_ml.cards import write_card
from gitops_ml.config import load_spec
from gitops_ml.evaluate import evaluate
from gitops_ml.example import drifted_batch
from gitops_ml.serve.inference_log import read_log
from gitops_ml.serve.package import package
from gitops_ml.train import train

from .conftest import make_project, stop
from .support.serving import project_environment, serving

GITOPS = str(Path(sys.executable).parent / "gitops-ml")
N = 120  # production rows sent
pytestmark = pytest.mark.slow

SCHEMA = '''
import pandera.pandas as pa
from pandera.typing import Series

from gitops_ml.example.schema import ChurnSchema


class ChurnWithId(ChurnSchema):
    customer_id: Series[str] = pa.Field(str_matches=r"^C\\d{5}$", description="who; never a feature")
'''


def gitops(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([GITOPS, *args], cwd=root, env=project_environment(root), capture_output=True, text=True,
                          timeout=600)


class Served:
    def __init__(self, root: Path, url: str, process: subprocess.Popen):
        self.root, self.url, self.process = root, url, process


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = make_project(tmp_path_factory.mktemp("traffic") / "project")
    (root / "idschema.py").write_text(SCHEMA)
    data = pd.read_csv(root / "data" / "churn.csv")
    data.insert(0, "customer_id", [f"C{i:05d}" for i in range(len(data))])
    data.to_csv(root / "data" / "churn.csv", index=False)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text().replace('schema = "gitops_ml.example.schema:ChurnSchema"',
                                         'schema = "idschema:ChurnWithId"\nid_column = "customer_id"')
    pyproject.write_text(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("BENTOML_HOME", raising=False)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        spec = load_spec(root)
        train(spec)
        evaluate(spec, 1)
        write_card(spec, 1)
        release.promote(spec, 1, "staging")
        package(spec, 1)
    with serving(root) as server:
        yield Served(root, server.url, server.process)


def post(url: str, payload: object) -> tuple[int, object]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_id_column_is_checked_and_logged_but_never_fed_to_the_model(served: Served) -> None:
    import mlflow

    spec = load_spec(served.root)
    tracking.connect(spec)
    model = mlflow.sklearn.load_model(f"models:/{spec.model_name}/1")
    assert "customer_id" not in list(model.feature_names_in_)  # trained without it
    signature = mlflow.models.get_model_info(f"models:/{spec.model_name}/1").signature
    assert "customer_id" not in signature.inputs.input_names()
    metadata = json.loads(urllib.request.urlopen(f"{served.url}/metadata", timeout=30).read())
    assert "customer_id" in [c["name"] for c in metadata["contract"]["columns"]]  # still part of the request
    row = drifted_batch(1, "none", seed=41).drop(columns=["churned"])
    record = json.loads(row.to_json(orient="records"))[0]
    status, body = post(f"{served.url}/predict", record)  # no customer_id: the contract requires it
    assert status == 400 and "customer_id" in json.dumps(body)
    status, body = post(f"{served.url}/predict", record | {"customer_id": "not-an-id"})
    assert status == 400 and "customer_id" in json.dumps(body)
    status, body = post(f"{served.url}/predict", record | {"customer_id": "C99999"})
    assert status == 200
    expected = model.predict_proba(row)[:, 1][0]  # the model's answer on the features alone
    assert body["probability"] == pytest.approx(expected)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the writer ships its buffer every half second
        frame = read_log(str(served.root / "logs" / "inference")).frame
        if body["request_id"] in set(frame["request_id"]):
            break
        time.sleep(0.1)
    logged = frame.set_index("request_id").loc[body["request_id"]]
    assert logged["customer_id"] == "C99999" and logged["prediction"] == body["prediction"]


def test_smoke_traffic_is_not_counted_by_drift_or_feedback(served: Served, tmp_path: Path) -> None:
    log_dir = served.root / "logs" / "inference"
    before = read_log(str(log_dir), traffic=None).rows
    smoked = gitops(served.root, "smoke", served.url, "--expect-version", "1", "--json")
    assert smoked.returncode == 0, smoked.stdout + smoked.stderr
    checks = {c["name"]: c["passed"] for c in json.loads(smoked.stdout)["checks"]}
    assert checks["request id"]
    batch = drifted_batch(N, "none", seed=42)
    batch.insert(0, "customer_id", [f"C{70000 + i:05d}" for i in range(N)])
    for start in range(0, N, 40):
        rows = json.loads(batch.drop(columns=["churned"]).iloc[start:start + 40].to_json(orient="records"))
        status, answers = post(f"{served.url}/predict_batch", rows)
        assert status == 200 and len(answers) == len(rows)
    stop(served.process)  # SIGTERM: the service flushes its log
    everything = read_log(str(log_dir), traffic=None)
    smoke_rows = int((everything.frame["traffic"] == "smoke").sum())
    assert smoke_rows > 0 and everything.rows - before == N + smoke_rows
    assert set(everything.frame.loc[everything.frame["traffic"] == "smoke", "request_id"].notna()) == {True}

    drifted = gitops(served.root, "drift", "--env", "staging", "--json")
    assert drifted.returncode == 0, drifted.stderr
    current = json.loads(drifted.stdout)["current"]
    production_before = before  # earlier tests of this module sent production rows too
    assert current["rows_read"] == N + production_before and current["other_traffic"] == smoke_rows

    labels = batch[["customer_id", "churned"]]
    labels.to_csv(tmp_path / "labels.csv", index=False)
    joined = gitops(served.root, "feedback", "join", str(tmp_path / "labels.csv"), "--on", "customer_id",
                    "-o", str(tmp_path / "feedback.parquet"), "--json")
    assert joined.returncode == 0, joined.stderr
    result = json.loads(joined.stdout)
    assert result["matched"] == N and result["unmatched_labels"] == 0
    assert result["unlabelled_predictions"] == production_before  # the earlier test's rows have no label
    frame = pd.read_parquet(tmp_path / "feedback.parquet")
    assert sorted(frame["customer_id"]) == sorted(labels["customer_id"])
    assert set(frame["request_id"]).isdisjoint(everything.frame.loc[everything.frame["traffic"] == "smoke",
                                                                    "request_id"])
