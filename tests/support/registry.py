"""A real image registry on 127.0.0.1 (the CNCF distribution registry, Debian's ``docker-registry``)
and small real images pushed into it with skopeo.

The images are one-layer OCI images written here (a config with the labels asked for, a layer with
one file): what the registry and skopeo see is what they would see of a bento's image, in a second
instead of minutes of building. ``CONTAINERS_REGISTRIES_CONF`` marks the registry as served without
TLS, as a team's own local registry would be configured.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gitops_ml.processes import free_port, stop, wait_for

from .oci_image import oci_layout

TOOLS = ("docker-registry", "skopeo")
INSTALL = "apt-get install -y skopeo docker-registry (.ci/run does)"


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:<port>
    folder: Path

    def push(self, name: str, tag: str, labels: dict[str, str]) -> str:
        """Push a one-layer image with ``labels`` as ``<host>/<name>:<tag>``; its digest."""
        layout = oci_layout(self.folder / "layouts" / f"{name.replace('/', '_')}-{tag}", tag, labels)
        reference = f"docker://{self.host}/{name}:{tag}"
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:{tag}", reference],
                       check=True, capture_output=True, timeout=120)
        found = subprocess.run(["skopeo", "inspect", "--no-tags", "--tls-verify=false", reference],
                               check=True, capture_output=True, text=True, timeout=120)
        return json.loads(found.stdout)["Digest"]


@contextmanager
def registry(folder: Path) -> Iterator[Registry]:
    """A registry serving from ``folder`` on a free port of 127.0.0.1, stopped on exit."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {folder / 'storage'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    conf = folder / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "127.0.0.1:{port}"\ninsecure = true\n')
    with open(folder / "registry.log", "ab") as log:
        process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log,
                                   start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/v2/", process, timeout=30)
        yield Registry(f"127.0.0.1:{port}", folder)
    finally:
        stop(process)


def release_labels(root: Path, version: int) -> dict[str, str]:
    """The labels the image build writes for ``version``'s bento in the project at ``root``."""
    from gitops_ml import tracking
    from gitops_ml.config import load_spec
    from gitops_ml.release import oci
    from gitops_ml.release.registry import bento_tag

    spec = load_spec(root)
    model = tracking.get_version(spec, tracking.connect(spec), version)
    return {oci.BENTO_LABEL: bento_tag(spec, model), oci.VERSION_LABEL: str(version)}


def send_images_to(root: Path, registry: Registry, name: str) -> None:
    """Set the project's image repository to ``registry`` and commit it (pushed to origin)."""
    with (root / "pyproject.toml").open("a") as handle:
        handle.write(f'\n[tool.gitops-ml.release]\nimage_repository = "{registry.host}/{name}"\n')
    for args in (["commit", "--quiet", "-am", "Images go to the local registry"],
                 ["push", "--quiet", "origin", "main"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
