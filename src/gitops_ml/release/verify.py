"""``verify``: the pull request's required check, re-checking every manifest the branch changes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from mlflow.tracking import MlflowClient

from .. import cards, gitutil, layout, tracking
from ..config import Spec
from ..errors import ConfigError
from . import kubernetes, oci
from .canary import CANARY, canary_at
from .environments import environment_mismatch, previous_environment, read_manifest, relative_manifest
from .manifest import ReleaseManifest, parse_manifest
from .registry import registry_disagreements

Change = Literal["promotion", "rollback", "removal", "invalid", "overlay"]


@dataclass
class ManifestCheck:
    env: str
    path: str
    change: Change
    version: int | None
    base_version: int | None
    reasons: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons


@dataclass
class Verification:
    base: str
    checks: list[ManifestCheck]

    @property
    def notices(self) -> list[str]:
        return [notice for check in self.checks for notice in check.notices]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def reasons(self) -> list[str]:
        return [f"{check.path}: {reason}" for check in self.checks for reason in check.reasons]

    def as_dict(self) -> dict:
        return {
            "base": self.base,
            "passed": self.passed,
            "reasons": self.reasons,
            "notices": self.notices,
            "checks": [{**asdict(c), "passed": c.passed} for c in self.checks],
        }


def verify(spec: Spec, base: str = "origin/main") -> Verification:
    """Re-check every manifest this branch changes against ``base``, each reason listed.

    From the manifest alone: schema, environment, gates, card, order and that it replaces what
    ``base`` runs (so a second promotion to one environment fails after the first merges);
    then that the registry agrees (version, run, artifact hash).
    """
    gitutil.require_repository(spec.root)
    if not gitutil.ref_exists(spec.root, base):
        raise ConfigError(
            f"unknown git ref {base!r}: fetch it first (in GitHub Actions: actions/checkout with fetch-depth: 0)"
        )
    folder = spec.environments_dir.relative_to(spec.root).as_posix()
    changed = gitutil.changed_paths(spec.root, base, folder)
    paths = [p for p in changed if p.endswith("/" + layout.MANIFEST)]
    # A canary (strategy = "canary") is a release of the candidate beside the stable one: checked as one.
    paths += [p for p in changed if p.endswith("/" + CANARY)]
    # An overlay edited without its release (by hand): checked against the release beside it.
    overlays = [p for p in changed if p.endswith("/" + kubernetes.OVERLAY) and kubernetes.enabled(spec)
                and Path(p).parent.name != kubernetes.CANARY_FOLDER
                and str(Path(p).parent / layout.MANIFEST) not in paths]  # fmt: skip
    canary_overlays = [p for p in changed if p.endswith(f"/{kubernetes.CANARY_FOLDER}/{kubernetes.OVERLAY}")
                       and kubernetes.enabled(spec) and str(Path(p).parent.parent / CANARY) not in paths]  # fmt: skip
    rank = {env: index for index, env in enumerate(spec.release.environments)}
    paths.sort(key=lambda p: (rank.get(Path(p).parent.name, len(rank)), p))  # declared order, unknown last
    client: MlflowClient | None = None
    registry_down: str | None = None
    checks = []
    for path in paths:
        check, manifest = check_manifest_file(spec, base, path)
        if manifest is not None:
            check.reasons += merged_code_reasons(spec, manifest.version, manifest.git_commit, base)
        if manifest is not None:  # parsed: the registry must agree too, whatever else is wrong
            if registry_down is None:
                try:
                    client = client or tracking.connect(spec)
                    check.reasons += registry_disagreements(spec, client, manifest)
                except tracking.RegistryError as exc:
                    registry_down = str(exc)
            if registry_down is not None:
                check.reasons.append(f"registry cannot confirm the release: {registry_down}")
            check.reasons += oci.image_reasons(manifest)  # the pinned image: pushed, and built for this release
        if kubernetes.enabled(spec) and check.change != "invalid":
            _kubernetes_checks(spec, check, path, manifest)
        checks.append(check)
    checks += [_overlay_check(spec, path) for path in sorted(overlays)]
    checks += [_overlay_check(spec, path, canary=True) for path in sorted(canary_overlays)]
    return Verification(base=base, checks=checks)


def _kubernetes_checks(spec: Spec, check: ManifestCheck, path: str, manifest: ReleaseManifest | None) -> None:
    """The overlay beside a changed release (the canary's Deployment beside a changed canary.yaml)."""
    if path.endswith("/" + CANARY):
        check.reasons += kubernetes.canary_agreement_reasons(spec, check.env, manifest)
        notice = kubernetes.canary_share_notice(spec, check.env)
        if manifest is not None and manifest.image_digest and notice:
            check.notices.append(notice)
        return
    check.reasons += _overlay_reasons(spec, check.env, manifest)
    if manifest is not None and (notice := kubernetes.digest_notice(spec, check.env, manifest)):
        check.notices.append(notice)


def _overlay_reasons(spec: Spec, env: str, manifest: ReleaseManifest | None) -> list[str]:
    """The overlay's disagreements, under the release's path (each reason names the overlay's file)."""
    return kubernetes.agreement_reasons(spec, env, manifest)


def _overlay_check(spec: Spec, path: str, canary: bool = False) -> ManifestCheck:
    """A changed ``kustomization.yaml`` whose ``release.yaml`` did not change (with ``canary``: the canary
    folder's, whose ``canary.yaml`` did not change), checked against the manifest beside it."""
    env = Path(path).parent.parent.name if canary else Path(path).parent.name
    check = ManifestCheck(env=env, path=path, change="overlay", version=None, base_version=None)
    if env not in spec.release.environments:
        check.reasons.append(f"unknown environment {env!r}: {spec.pyproject.name} declares "
                             f"{', '.join(spec.release.environments)}")  # fmt: skip
        return check
    try:
        manifest = canary_at(spec, env) if canary else read_manifest(spec, env)
    except ConfigError as exc:
        check.reasons.append(str(exc))
        return check
    check.version = check.base_version = None if manifest is None else manifest.version
    agreement = kubernetes.canary_agreement_reasons if canary else kubernetes.agreement_reasons
    check.reasons += [r.removeprefix(f"{path}: ") for r in agreement(spec, env, manifest)]
    return check


def check_manifest_file(spec: Spec, base: str, path: str) -> tuple[ManifestCheck, ReleaseManifest | None]:
    """Checks that need only git and the files; the manifest when it parsed."""
    env = Path(path).parent.name
    base_manifest, base_problem = _parse_or_reason(gitutil.show(spec.root, base, path), f"{base}:{path}")
    is_canary = path.endswith("/" + CANARY)
    running_canary = None
    if is_canary:  # a canary follows the stable release base runs, as a promotion follows what it replaces
        running_canary = base_manifest
        stable_path = str(Path(path).parent / layout.MANIFEST)
        base_manifest, base_problem = _parse_or_reason(gitutil.show(spec.root, base, stable_path),
                                                       f"{base}:{stable_path}")  # fmt: skip
    check = ManifestCheck(
        env=env,
        path=path,
        change="promotion",
        version=None,
        base_version=base_manifest.version if base_manifest else None,
    )
    if base_problem:
        check.reasons.append(f"on {base}: {base_problem}")
    if env not in spec.release.environments:
        check.change = "invalid"
        check.reasons.append(
            f"unknown environment {env!r}: {spec.pyproject.name} declares {', '.join(spec.release.environments)}"
        )
        return check, None
    file = spec.root / path
    if is_canary and not file.is_file():
        check.change = "removal"  # an abort, or the completion that moved it to release.yaml
        return check, None
    if not file.is_file():
        check.change = "removal"
        if base_manifest is not None and base_manifest.replaces is not None:
            check.reasons.append(
                f"deletes the release of {env}, which replaced v{base_manifest.replaces.version}: "
                "to roll back, revert the commit that promoted it"
            )
        return check, None
    manifest, problem = _parse_or_reason(file.read_text(encoding="utf-8"), path)
    if manifest is None:
        check.change = "invalid"
        check.reasons.append(problem.removeprefix(f"{path}: "))  # every reason is listed under its path
        return check, None
    check.version = manifest.version
    check.reasons += content_reasons(spec, env, manifest)
    rollback = base_manifest is not None and base_manifest.replaced_version == manifest.version
    check.change = "rollback" if rollback else "promotion"
    check.reasons += _sequence_reasons(spec, base, env, manifest, base_manifest, rollback)
    if is_canary and running_canary is not None and running_canary.version != manifest.version:
        check.reasons.append(f"a canary of v{running_canary.version} already runs in {env} on {base}: complete or "
                             "abort it first")  # fmt: skip
    return check, manifest


def _parse_or_reason(text: str | None, source: str) -> tuple[ReleaseManifest | None, str | None]:
    if text is None:
        return None, None
    try:
        return parse_manifest(text, source), None
    except ConfigError as exc:
        return None, str(exc)


def manifest_problems(spec: Spec, env: str) -> list[str]:
    """What is wrong with the committed release of ``env`` from the files alone (no git, no registry):
    schema, environment, model, gates, and the card it names (for the last environment, completed)."""
    try:
        manifest = read_manifest(spec, env)
    except ConfigError as exc:
        return [str(exc)]
    return [] if manifest is None else content_reasons(spec, env, manifest)


def merged_code_reasons(spec: Spec, version: int, commit: str | None, base: str) -> list[str]:
    """A release must be built from code merged into the default branch: any pull request can train
    and register a version from its own, unreviewed code, and that version must not be released."""
    if not commit or not gitutil.is_repository(spec.root) or not gitutil.ref_exists(spec.root, base):
        return []
    merged = gitutil.is_ancestor(spec.root, commit, base)
    if merged is None:
        return [f"v{version} was trained from commit {commit[:12]}, which this clone does not have: fetch the "
                f"whole history (actions/checkout with fetch-depth: 0), or train again from {base}"]  # fmt: skip
    if not merged:
        return [f"v{version} was trained from commit {commit[:12]}, which is not on {base}: only a version built "
                f"from merged code may be released; merge the change, then train again from {base}"]  # fmt: skip
    return []


def content_reasons(spec: Spec, env: str, manifest: ReleaseManifest) -> list[str]:
    """What the manifest says about itself: environment, model, gates, card."""
    reasons = [mismatch] if (mismatch := environment_mismatch(manifest, env)) else []
    if manifest.model_name != spec.model_name:
        reasons.append(f"field 'model_name': {manifest.model_name!r} is not this project's model {spec.model_name!r}")
    if manifest.model_uri != f"models:/{spec.model_name}/{manifest.version}":
        reasons.append(f"field 'model_uri': {manifest.model_uri!r} does not name version {manifest.version}")
    if not manifest.gates.passed or not all(g.passed for g in manifest.gates.results):
        reasons.append(f"field 'gates': v{manifest.version} did not pass its gates")
    return reasons + card_reasons(spec, env, manifest)


def card_reasons(spec: Spec, env: str, manifest: ReleaseManifest) -> list[str]:
    card = spec.root / manifest.model_card
    if not card.is_file():
        return [f"field 'model_card': {manifest.model_card} does not exist"]
    front = cards.read_front_matter(card)
    reasons = []
    if front.get("version") != manifest.version or front.get("model") != manifest.model_name:
        reasons.append(
            f"field 'model_card': {manifest.model_card} is the card of "
            f"{front.get('model')} v{front.get('version')}, not v{manifest.version}"
        )
    unfilled = cards.count_unfilled(card)
    if env == spec.release.environments[-1] and unfilled:
        reasons.append(
            f"{manifest.model_card} still has {unfilled} '{cards.UNFILLED_MARKER}' marker(s): "
            f"{env} needs a completed model card"
        )
    return reasons


def _sequence_reasons(
    spec: Spec, base: str, env: str, manifest: ReleaseManifest, base_manifest: ReleaseManifest | None, rollback: bool
) -> list[str]:
    """That the manifest follows what ``base`` runs: no silent overwrite, no skipped stage."""
    version = manifest.version
    replaced = manifest.replaced_version
    runs = base_manifest.version if base_manifest else None
    if runs == version:
        return [f"{env} already runs v{version} on {base}"]
    if rollback:
        return []  # back to the release the current one replaced: it passed these checks when first released
    reasons = []
    if replaced != runs:
        said = f"v{replaced}" if replaced is not None else "nothing"
        now = f"v{runs}" if runs is not None else "nothing"
        reasons.append(
            f"field 'replaces': says {env} runs {said}, but on {base} it runs {now}: "
            "another release was merged meanwhile; update the branch and promote again"
        )
    if (
        base_manifest is not None
        and replaced == runs
        and manifest.replaces.artifact_sha256 != base_manifest.artifact_sha256
    ):
        reasons.append(f"field 'replaces.artifact_sha256': does not match the release of {env} on {base}")
    before = previous_environment(spec, env)
    if before is not None:
        upstream_path = relative_manifest(spec, before)
        upstream, _ = _parse_or_reason(gitutil.show(spec.root, base, upstream_path), f"{base}:{upstream_path}")
        upstream_version = upstream.version if upstream else None
        if upstream_version != version:
            now = f"v{upstream_version}" if upstream_version is not None else "nothing"
            reasons.append(f"{env} takes only what {before} runs now, and on {base} {before} runs {now}")
        if manifest.promoted_from != before:
            reasons.append(f"field 'promoted_from': expected {before!r}, got {manifest.promoted_from!r}")
    return reasons
