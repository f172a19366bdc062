"""``promote``: write an environment's release manifest for a version, and the pull request's text."""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .. import cards, gitutil, layout, tracking
from ..config import Spec
from ..errors import CheckFailed, ConfigError, GitopsMLError
from . import canary, kubernetes
from .environments import check_environment, manifest_at, manifest_path, previous_environment, relative_manifest
from .lock import promotion_lock
from .manifest import (
    FIRST_SOURCE,
    IMAGE_DIGEST,
    SCHEMA_VERSION,
    GateResult,
    Gates,
    ReleaseManifest,
    Replaces,
    dump_manifest,
)
from .pr import default_title, groups_section, promotion_body, replay_section
from .registry import artifact_sha256, bento_tag, image_ref, recorded_gates, registered
from .replay import Replay, refusal, replay
from .verify import merged_code_reasons


@dataclass
class Promotion:
    env: str
    version: int
    manifest_path: Path
    title: str
    body: str
    title_file: Path
    body_file: Path
    branch: str | None
    commit: str | None = None
    replaces: int | None = None
    image_digest: str | None = None
    overlay_path: Path | None = None
    card_unfilled: int = 0
    warnings: list[str] = field(default_factory=list)
    replay: Replay | None = None
    """The last environment's traffic sent through the version before it goes there; None elsewhere."""
    canary: bool = False
    """Written as environments/<env>/canary.yaml beside the stable release (strategy = "canary")."""

    def as_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def promotion_branch(env: str, version: int) -> str:
    return f"promote/{env}/v{version}"


def promotion_refusals(
    spec: Spec,
    model: tracking.Version,
    env: str,
    current: ReleaseManifest | None,
    ref: str | None = None,
    allow_unfilled: bool = False,
) -> list[str]:
    """Every reason ``model`` may not go to ``env`` now (empty when it may), as git ``ref`` (or the
    working tree) says the environments run."""
    reasons = []
    gates = recorded_gates(model)
    if gates is None:
        reasons.append(f"v{model.version} has no recorded gates: run `gitops-ml evaluate {model.version}` first")
    elif not gates["passed"]:
        failed = [g.get("name", "?") for g in gates.get("gates", []) if not g.get("passed")]
        reasons.append(f"v{model.version} failed its gates ({'; '.join(failed) or 'see gitops-ml evaluate'})")
    card = cards.card_path(spec, model.version)
    if not card.is_file():
        reasons.append(
            f"v{model.version} has no model card at {spec.display(str(card))}: "
            f"run `gitops-ml card {model.version}` first"
        )
    elif env == spec.release.environments[-1] and not allow_unfilled and (unfilled := cards.count_unfilled(card)):
        reasons.append(
            f"the model card {spec.display(str(card))} still has {unfilled} '{cards.UNFILLED_MARKER}' section(s) "
            f"and {env} needs a completed card: fill them in first, or pass --allow-unfilled "
            "(the release then cannot pass `gitops-ml verify` until they are)"
        )
    if current is not None and current.version == model.version:
        reasons.append(f"{env} already runs v{model.version}")
    before = previous_environment(spec, env)
    if before is not None:
        runs = manifest_at(spec, before, ref)
        if runs is None or runs.version != model.version:
            now = f"runs v{runs.version}" if runs is not None else "runs nothing"
            reasons.append(
                f"{env} takes only what {before} runs now, and {before} {now}: "
                f"promote v{model.version} to {before} first"
            )
    return reasons


def release_digest(spec: Spec, env: str, given: str | None, ref: str | None) -> tuple[str | None, list[str]]:
    """The image digest the release pins, and why it may not: the first environment takes the one given
    (the image just built and pushed); a later one takes what the environment before it runs, unchanged,
    so one artifact goes from staging to production."""
    before = previous_environment(spec, env)
    if before is None:
        return given, []
    upstream = manifest_at(spec, before, ref)
    digest = upstream.image_digest if upstream is not None else None
    if given is not None and digest is None:
        return None, [f"{env} takes the image {before} runs, and {before}'s release has no image_digest: promote "
                      f"to {before} with --image-digest first"]  # fmt: skip
    if given is not None and given != digest:
        return None, [f"--image-digest {given} is not the image {before} runs ({digest}): {env} takes the "
                      f"image {before} was verified with, unchanged"]  # fmt: skip
    return digest, []


