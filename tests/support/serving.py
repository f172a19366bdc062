"""`gitops-ml serve` as a real process for the tests: started in a project, waited on until ready, stopped.

Several test modules serve a packaged version over HTTP; they all start, wait and stop it the same way,
so the way lives here once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gitops_ml.processes import free_port, stop, wait_for

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


@contextmanager
def serving(root: Path, version: str = "1", *, env: Mapping[str, str] = {}, log_name: str = "serve.log",
            grace: float = 15.0) -> Iterator[Server]:
    """Serve ``version`` of the project at ``root`` on a free port; stderr goes to ``root / log_name``.

    Stopping sends SIGTERM first (the server flushes its inference log then) and waits ``grace`` seconds.
    """
    port = free_port()
    with open(root / log_name, "ab") as server_log:
        process = subprocess.Popen([GITOPS, "serve", version, "--port", str(port)], cwd=root,
                                   env=project_environment(root) | dict(env), stdout=subprocess.DEVNULL,
                                   stderr=server_log, start_new_session=True)
        try:
            wait_for(f"http://127.0.0.1:{port}/readyz", timeout=120, process=process)
            yield Server(port, process)
        finally:
            stop(process, grace=grace)
