"""A real S3 API on 127.0.0.1 for the tests: moto's server mode, and a TCP proxy in front of it that
can be taken down, brought back and slowed, to play a storage outage or a slow store.

Nothing here ships in the product: moto and s3fs are dev dependencies only.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from gitops_ml.processes import free_port

BUCKET = "gitops-ml-test"
# Dummy credentials: moto accepts any key, a real AWS endpoint is never reached (AWS_ENDPOINT_URL).
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@dataclass
class S3Server:
    """moto on 127.0.0.1:port; ``endpoint`` is what AWS_ENDPOINT_URL and MLFLOW_S3_ENDPOINT_URL hold."""

    port: int
    server: object

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self, endpoint: str | None = None) -> dict[str, str]:
        """The variables a process needs to talk to this server (or to ``endpoint``, a proxy of it)."""
        url = endpoint or self.endpoint
        return CREDENTIALS | {"AWS_ENDPOINT_URL": url, "AWS_ENDPOINT_URL_S3": url, "MLFLOW_S3_ENDPOINT_URL": url}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def keys(self, bucket: str = BUCKET, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def reset(self) -> None:
        """Empty every bucket but keep the test bucket: one server serves a module's tests."""
        client = self.client()
        for bucket in client.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            for key in self.keys(name):
                client.delete_object(Bucket=name, Key=key)
            if name != BUCKET:
                client.delete_bucket(Bucket=name)
        if BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=BUCKET)


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """moto's ThreadedMotoServer on a free port of 127.0.0.1, the test bucket made; stopped after."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    running = S3Server(port, server)
    try:
        running.client().create_bucket(Bucket=BUCKET)
        yield running
    finally:
        server.stop()


@contextmanager
def s3_environment(endpoint: str, server: S3Server) -> Iterator[None]:
    """This process talks to ``endpoint``: credentials and endpoint variables set, fsspec's cached
    filesystems forgotten (s3fs caches instances by their options, and the endpoint is not one)."""
    saved = {key: os.environ.get(key) for key in server.environment()}
    os.environ.update(server.environment(endpoint))
    forget_filesystems()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        forget_filesystems()


def forget_filesystems() -> None:
    try:
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
    except ImportError:  # pragma: no cover - a dev dependency
        pass


class StorageProxy:
    """A TCP proxy on 127.0.0.1 in front of the S3 server, for fault tests.

    ``down()``: new connections are refused (the port is closed) and open ones cut; ``up()``: back.
    ``delay``: seconds each request's first bytes wait before they are forwarded (a slow store).
    Counts the connections it forwarded, so a test can assert an order of events, not a wall clock.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.delay = 0.0
        self.forwarded = 0
        self.delayed = 0
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._listener is not None

    def up(self) -> StorageProxy:
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        self._stop.clear()
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                with suppress(OSError):
                    sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
        except OSError:
            client.close()
            return
        with self._lock:
            self._open += [client, upstream]
            self.forwarded += 1
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([client, upstream], [], [], 0.2)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client and self.delay:
                        with self._lock:
                            self.delayed += 1
                        time.sleep(self.delay)
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                with suppress(OSError):
                    sock.close()
