"""Real container images without a Docker daemon: buildah builds, podman runs, skopeo pushes.

The recipe is /work/shared/CONTAINERS.md's. Every call runs with a private ``containers.conf`` (runc and
cgroupfs, since crun refuses this host's hybrid cgroups; ulimits within the hard limits root has here)
and a private ``storage.conf`` (an overlay store in a temp dir), so a run never touches, nor is broken
by, ``/var/lib/containers``. No image registry is reachable, so the base image the bento's Dockerfile
starts ``FROM`` is made here: a Debian rootfs by mmdebstrap from this machine's own apt sources,
imported, given the CA/pip layer, and tagged as ``docker.io/library/python:<version>-slim``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

TOOLS = ("buildah", "podman", "skopeo", "runc", "fuse-overlayfs", "mmdebstrap", "docker-registry")
INSTALL = "apt-get install -y buildah podman skopeo runc fuse-overlayfs mmdebstrap docker-registry (.ci/run does)"
PYTHON = "3.11"  # Debian bookworm's python3, and the bento's base as this machine's interpreter names it
BASE = f"docker.io/library/python:{PYTHON}-slim"
RAW = f"localhost/debian-python:{PYTHON}-raw"
HOST_CAS = Path("/usr/local/share/ca-certificates")
# The machine's own apt sources: no other mirror is reachable here.
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))

CONTAINERS_CONF = """\
[containers]
# root here lacks CAP_SYS_RESOURCE: ulimits above the hard limits fail with "setrlimit ... not permitted"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
# the host mixes cgroup v1 and v2; crun refuses that ("cgroups in hybrid mode not supported"), runc works
runtime = "runc"
cgroup_manager = "cgroupfs"
"""

BASE_LAYER = f"""\
FROM {RAW}
# This machine's CAs, so that pip inside the bento's build verifies the package index here. Test images
# only: an image meant for users would bind them in at build time instead of carrying them.
COPY cas/ /usr/local/share/ca-certificates/
RUN update-ca-certificates \\
 && rm -f /usr/lib/python{PYTHON}/EXTERNALLY-MANAGED \\
 && ln -sf /usr/bin/python3 /usr/local/bin/python
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \\
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \\
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
"""


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


class ToolFailed(AssertionError):
    """A container tool exited non-zero: the message holds its command and its own words."""


@dataclass
class Containers:
    """A private image store and the environment every buildah/podman/skopeo/bentoml call gets."""

    folder: Path
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step, for the report

    def run(self, *args: str, timeout: float = 600, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:  # fmt: skip
        done = subprocess.run(list(args), env=self.env | (env or {}), cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip
        if done.returncode != 0:
            raise ToolFailed(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}")
        return done

    def timed(self, step: str, *args: str, timeout: float = 600, cwd: Path | None = None,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:  # fmt: skip
        started = time.monotonic()
        try:
            return self.run(*args, timeout=timeout, cwd=cwd, env=env)
        finally:
            self.timings[step] = round(time.monotonic() - started, 1)

    def image_ids(self) -> set[str]:
        """Every image in the store, by id: a build adds one."""
        listed = self.run("buildah", "images", "--all", "--json").stdout
        return {image["id"] for image in json.loads(listed or "[]")}

    def image_id(self, name: str) -> str:
        return self.run("buildah", "inspect", "--type", "image", "--format", "{{.FromImageID}}", name).stdout.strip()

    def labels(self, name: str) -> dict[str, str]:
        found = json.loads(self.run("podman", "image", "inspect", name).stdout)[0]
        return found.get("Labels") or {}


def environment(folder: Path) -> dict[str, str]:
    """``os.environ`` with ``CONTAINERS_CONF`` and ``CONTAINERS_STORAGE_CONF`` naming files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "containers.conf").write_text(CONTAINERS_CONF)
    (folder / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{folder / "graph"}"\nrunroot = "{folder / "run"}"\n'
    )
    return {**os.environ, "CONTAINERS_CONF": str(folder / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(folder / "storage.conf")}  # fmt: skip


@contextmanager
def container_store(folder: Path) -> Iterator[Containers]:
    """A private store in ``folder``, emptied and removed on exit (a bento's image is about 2 GB)."""
    containers = Containers(folder, environment(folder))
    try:
        yield containers
    finally:
        remove_store(containers)


def remove_store(containers: Containers) -> None:
    """Containers, build containers and images gone, the overlay unmounted, then the folder deleted."""
    for args in (("podman", "rm", "--all", "--force"), ("buildah", "rm", "--all"),
                 ("podman", "system", "reset", "--force")):  # fmt: skip
        subprocess.run(list(args), env=containers.env, capture_output=True, timeout=300, check=False)
    shutil.rmtree(containers.folder, ignore_errors=True)


def apt_sources() -> Path:
    for path in APT_SOURCES:
        if path.is_file() and path.read_text().strip():
            return path
    raise FileNotFoundError(f"none of {', '.join(map(str, APT_SOURCES))} holds apt sources for mmdebstrap")


def make_base_image(containers: Containers) -> str:
    """``python:<version>-slim`` in the store, made from Debian here; its image id."""
    work = containers.folder / "base"
    work.mkdir(parents=True, exist_ok=True)
    rootfs = work / "rootfs.tar"
    containers.timed("mmdebstrap", "mmdebstrap", "--quiet", "--mode=root", "--variant=minbase",
                     "--include=python3,python3-venv,python3-pip,ca-certificates", "bookworm", str(rootfs),
                     str(apt_sources()), timeout=900)  # fmt: skip
    containers.timed("import", "podman", "import", str(rootfs), RAW)
    rootfs.unlink()  # 250 MB, in the store now
    context = work / "layer"
    (context / "cas").mkdir(parents=True, exist_ok=True)
    for certificate in HOST_CAS.glob("*.crt"):
        shutil.copy(certificate, context / "cas" / certificate.name)
    (context / "Containerfile").write_text(BASE_LAYER)
    tagged = f"localhost/debian-python:{PYTHON}"
    containers.timed("base layer", "buildah", "build", "--pull=never", "--network", "host", "-t", tagged,
                     "-f", str(context / "Containerfile"), str(context))  # fmt: skip
    # The bento's Dockerfile starts FROM python:<version>-slim: found locally, nothing is pulled.
    containers.run("buildah", "tag", tagged, BASE)
    return containers.image_id(BASE)
