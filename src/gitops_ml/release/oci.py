"""What the image registry says about a pinned image: is its digest there, and do its labels name
the release's bento and version.

Read with skopeo, the containers project's registry client (preinstalled on GitHub's Ubuntu runners;
``apt-get install skopeo`` elsewhere). It reads the credentials ``docker login`` and
docker/login-action write, and ``registries.conf`` (``CONTAINERS_REGISTRIES_CONF``) for a registry
served without TLS, so the engine carries no registry client or credential handling of its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import CheckFailed, ConfigError
from .manifest import ReleaseManifest

# The labels the image build writes (``image-context``) that a release's image must carry.
BENTO_LABEL = "ai.gitops-ml.bento-tag"
VERSION_LABEL = "ai.gitops-ml.model-version"
INSPECT_SECONDS = 120
# skopeo's words for "the registry answered, and has no such manifest".
NOT_FOUND = ("manifest unknown", "not found", "name unknown")


@dataclass(frozen=True)
class PushedImage:
    reference: str
    digest: str
    labels: dict[str, str]


def repository(image: str) -> str:
    """``registry[:port]/name`` of an image reference, without its tag or digest."""
    name = image.split("@", 1)[0]
    head, slash, last = name.rpartition("/")
    return f"{head}{slash}{last.split(':', 1)[0]}"


def registry_host(image: str) -> str:
    """The registry an image reference names, as ``docker login`` takes it: its first component when that
    is a host (has a dot or a port, or is localhost), else Docker Hub."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def inspect(image: str, digest: str) -> PushedImage:
    """The registry's manifest and labels of ``image`` at ``digest``; CheckFailed naming why not."""
    reference = f"{repository(image)}@{digest}"
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        raise ConfigError(f"skopeo is not installed: it reads {reference} from its registry "
                          "(apt-get install skopeo; GitHub's Ubuntu runners have it)")  # fmt: skip
    try:
        done = subprocess.run([skopeo, *_registries_conf(), "inspect", "--no-tags", "--retry-times", "2",
                               f"docker://{reference}"], capture_output=True, text=True, timeout=INSPECT_SECONDS,
                              check=False)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise CheckFailed(f"the registry of {reference} did not answer within {INSPECT_SECONDS} s") from exc
    if done.returncode != 0:
        said = _skopeo_message(done.stderr)
        if any(word in said.lower() for word in NOT_FOUND):
            raise CheckFailed(f"image {reference} is not in its registry: push it before the release names it ({said})")
        raise CheckFailed(f"cannot read image {reference} from its registry: {said}")
    found = json.loads(done.stdout)
    return PushedImage(reference, found.get("Digest", digest), dict(found.get("Labels") or {}))


def _skopeo_message(stderr: str) -> str:
    """The reason in skopeo's last log line, without its logger's fields and its restatement of the name."""
    last = (stderr.strip().splitlines() or ["(no message)"])[-1]
    found = re.search(r'msg="(.*)"\s*$', last)
    message = found.group(1).replace('\\"', '"') if found else last
    return re.sub(r'^Error parsing image name "[^"]*": ', "", message)


def _registries_conf() -> list[str]:
    # The containers tools' variable for registries.conf; skopeo 1.9 (Debian 12) does not read it
    # itself, so it is passed on as the option every version knows.
    conf = os.environ.get("CONTAINERS_REGISTRIES_CONF")
    return ["--registries-conf", conf] if conf else []


def image_reasons(manifest: ReleaseManifest) -> list[str]:
    """Why the release's pinned image cannot be what runs it: absent from the registry, or built
    for another bento or version. Nothing to say for a release without a digest."""
    if manifest.image_digest is None:
        return []
    try:
        pushed = inspect(manifest.image, manifest.image_digest)
    except CheckFailed as exc:
        return [f"field 'image_digest': {exc}"]
    wanted = {BENTO_LABEL: manifest.bento_tag, VERSION_LABEL: str(manifest.version)}
    return [f"field 'image_digest': {pushed.reference} has label {key}={pushed.labels.get(key)!r}, "
            f"the release says {value!r}"  # fmt: skip
            for key, value in wanted.items() if pushed.labels.get(key) != value]
