"""Servers started by the demo, the benchmarks and the tests: a free loopback port, readiness, a clean stop.

Every server runs in its own process group (``start_new_session=True``), so stopping the group also
stops the workers a server forks, except BentoML's: its arbiter starts each worker in a session of its
own. A SIGTERM reaches them through the arbiter, which stops them before it exits; a SIGKILL of the group
leaves them running, orphaned, holding their port. So the workers are also found by their parentage
(psutil, which BentoML depends on) before any signal, and any still there afterwards is killed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from contextlib import suppress


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers 200; fail early if ``process`` dies, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[:3]} exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def descendants(pid: int) -> list:
    """Every process below ``pid`` now (psutil processes), whatever their session."""
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def kill_all(processes: list, grace: float = 0.0, timeout: float = 10.0) -> None:
    """SIGKILL each of ``processes`` still alive after ``grace`` seconds and wait (at most ``timeout`` s)
    until they are gone."""
    import psutil

    _, alive = psutil.wait_procs(processes, timeout=grace) if grace else ([], processes)
    for child in alive:
        with suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(processes, timeout=timeout)


def kill_tree(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGKILL a server and every process below it at once, as a crash or an OOM kill would: nothing
    gets to flush or to say goodbye."""
    children = descendants(process.pid)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, 9)
    kill_all(children, timeout=timeout)
    process.wait(timeout=timeout)


def stop(process: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the process group (servers flush their logs then), SIGKILL if it is still there after
    ``grace``; a worker in a session of its own still there after its server is gone is killed too."""
    if process.poll() is not None:
        return
    children = descendants(process.pid)
    try:
        os.killpg(process.pid, 15)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
    kill_all(children, grace=5.0)  # their arbiter has exited: whatever is left has nobody to stop it