def build_manifest(
    spec: Spec,
    model: tracking.Version,
    env: str,
    current: ReleaseManifest | None,
    sha: str,
    image_digest: str | None = None,
) -> ReleaseManifest:
    gates = recorded_gates(model) or {}
    tag = bento_tag(spec, model)
    return ReleaseManifest(
        schema_version=SCHEMA_VERSION,
        environment=env,
        model_name=spec.model_name,
        version=model.version,
        model_uri=model.model_uri,
        logged_model_uri=f"models:/{model.model_id}",
        artifact_sha256=sha,
        run_id=model.run_id,
        git_commit=model.git_commit,
        data_fingerprint=model.data_fingerprint,
        metrics={k: _rounded(v) for k, v in sorted((gates.get("metrics") or {}).items())},
        gates=Gates(
            passed=bool(gates.get("passed")),
            evaluated_against=gates.get("against"),
            baseline_version=gates.get("baseline_version"),
            results=[
                GateResult(
                    name=g["name"],
                    metric=g["metric"],
                    value=_rounded(g["value"]),
                    threshold=_rounded(g["threshold"]),
                    passed=bool(g["passed"]),
                    kind=g.get("kind", ""),
                )
                for g in gates.get("gates", [])
            ],
        ),
        model_card=cards.card_path(spec, model.version).relative_to(spec.root).as_posix(),
        bento_tag=tag,
        image=image_ref(spec, tag),
        image_digest=image_digest,
        promoted_from=previous_environment(spec, env) or FIRST_SOURCE,
        promoted_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        replaces=None
        if current is None
        else Replaces(version=current.version, artifact_sha256=current.artifact_sha256),
    )


def _rounded(value: object) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 6)


def promote(
    spec: Spec,
    version: int,
    to: str,
    *,
    branch: bool = False,
    title: str | None = None,
    extra_body: str = "",
    output_dir: Path | None = None,
    base: str = "main",
    allow_unfilled: bool = False,
    image_digest: str | None = None,
) -> Promotion:
    """Write ``environments/<to>/release.yaml`` for ``version`` and the pull request's title and body.

    Every check runs before anything is written; a refusal raises CheckFailed and leaves the
    tree, the branches and the registry as they were. Promotions to one environment are serialised
    (a second one at the same time is refused); with ``branch`` the branch starts from ``base``,
    whatever is checked out, and the checks read what ``base`` runs.
    """
    env = check_environment(spec, to)
    if image_digest is not None and not re.fullmatch(IMAGE_DIGEST, image_digest):
        raise ConfigError(f"--image-digest {image_digest!r} is not an image digest: expected sha256:<64 hex "
                          "digits>, as the registry reports it (a tag can move; a digest cannot)")  # fmt: skip
    start = None
    if branch:
        gitutil.require_repository(spec.root)
        start = gitutil.resolve_base(spec.root, base)
    with promotion_lock(spec, env):
        return _promote_locked(
            spec, version, env, start, title, extra_body, output_dir, allow_unfilled, base, image_digest
        )


def known_base(spec: Spec, base: str) -> str:
    """``base`` or ``origin/<base>``, whichever this clone has (a CI checkout often has only the latter)."""
    if not gitutil.is_repository(spec.root):
        return base
    return next((ref for ref in (base, f"origin/{base}") if gitutil.ref_exists(spec.root, ref)), base)


