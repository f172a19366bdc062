"""``image-context``: the container build context of an environment's released bento.

The Deploy workflow builds and pushes the image from it (buildx, no Docker daemon of BentoML's
choosing) before ``deploy`` moves the alias, so the alias never names a version without an image.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import layout, tracking
from ..config import Spec
from ..errors import CheckFailed
from .environments import check_environment, read_manifest, relative_manifest
from .manifest import ReleaseManifest
from .registry import registry_disagreements


@dataclass(frozen=True)
class ImageContext:
    """Where the build context is, and how to name and label the image built from it."""

    env: str
    version: int
    bento_tag: str
    image: str
    folder: Path
    dockerfile: Path

    @property
    def labels(self) -> dict[str, str]:
        """What the image says about itself: the bento and model version it serves."""
        return {
            "org.opencontainers.image.version": f"v{self.version}",
            "ai.gitops-ml.bento-tag": self.bento_tag,
            "ai.gitops-ml.model-version": str(self.version),
            "ai.gitops-ml.environment": self.env,
        }

    def as_dict(self) -> dict:
        return {"environment": self.env, "version": self.version, "bento_tag": self.bento_tag, "image": self.image,
                "context": str(self.folder), "dockerfile": str(self.dockerfile), "labels": self.labels}  # fmt: skip


def packaged_release(
    spec: Spec, env: str, manifest: ReleaseManifest, client, export_dir: Path | None = None, refusals: list[str] = ()
):
    """The bento ``manifest`` pins, built (and exported to ``export_dir``) once the registry agrees with
    the manifest; a bento that differs from the pinned one is refused. ``refusals`` found by the caller
    are listed with the registry's, so one message names every reason."""
    reasons = [*refusals, *registry_disagreements(spec, client, manifest)]
    if reasons:
        raise CheckFailed(f"not deploying {relative_manifest(spec, env)}: " + "; ".join(reasons))
    from ..serve.package import package  # serving is heavy to import; only deploy needs it

    packaged = package(spec, manifest.version, export_dir)
    if packaged.bento_tag != manifest.bento_tag:
        raise CheckFailed(
            f"not deploying {relative_manifest(spec, env)}: packaging v{manifest.version} "
            f"gave bento {packaged.bento_tag}, the manifest pins {manifest.bento_tag}"
        )
    return packaged


def image_context(spec: Spec, env: str, folder: Path | None = None) -> ImageContext:
    """Write the build context of ``environments/<env>/release.yaml``'s bento; changes no alias."""
    from ..serve.package import DOCKERFILE, unpack_build_context

    env = check_environment(spec, env)
    manifest = read_manifest(spec, env)
    if manifest is None:
        raise CheckFailed(f"{relative_manifest(spec, env)} does not exist: {env} runs no release, no image to build")
    target = Path(folder or layout.image_context_dir(spec.root, env)).resolve()
    with tempfile.TemporaryDirectory() as scratch:
        packaged = packaged_release(spec, env, manifest, tracking.connect(spec), Path(scratch))
        unpack_build_context(packaged.archive, target)
    return ImageContext(env, manifest.version, packaged.bento_tag, manifest.image, target, target / DOCKERFILE)
