"""``deploy``: make the registry alias and the bento follow an environment's merged manifest.

With a canary (``environments/<env>/canary.yaml``), the alias ``<env>-canary`` follows it the same way,
and is removed once the canary is completed or aborted."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import gitutil, layout, tracking
from ..config import Spec
from ..errors import CheckFailed
from . import oci
from .canary import canary_alias, canary_at, relative_canary
from .environments import check_environment, read_manifest, relative_manifest
from .image import packaged_release, require_deployable
from .registry import alias_version, registry_disagreements
from .verify import content_reasons


@dataclass
class Deployment:
    env: str
    version: int | None
    previous_version: int | None
    alias_changed: bool
    bento_tag: str | None
    image: str | None
    image_file: Path
    model_uri: str | None
    canary_version: int | None = None
    canary_previous: int | None = None
    canary_alias_changed: bool = False

    def as_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def deploy(spec: Spec, env: str, base: str = "main") -> Deployment:
    """Make the registry alias and the bento follow ``environments/<env>/release.yaml``.

    Acts only on what is merged: the manifest committed on ``base`` (the default branch), checked
    out, and passing the checks ``verify`` makes of its content; then the registry must agree with
    it. Every reason to refuse is listed and nothing changes. Running it again changes nothing.
    With no manifest (the first release was reverted) the alias is removed.
    """
    env = check_environment(spec, env)
    manifest, candidate = read_manifest(spec, env), canary_at(spec, env)
    refusals = merged_refusals(spec, env, base) + ([] if manifest is None else content_reasons(spec, env, manifest))
    if manifest is not None:
        # The alias follows the image: a release whose pinned image is not in the registry moves nothing.
        refusals += oci.image_reasons(manifest)
    client = tracking.connect(spec)
    refusals += _canary_refusals(spec, env, manifest, candidate, client)
    before, canary_before = alias_version(spec, client, env), alias_version(spec, client, canary_alias(env))
    image_file = layout.deploy_file(spec.root, env)
    if manifest is None:
        if refusals:
            raise CheckFailed(f"not deploying {relative_manifest(spec, env)}: " + "; ".join(refusals))
        if before is not None:
            tracking.call(lambda: client.delete_registered_model_alias(spec.model_name, env), spec)
        result = Deployment(env, None, before, before is not None, None, None, image_file, None)
        return _deployed(_follow_canary(spec, client, result, None, canary_before))
    bento_tag = released_bento(spec, env, manifest, client, refusals)
    if candidate is not None:
        released_bento(spec, env, candidate, client, [])  # checked (or packaged) before any alias moves
    changed = before != manifest.version
    if changed:
        target = str(manifest.version)
        tracking.call(lambda: client.set_registered_model_alias(spec.model_name, env, target), spec)
    result = Deployment(
        env, manifest.version, before, changed, bento_tag, manifest.image, image_file, manifest.model_uri
    )
    return _deployed(_follow_canary(spec, client, result, candidate, canary_before))


def _canary_refusals(spec: Spec, env: str, manifest, candidate, client) -> list[str]:
    """Why the canary beside the release cannot be deployed: the same checks, named by its file."""
    if candidate is None:
        return []
    shown = relative_canary(spec, env)
    if manifest is None:
        return [f"{shown} has no release.yaml beside it: a canary runs beside a stable release"]
    reasons = content_reasons(spec, env, candidate) + oci.image_reasons(candidate)
    reasons += registry_disagreements(spec, client, candidate)
    return [f"{shown}: {reason}" for reason in reasons]


def _follow_canary(spec: Spec, client, result: Deployment, candidate, before: int | None) -> Deployment:
    """The alias ``<env>-canary`` names the canary's version while one runs, and is gone once none does."""
    alias = canary_alias(result.env)
    result.canary_version, result.canary_previous = (candidate.version if candidate else None), before
    result.canary_alias_changed = before != result.canary_version
    if candidate is not None and result.canary_alias_changed:
        target = str(candidate.version)
        tracking.call(lambda: client.set_registered_model_alias(spec.model_name, alias, target), spec)
    elif candidate is None and before is not None:
        tracking.call(lambda: client.delete_registered_model_alias(spec.model_name, alias), spec)
    return result


def released_bento(spec: Spec, env: str, manifest, client, refusals: list[str]) -> str:
    """The bento tag the release runs, once nothing refuses it. A release pinned by digest was built and
    pushed before its pull request (and the registry's labels were just read): nothing is built after the
    merge. A release without a digest has no image: its bento is packaged here, as it is where no registry
    is configured."""
    if manifest.image_digest is None:
        return packaged_release(spec, env, manifest, client, refusals=refusals).bento_tag
    require_deployable(spec, env, manifest, client, refusals)
    return manifest.bento_tag


def merged_refusals(spec: Spec, env: str, base: str) -> list[str]:
    """Why the working tree's release of ``env`` is not (yet) what was merged into ``base``."""
    gitutil.require_repository(spec.root)
    path = relative_manifest(spec, env)
    reasons = []
    if not gitutil.on_branch(spec.root, base):
        where = gitutil.current_branch(spec.root)
        reasons.append(
            f"deploy acts on the default branch {base!r} (--base), and HEAD is on "
            f"{where if where != 'HEAD' else 'a detached commit that is not ' + base}: merge the pull request first"
        )
    for file in (path, relative_canary(spec, env)):
        if gitutil.uncommitted(spec.root, file):
            reasons.append(f"{file} has uncommitted changes: deploy acts only on a committed manifest")
    return reasons


def _deployed(result: Deployment) -> Deployment:
    """Leave the image reference for the workflow's containerize-and-push step."""
    text = (
        json.dumps(
            {
                "environment": result.env,
                "version": result.version,
                "bento_tag": result.bento_tag,
                "image": result.image,
                "model_uri": result.model_uri,
                "canary_version": result.canary_version,
            },
            indent=2,
        )
        + "\n"
    )
    result.image_file.parent.mkdir(parents=True, exist_ok=True)
    if not result.image_file.is_file() or result.image_file.read_text(encoding="utf-8") != text:
        result.image_file.write_text(text, encoding="utf-8")
    return result