def _promote_locked(
    spec: Spec,
    version: int,
    env: str,
    start: str | None,
    title: str | None,
    extra_body: str,
    output_dir: Path | None,
    allow_unfilled: bool,
    base: str,
    image_digest: str | None = None,
) -> Promotion:
    branch = start is not None
    client = tracking.connect(spec)
    model = registered(spec, client, version)
    current = manifest_at(spec, env, start)
    reasons = promotion_refusals(spec, model, env, current, start, allow_unfilled)
    reasons += merged_code_reasons(spec, model.version, model.git_commit, start or known_base(spec, base))
    digest, digest_reasons = release_digest(spec, env, image_digest, start)
    reasons += digest_reasons
    branch_name = promotion_branch(env, model.version)
    if branch and gitutil.branch_exists(spec.root, branch_name):
        reasons.append(f"branch {branch_name} already exists: delete it or promote from it")
    replayed, replay_reasons = production_replay(spec, model.version, env, current)
    reasons += replay_reasons
    # A canary needs a stable release to run beside; the first release of the environment goes directly.
    as_canary = canary.uses_canary(spec, env) and current is not None
    if as_canary and (running := canary.canary_at(spec, env, start)) is not None:
        reasons.append(f"a canary of v{running.version} already runs in {env} ({canary.relative_canary(spec, env)}): "
                       "complete or abort it first (gitops-ml canary complete|abort)")  # fmt: skip
    if reasons:
        raise CheckFailed(f"cannot promote v{model.version} to {env}: " + "; ".join(reasons))

    manifest = build_manifest(spec, model, env, current, artifact_sha256(spec, model), digest)
    card = cards.card_path(spec, model.version)
    unfilled = cards.count_unfilled(card)
    title = title or default_title(spec, manifest, current)
    groups = groups_section(env, model, current, _running(spec, client, current))
    body = promotion_body(spec, manifest, current, unfilled, extra_body, branch_name, groups,
                          replay_section(replayed) if replayed is not None else "",
                          canary.what_changes(spec, manifest, current) if as_canary else "")  # fmt: skip
    out = Path(output_dir) if output_dir else layout.promotion_dir(spec.root)
    path = canary.canary_path(spec, env) if as_canary else manifest_path(spec, env)
    commit = _write_release(spec, env, card, manifest, title, branch_name if branch else None, start, as_canary)
    out.mkdir(parents=True, exist_ok=True)
    title_file, body_file = out / f"{env}-v{model.version}.title.txt", out / f"{env}-v{model.version}.body.md"
    title_file.write_text(title + "\n", encoding="utf-8")
    body_file.write_text(body, encoding="utf-8")
    return Promotion(
        env=env,
        version=model.version,
        manifest_path=path,
        title=title,
        body=body,
        title_file=title_file,
        body_file=body_file,
        branch=branch_name if branch else None,
        commit=commit,
        replaces=None if current is None else current.version,
        card_unfilled=unfilled,
        warnings=_unverifiable(spec, env, unfilled),
        image_digest=manifest.image_digest,
        # A canary leaves the stable overlay as it was and writes its own.
        overlay_path=_canary_overlay(spec, env, manifest) if as_canary else _written_overlay(spec, env),
        replay=replayed,
        canary=as_canary,
    )


def production_replay(
    spec: Spec, version: int, env: str, current: ReleaseManifest | None
) -> tuple[Replay | None, list[str]]:
    """For the last environment only: its recent traffic replayed through ``version``, and the refusal when
    a configured replay gate fails. A replay that cannot run (an unreadable log) refuses only when a gate
    needs it; otherwise the pull request says why it is missing."""
    if env != spec.release.environments[-1]:
        return None, []
    gated = spec.release.replay_min_agreement is not None or spec.release.replay_no_worse
    try:
        result = replay(spec, version, env, production=current.version if current else None,
                        released=current is not None)
    except GitopsMLError as exc:
        if gated:
            return None, [f"the replay of {env}'s traffic, which [tool.gitops-ml.release] gates, could not run: {exc}"]
        result = Replay(env=env, candidate_version=version, production_version=current.version if current else None,
                        window=spec.release.replay_window, metric=spec.metric, task=spec.task,
                        notes=[f"the replay could not run: {exc}"])
    return result, [] if result.passed else [refusal(result)]


def _running(spec: Spec, client, current: ReleaseManifest | None) -> tracking.Version | None:
    """The version the environment runs, from the registry; None when this registry lacks it."""
    if current is None:
        return None
    try:
        return registered(spec, client, current.version)
    except CheckFailed:
        return None


def _written_overlay(spec: Spec, env: str) -> Path | None:
    overlay = _overlay(spec, env)
    return overlay if overlay is not None and overlay.is_file() else None


def _overlay(spec: Spec, env: str) -> Path | None:
    return kubernetes.overlay_path(spec, env) if kubernetes.enabled(spec) else None


def _canary_overlay(spec: Spec, env: str, manifest: ReleaseManifest) -> Path | None:
    """The canary's Deployment overlay, written for a canary pinned by digest (none to pin without one)."""
    return kubernetes.canary_overlay_path(spec, env) if kubernetes.enabled(spec) and manifest.image_digest else None


