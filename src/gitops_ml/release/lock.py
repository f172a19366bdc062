"""One promotion per environment at a time, in one working tree.

An OS lock (``fcntl.flock``) on the environment's folder ``environments/<env>/``: the kernel drops it
when the process ends, so a crashed promotion never leaves an environment locked, and locking a
folder that is there anyway leaves no lock file behind in the tree or the state folder.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..config import Spec
from ..errors import CheckFailed
from .environments import manifest_path


@contextmanager
def promotion_lock(spec: Spec, env: str) -> Iterator[None]:
    """Hold the lock of ``env`` for the block; CheckFailed at once when another process holds it."""
    folder = manifest_path(spec, env).parent
    folder.mkdir(parents=True, exist_ok=True)  # git keeps no empty folder: nothing to see in `git status`
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CheckFailed(
                f"another promotion to {env} is running in this working tree (it holds the lock on "
                f"{spec.display(str(folder))}/): nothing was written; promote again when it has finished"
            ) from None
        yield
    finally:
        os.close(descriptor)  # closing releases the lock
