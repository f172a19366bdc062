"""``image-context``: the container build context of a bento, and whether a promotion builds one.

One image per version: the promotion to the first environment builds it, before its pull request is
opened (a builder such as buildx builds the context written here and pushes it, and the promotion
records the registry's digest); every later environment takes that digest unchanged, so nothing is
built after a merge and production runs the artifact staging was verified with.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import layout, tracking
from ..config import Spec
from ..errors import CheckFailed
from . import oci
from .environments import check_environment, previous_environment, read_manifest, relative_manifest
from .manifest import ReleaseManifest
from .registry import image_ref, registry_disagreements


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
        """What the image says about itself: the bento and model version it serves. No environment: the
        same image goes from staging to production."""
        return {
            "org.opencontainers.image.version": f"v{self.version}",
            oci.BENTO_LABEL: self.bento_tag,
            oci.VERSION_LABEL: str(self.version),
        }

    @property
    def registry(self) -> str:
        return oci.registry_host(self.image)

    def as_dict(self) -> dict:
        return {"environment": self.env, "version": self.version, "bento_tag": self.bento_tag, "image": self.image,
                "registry": self.registry, "context": str(self.folder), "dockerfile": str(self.dockerfile),
                "labels": self.labels}  # fmt: skip


@dataclass(frozen=True)
class ImagePlan:
    """What promoting ``version`` to ``env`` needs of the image: a build (the first environment), or the
    digest the environment before it runs (``takes_from``), unchanged."""

    env: str
    version: int
    image: str
    context: ImageContext | None = None
    takes_from: str | None = None
    digest: str | None = None

    @property
    def build(self) -> bool:
        return self.context is not None

    @property
    def registry(self) -> str:
        """Where the image is: the job logs in there to push it, or to let verify read it."""
        return oci.registry_host(self.image)

    def as_dict(self) -> dict:
        return {"environment": self.env, "version": self.version, "build": self.build, "image": self.image,
                "registry": self.registry, "takes_from": self.takes_from, "digest": self.digest,
                **({"context": self.context.as_dict()} if self.context else {})}  # fmt: skip


def packaged_release(
    spec: Spec, env: str, manifest: ReleaseManifest, client, export_dir: Path | None = None, refusals: list[str] = ()
):
    """The bento ``manifest`` pins, built (and exported to ``export_dir``) once the registry agrees with
    the manifest; a bento that differs from the pinned one is refused. ``refusals`` found by the caller
    are listed with the registry's, so one message names every reason."""
    require_deployable(spec, env, manifest, client, refusals)
    from ..serve.package import package  # serving is heavy to import; only deploy needs it

    packaged = package(spec, manifest.version, export_dir)
    if packaged.bento_tag != manifest.bento_tag:
        raise CheckFailed(
            f"not deploying {relative_manifest(spec, env)}: packaging v{manifest.version} "
            f"gave bento {packaged.bento_tag}, the manifest pins {manifest.bento_tag}"
        )
    return packaged


def require_deployable(spec: Spec, env: str, manifest: ReleaseManifest, client, refusals: list[str] = ()) -> None:
    """CheckFailed listing every reason not to deploy ``manifest``: ``refusals`` found by the caller and
    the registry's disagreements with it."""
    reasons = [*refusals, *registry_disagreements(spec, client, manifest)]
    if reasons:
        raise CheckFailed(f"not deploying {relative_manifest(spec, env)}: " + "; ".join(reasons))


def image_context(spec: Spec, env: str, folder: Path | None = None) -> ImageContext:
    """Write the build context of ``environments/<env>/release.yaml``'s bento (to rebuild a released
    image by hand); changes no alias."""
    env = check_environment(spec, env)
    manifest = read_manifest(spec, env)
    if manifest is None:
        raise CheckFailed(f"{relative_manifest(spec, env)} does not exist: {env} runs no release, no image to build")
    with tempfile.TemporaryDirectory() as scratch:
        packaged = packaged_release(spec, env, manifest, tracking.connect(spec), Path(scratch))
        return _unpacked(spec, env, manifest.version, packaged, manifest.image, folder)


def promotion_image(spec: Spec, version: int, env: str, folder: Path | None = None) -> ImagePlan:
    """What promoting ``version`` to ``env`` needs of the image. For the first environment: the build
    context of the version's bento, written to ``folder``. For a later one: nothing to build, the digest
    the environment before it runs; refused (CheckFailed) when that environment does not run ``version``
    or has no digest, as ``promote`` would refuse, before anything is built."""
    env = check_environment(spec, env)
    before = previous_environment(spec, env)
    if before is None:
        from ..serve.package import package  # serving is heavy to import

        with tempfile.TemporaryDirectory() as scratch:
            packaged = package(spec, version, Path(scratch))
            image = image_ref(spec, packaged.bento_tag)
            return ImagePlan(env, version, image, context=_unpacked(spec, env, version, packaged, image, folder))
    upstream = read_manifest(spec, before)
    if upstream is None or upstream.version != version:
        runs = f"runs v{upstream.version}" if upstream else "runs nothing"
        raise CheckFailed(f"no image for v{version} in {env}: {env} takes the image {before} runs, and {before} "
                          f"{runs} ({relative_manifest(spec, before)}): promote v{version} to {before} first")
    if upstream.image_digest is None:
        raise CheckFailed(f"no image for v{version} in {env}: {relative_manifest(spec, before)} has no field "
                          f"'image_digest', so there is no image to take unchanged: promote v{version} to {before} "
                          "again with the digest of its pushed image")  # fmt: skip
    return ImagePlan(env, version, upstream.image, takes_from=before, digest=upstream.image_digest)


def _unpacked(spec: Spec, env: str, version: int, packaged, image: str, folder: Path | None) -> ImageContext:
    from ..serve.package import DOCKERFILE, unpack_build_context

    target = Path(folder or layout.image_context_dir(spec.root, env)).resolve()
    unpack_build_context(packaged.archive, target)
    return ImageContext(env, version, packaged.bento_tag, image, target, target / DOCKERFILE)