def _unverifiable(spec: Spec, env: str, unfilled: int) -> list[str]:
    if env != spec.release.environments[-1] or not unfilled:
        return []
    return [
        f"written with --allow-unfilled: the model card still has {unfilled} '{cards.UNFILLED_MARKER}' "
        f"section(s), so this release of {env} cannot pass `gitops-ml verify` (nor be deployed) until they are "
        "filled in"
    ]


def _write_release(
    spec: Spec,
    env: str,
    card: Path,
    manifest: ReleaseManifest,
    title: str,
    branch: str | None,
    start: str | None,
    as_canary: bool = False,
) -> str | None:
    """Write the manifest (and with ``branch``, commit it on a new branch cut from ``start``); on any
    failure undo it all. A canary goes to canary.yaml, leaving the stable release and its overlay as they are."""
    path = canary.canary_path(spec, env) if as_canary else manifest_path(spec, env)
    overlay = _canary_overlay(spec, env, manifest) if as_canary else _overlay(spec, env)
    previous = gitutil.switch_to_new_branch(spec.root, branch, start or "HEAD") if branch else None
    # As the new branch has them: the release and, for a Kubernetes project, its overlay.
    originals = {p: p.read_text(encoding="utf-8") if p.is_file() else None for p in (path, overlay) if p}
    wanted = {path: dump_manifest(manifest)}
    if overlay is not None and as_canary:
        wanted[overlay] = kubernetes.dump_canary_overlay(spec, manifest)
    elif overlay is not None:
        # Without a digest there is nothing the overlay could pin: an earlier release's overlay goes, since it
        # would name another version (verify's notice says the release has no digest yet).
        wanted[overlay] = (
            kubernetes.dump_overlay(kubernetes.overlay_document(spec, manifest)) if manifest.image_digest else None
        )
    files = release_files(spec, env, card, [p for p in wanted if wanted[p] is not None or originals[p] is not None])
    if as_canary:  # the canary's manifest (among ``written``) in place of release.yaml
        files = [f for f in files if f != relative_manifest(spec, env)]
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_or_restore(spec, wanted, originals, files, title, branch, previous)


def write_or_restore(spec: Spec, wanted: dict[Path, str | None], originals: dict[Path, str | None],
                     files: list[str], title: str, branch: str | None, previous: str | None) -> str | None:
    """Write every file of ``wanted`` (and with ``branch``, commit ``files`` on it). On any failure leave
    nothing half-done: every file as ``originals`` had it, nothing staged, the branch gone."""
    try:
        _write_all(wanted)
        return gitutil.commit_paths(spec.root, files, title) if branch else None
    except BaseException:
        for file, text in originals.items():
            _restore(file, text)
        if previous is not None:
            gitutil.abandon_branch(spec.root, branch, previous, files)
        raise


def _write_all(contents: dict[Path, str | None]) -> None:
    """Each file's new text (None: removed), each written whole: to a temporary file beside it, then
    renamed over it, so a reader (or a crash) sees the old file or the new one, never half of one."""
    for file, text in contents.items():
        if text is None:
            file.unlink(missing_ok=True)
            continue
        file.parent.mkdir(parents=True, exist_ok=True)  # a canary's folder, in a project that just switched
        scratch = file.with_name(f".{file.name}.promote-{os.getpid()}")
        try:
            scratch.write_text(text, encoding="utf-8")
            os.replace(scratch, file)
        finally:
            scratch.unlink(missing_ok=True)


def release_files(spec: Spec, env: str, card: Path, written: list[Path] = ()) -> list[str]:
    """What a promotion commit holds: the manifest (and its overlay, written or removed), the card and its
    plots."""
    files = [relative_manifest(spec, env)]
    files += [p.relative_to(spec.root).as_posix() for p in written if p != manifest_path(spec, env)]
    files.append(card.relative_to(spec.root).as_posix())
    plots = card.with_suffix("")
    if plots.is_dir():
        files.append(plots.relative_to(spec.root).as_posix())
    return files


def _restore(path: Path, original: str | None) -> None:
    """Put a file back exactly as it was before a failed promotion."""
    if original is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(original, encoding="utf-8")
