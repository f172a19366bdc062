"""`gitops-ml serve` as a real process for the tests: started in a project, waited on until ready, stopped.

Several test modules serve a packaged version over HTTP; they all start, wait and stop it the same way,
so the way lives here once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gitops_ml.processes import descendants, free_port, kill_all, kill_tree, stop, wait_for

GITOPS = str(Path(sys.executable).with_name("gitops-ml"))


def project_environment(root: Path) -> dict[str, str]:
    """The test's environment without its own BentoML home or tracking URI, pointed at ``root``."""
    env = {k: v for k, v in os.environ.items() if k not in ("BENTOML_HOME", "MLFLOW_TRACKING_URI")}
    return env | {"GITOPS_ML_PROJECT": str(root)}


@dataclass(frozen=True)
class Server:
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL the server and its workers at once: a crash, with no time to flush anything."""
        kill_tree(self.process)


@contextmanager
def serving(root: Path, version: str = "1", *, env: Mapping[str, str] = {}, log_name: str = "serve.log",
            grace: float = 15.0) -> Iterator[Server]:
    """Serve ``version`` of the project at ``root`` on a free port; stderr goes to ``root / log_name``.

    Stopping sends SIGTERM first (the server flushes its inference log then) and waits ``grace`` seconds;
    every process the server had when it became ready is gone afterwards, even after a test's SIGKILL.
    """
    port = free_port()
    with open(root / log_name, "ab") as server_log:
        process = subprocess.Popen([GITOPS, "serve", version, "--port", str(port)], cwd=root,
                                   env=project_environment(root) | dict(env), stdout=subprocess.DEVNULL,
                                   stderr=server_log, start_new_session=True)
        workers: list = []
        try:
            wait_for(f"http://127.0.0.1:{port}/readyz", timeout=120, process=process)
            workers = descendants(process.pid)  # found now: once their server is killed, nothing leads to them
            yield Server(port, process)
        finally:
            stop(process, grace=grace)
            kill_all(workers)


def predict_batches(url: str, records: list[dict], batch: int = 100) -> list[str]:
    """POST ``records`` to ``url``'s /predict_batch, ``batch`` at a time; the request ids the service gave
    the rows, in order. Every request must be answered 200: the ids returned are acknowledged rows."""
    request_ids: list[str] = []
    for start in range(0, len(records), batch):
        request = urllib.request.Request(
            f"{url}/predict_batch", data=json.dumps(records[start : start + batch]).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert answer.status == 200
            request_ids += [row["request_id"] for row in json.loads(answer.read())]
    return request_ids
