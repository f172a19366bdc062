"""Canary releases: the candidate beside the stable version in the last environment, compared on live traffic.

With ``[tool.gitops-ml.release] strategy = "canary"``, promoting to the last environment (while it runs a
version already) writes ``environments/<env>/canary.yaml`` (a release manifest of the candidate, same
schema) instead of replacing ``release.yaml``. The rollout serves it to ``canary_weight`` of the traffic:
splitting traffic is the rollout's business (Argo Rollouts' canary steps, or two Deployments behind one
Service), not the engine's. Both versions write one inference log, each row tagged with its
``model_version``.

``status`` splits the log by version and compares them: rows each, the answer distributions and the
shift between them (replay's own comparison), and, on rows whose labels came back, each version's
quality as served. It recommends ``wait`` (too few rows), ``abort`` (shift or quality past the
thresholds) or ``complete``. ``finish`` writes the second pull request's branch: ``complete`` makes
canary.yaml the release, ``abort`` removes it (the revert of the canary promotion).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import gitutil, layout
from ..config import Spec
from ..errors import CheckFailed, ConfigError
from . import kubernetes
from .environments import (
    CANARY_MANIFEST,
    check_environment,
    manifest_at,
    manifest_file_at,
    manifest_path,
    relative_manifest,
)
from .manifest import ReleaseManifest, dump_manifest
from .replay import REQUEST_ID, Distribution, answers, distribution, returned_labels, shift

CANARY = CANARY_MANIFEST
ACTIONS = ("complete", "abort")
NOT_MEASURED = (
    "latency and failed requests are not in the inference log (it records answered rows only): compare them "
    "on the service's /metrics per version (BentoML's request duration and status-code counters)"
)


# -- where the canary lives ---------------------------------------------------------------------------
def uses_canary(spec: Spec, env: str) -> bool:
    """Whether a promotion to ``env`` goes out as a canary: the strategy says so and it is the last one."""
    return spec.release.strategy == "canary" and env == spec.release.environments[-1]


def canary_alias(env: str) -> str:
    """The registry alias that names the canary's version while it runs (``deploy`` moves it)."""
    return f"{env}-canary"


def canary_path(spec: Spec, env: str) -> Path:
    return spec.environments_dir / check_environment(spec, env) / CANARY


def relative_canary(spec: Spec, env: str) -> str:
    return canary_path(spec, env).relative_to(spec.root).as_posix()


def canary_at(spec: Spec, env: str, ref: str | None = None) -> ReleaseManifest | None:
    """The canary ``env`` runs, as git ``ref`` (or the working tree) holds it; None when there is none."""
    return manifest_file_at(spec, env, canary_path(spec, env), ref)


def what_changes(spec: Spec, manifest: ReleaseManifest, stable: ReleaseManifest) -> str:
    """The canary promotion's "What changes" paragraph: beside what, on how much of the traffic."""
    env, version = manifest.environment, manifest.version
    text = (f"**What changes:** v{version} starts as a **canary** beside v{stable.version} in `{env}` "
            f"(`{relative_canary(spec, env)}`; `{relative_manifest(spec, env)}` stays on v{stable.version}). "
            f"Merging this pull request deploys it: the MLflow alias `{canary_alias(env)}` moves to v{version}, "
            f"`{env}` stays on v{stable.version}")  # fmt: skip
    if kubernetes.enabled(spec) and manifest.image_digest:
        (low, high), pods = kubernetes.canary_share(spec, env), kubernetes.canary_replicas(spec, env)
        text += (f", and `{kubernetes.relative_canary_overlay(spec, env)}` runs {pods} "
                 f"canary pod(s) behind the Service: {low:.0%} to {high:.0%} of the requests as the stable pods "
                 f"scale (canary_weight = {spec.release.canary_weight:g})")  # fmt: skip
    return (text + ". `make canary-status` compares the two on live traffic; `make canary-complete` or "
            "`make canary-abort` writes the second pull request. Rolling back is reverting the merge commit.\n")


# -- the comparison -----------------------------------------------------------------------------------
@dataclass
class Track:
    """One version's share of the live traffic."""

    version: int
    rows: int = 0
    answers: Distribution | None = None
    labelled_rows: int = 0
    quality: float | None = None  # accuracy (classification) or MAE (regression) of the answers served


@dataclass
class CanaryStatus:
    env: str
    window: str
    weight: float
    stable: Track
    canary: Track
    source: str = ""
    canary_share: float | None = None  # of the rows logged in the window, the canary's
    shift: float | None = None
    """Classification: total variation distance of the answer shares; regression: the change of the mean
    answer relative to the stable version's mean."""
    quality_metric: str = ""
    quality_drop: float | None = None  # how much worse the canary is (positive: worse)
    quality_noise: float = 0.0
    """Classification: two standard errors of the accuracy difference; a drop is counted beyond it only, since
    a canary's few labelled rows alone move accuracy by several points (100 rows at 80 %: +-8 points)."""
    recommendation: str = "wait"
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def status(spec: Spec, env: str | None = None, window: str | None = None) -> CanaryStatus:
    """Compare ``env``'s canary with its stable version on the traffic logged in the last ``window``."""
    from ..monitor.sources import parse_duration

    env = check_environment(spec, env or spec.release.environments[-1])
    window = window or spec.release.canary_window
    parse_duration(window, "--window" if window != spec.release.canary_window else "canary_window")
    stable, candidate = running(spec, env)
    result = CanaryStatus(env=env, window=window, weight=spec.release.canary_weight,
                          stable=Track(stable.version), canary=Track(candidate.version), notes=[NOT_MEASURED],
                          quality_metric="mae" if spec.task == "regression" else "accuracy")  # fmt: skip
    served = {track.version: _served(spec, result, track) for track in (result.stable, result.canary)}
    total = result.stable.rows + result.canary.rows
    result.canary_share = result.canary.rows / total if total else None
    if result.stable.answers and result.canary.answers:
        result.shift = _shift(result.stable.answers, result.canary.answers, spec.task)
    _quality(spec, result, served)
    recommend(spec, result)
    return result


def running(spec: Spec, env: str) -> tuple[ReleaseManifest, ReleaseManifest]:
    """The stable release and the canary of ``env`` (working tree); CheckFailed when no canary runs."""
    candidate = canary_at(spec, env)
    if candidate is None:
        raise CheckFailed(f"no canary runs in {env}: {relative_canary(spec, env)} does not exist (promote to {env} "
                          "with [tool.gitops-ml.release] strategy = \"canary\" first)")  # fmt: skip
    stable = manifest_at(spec, env, None)
    if stable is None:
        raise CheckFailed(f"{relative_canary(spec, env)} exists but {env} has no {relative_manifest(spec, env)}: "
                          "a canary runs beside a stable release; remove canary.yaml and promote directly")  # fmt: skip
    return stable, candidate


def _served(spec: Spec, result: CanaryStatus, track: Track) -> pd.DataFrame:
    """The version's logged production rows in the window: its answers, as served."""
    from ..monitor.sources import read_inference_log

    rows = read_inference_log(spec, track.version, result.window)
    result.source = rows.source
    track.rows = rows.rows_read
    if rows.sampled:
        result.notes.append(f"v{track.version}: {rows.rows_read} rows logged, {len(rows.frame)} sampled")
    if not rows.frame.empty:
        track.answers = distribution(answers(rows.frame["prediction"], spec.task), spec.task)
    return rows.frame


def _shift(stable: Distribution, candidate: Distribution, task: str) -> float:
    moved = shift(stable, candidate, task)
    if task == "classification":
        return moved
    # A mean change means nothing without its scale: relative to the stable mean (or 1 near zero).
    return abs(moved) / max(abs(stable.summary["mean"]), 1e-9)


def _quality(spec: Spec, result: CanaryStatus, served: dict[int, pd.DataFrame]) -> None:
    """Each version's served answers against the labels that came back (``feedback join``'s output)."""
    labels = _labels(spec, result)
    if labels is None:
        return
    for track in (result.stable, result.canary):
        frame = served[track.version]
        if frame.empty or REQUEST_ID not in frame.columns:
            continue
        joined = frame[[REQUEST_ID, "prediction"]].astype({REQUEST_ID: str}).merge(labels, on=REQUEST_ID)
        track.labelled_rows = len(joined)
        if len(joined):
            track.quality = _score(joined["prediction"], joined[spec.target], spec.task)
    if result.stable.quality is None or result.canary.quality is None:
        result.notes.append(
            "quality not compared: labels came back for "
            f"{result.stable.labelled_rows} stable and {result.canary.labelled_rows} canary rows"
        )
        return
    if spec.task == "regression":  # relative MAE increase
        result.quality_drop = (result.canary.quality - result.stable.quality) / max(result.stable.quality, 1e-9)
    else:
        result.quality_drop = result.stable.quality - result.canary.quality
        result.quality_noise = 2 * math.sqrt(sum(t.quality * (1 - t.quality) / t.labelled_rows
                                                 for t in (result.stable, result.canary)))  # fmt: skip


def _labels(spec: Spec, result: CanaryStatus) -> pd.DataFrame | None:
    rows = returned_labels(spec, result.notes)
    if rows is None:
        return None
    if spec.target not in rows.frame.columns:
        result.notes.append(f"{spec.display(rows.source)} has no {spec.target} column: quality not compared")
        return None
    return rows.frame[[REQUEST_ID, spec.target]].dropna().astype({REQUEST_ID: str}).drop_duplicates(REQUEST_ID)


def _score(predicted: pd.Series, truth: pd.Series, task: str) -> float:
    mine, real = answers(predicted, task), answers(truth, task)
    if task == "regression":
        return float(np.mean(np.abs(mine.to_numpy() - real.to_numpy())))
    return float((mine.to_numpy() == real.to_numpy()).mean())


def recommend(spec: Spec, result: CanaryStatus) -> None:
    """``wait`` until both versions have enough rows; then ``abort`` on a threshold crossed, else ``complete``."""
    settings = spec.release
    result.reasons = [f"v{t.version} ({name}) has {t.rows} logged rows in the last {result.window}, fewer than "
                      f"canary_min_rows = {settings.canary_min_rows}"
                      for name, t in (("stable", result.stable), ("canary", result.canary))
                      if t.rows < settings.canary_min_rows]  # fmt: skip
    if result.reasons:
        result.recommendation = "wait"
        return
    if result.shift is not None and result.shift > settings.canary_max_shift:
        result.reasons.append(f"prediction shift {result.shift:.4f} is above canary_max_shift = "
                              f"{settings.canary_max_shift}")  # fmt: skip
    limit = settings.canary_max_quality_drop + result.quality_noise
    if result.quality_drop is not None and result.quality_drop > limit:
        result.reasons.append(f"{result.quality_metric} is worse by {result.quality_drop:.4f} on labelled rows, "
                              f"above canary_max_quality_drop = {settings.canary_max_quality_drop} plus "
                              f"{result.quality_noise:.4f} of sampling noise")  # fmt: skip
    result.recommendation = "abort" if result.reasons else "complete"
    if not result.reasons:
        result.reasons.append(f"shift {result.shift:.4f} within {settings.canary_max_shift}"
                              + ("" if result.quality_drop is None else
                                 f"; {result.quality_metric} drop {result.quality_drop:.4f} within "
                                 f"{settings.canary_max_quality_drop} + noise {result.quality_noise:.4f}"))  # fmt: skip


def summary(result: CanaryStatus) -> str:
    """The status as Markdown: the step summary, the file beside the JSON and the second PR's body."""

    def share(track: Track) -> str:
        if track.answers is None:
            return "-"
        if track.answers.shares:
            return ", ".join(f"{k}: {v:.3f}" for k, v in track.answers.shares.items())
        return ", ".join(f"{k} {v:.3f}" for k, v in track.answers.summary.items())

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    lines = [f"### Canary in {result.env}: recommendation **{result.recommendation}**", "",
             f"Traffic logged in the last {result.window} (canary weight {result.weight:g}; canary share of "
             f"rows seen {number(result.canary_share)}).", "",
             f"| | stable v{result.stable.version} | canary v{result.canary.version} |", "|---|---|---|",
             f"| rows | {result.stable.rows} | {result.canary.rows} |",
             f"| answers | {share(result.stable)} | {share(result.canary)} |",
             f"| labelled rows | {result.stable.labelled_rows} | {result.canary.labelled_rows} |",
             f"| {result.quality_metric} | {number(result.stable.quality)} | {number(result.canary.quality)} |", "",
             f"Prediction shift: {number(result.shift)}; quality drop: {number(result.quality_drop)} "
             f"(sampling noise {result.quality_noise:.4f}).", ""]  # fmt: skip
    lines += [f"- {reason}" for reason in result.reasons]
    lines += [f"- note: {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def status_file(root: Path) -> Path:
    return layout.state_dir(root) / "canary-status.json"


def write_status(spec: Spec, result: CanaryStatus) -> tuple[Path, Path]:
    """``.gitops-ml/canary-status.json`` and its Markdown beside it (``finish`` quotes them in the PR)."""
    from .. import github

    path = status_file(spec.root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
    markdown, text = path.with_suffix(".md"), summary(result)
    markdown.write_text(text, encoding="utf-8")
    github.write_summary(text)
    return path, markdown


# -- the second pull request --------------------------------------------------------------------------
@dataclass
class Finish:
    env: str
    action: str
    stable_version: int
    canary_version: int
    title: str
    body: str
    title_file: Path
    body_file: Path
    changed: list[str]
    branch: str | None = None
    commit: str | None = None

    def as_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def finish_branch(env: str, version: int, action: str) -> str:
    return f"canary/{env}/v{version}-{action}"


def finish(spec: Spec, action: str, env: str | None = None, *, branch: bool = False, base: str = "main") -> Finish:
    """Write the change that ends ``env``'s canary: ``complete`` (canary.yaml becomes release.yaml, the
    overlay follows it) or ``abort`` (canary.yaml removed); with ``branch``, committed on a new branch cut
    from ``base``. Every check runs first; a refusal changes nothing."""
    if action not in ACTIONS:
        raise ConfigError(f"unknown canary action {action!r}: expected one of {', '.join(ACTIONS)}")
    env = check_environment(spec, env or spec.release.environments[-1])
    start = None
    if branch:
        gitutil.require_repository(spec.root)
        start = gitutil.resolve_base(spec.root, base)
    candidate = canary_at(spec, env, start)
    stable = manifest_at(spec, env, start)
    where = start or "the working tree"
    if candidate is None or stable is None:
        raise CheckFailed(f"no canary runs in {env} on {where}: {relative_canary(spec, env)} "
                          f"{'does not exist' if candidate is None else 'has no release.yaml beside it'}")  # fmt: skip
    name = finish_branch(env, candidate.version, action)
    if branch and gitutil.branch_exists(spec.root, name):
        raise CheckFailed(f"branch {name} already exists: delete it or open its pull request")
    wanted = _finished_files(spec, env, action, candidate)
    title = (f"Complete the canary: {spec.model_name} v{candidate.version} replaces v{stable.version} in {env}"
             if action == "complete" else
             f"Abort the canary of {spec.model_name} v{candidate.version} in {env}: v{stable.version} stays"
             )  # fmt: skip
    body = _body(spec, action, env, stable, candidate)
    changed = [p.relative_to(spec.root).as_posix() for p in wanted]
    commit = _write(spec, wanted, title, name if branch else None, start)
    out = layout.promotion_dir(spec.root)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{env}-v{candidate.version}-canary-{action}"
    title_file, body_file = out / f"{stem}.title.txt", out / f"{stem}.body.md"
    title_file.write_text(title + "\n", encoding="utf-8")
    body_file.write_text(body, encoding="utf-8")
    return Finish(env=env, action=action, stable_version=stable.version, canary_version=candidate.version,
                  title=title, body=body, title_file=title_file, body_file=body_file, changed=changed,
                  branch=name if branch else None, commit=commit)  # fmt: skip


def _finished_files(spec: Spec, env: str, action: str, candidate: ReleaseManifest) -> dict[Path, str | None]:
    """Each file the change writes (None: removed)."""
    wanted: dict[Path, str | None] = {canary_path(spec, env): None}
    if kubernetes.enabled(spec) and kubernetes.canary_overlay_path(spec, env).is_file():
        # Emptied, not removed: its Application or Kustomization then prunes the canary's Deployment.
        wanted[kubernetes.canary_overlay_path(spec, env)] = kubernetes.dump_canary_overlay(spec, None)
    if action == "complete":
        wanted[manifest_path(spec, env)] = dump_manifest(candidate)
        if kubernetes.enabled(spec) and candidate.image_digest:
            wanted[kubernetes.overlay_path(spec, env)] = kubernetes.dump_overlay(
                kubernetes.overlay_document(spec, candidate)
            )
    return wanted


def _body(spec: Spec, action: str, env: str, stable: ReleaseManifest, candidate: ReleaseManifest) -> str:
    what = (f"`{relative_canary(spec, env)}` becomes `{relative_manifest(spec, env)}`: v{candidate.version} takes "
            f"all of {env}'s traffic and v{stable.version} is retired." if action == "complete" else
            f"`{relative_canary(spec, env)}` is removed (the revert of the canary promotion): v{stable.version} "
            f"takes all of {env}'s traffic again.")  # fmt: skip
    lines = [f"## Canary {action}: {spec.model_name} v{candidate.version} in {env}", "", what, ""]
    recorded = _recorded_status(spec, env, stable.version, candidate.version)
    lines.append(recorded if recorded else
                 "No `gitops-ml canary status` was recorded for these two versions here: run `make canary-status` "
                 "and read its numbers before merging.")  # fmt: skip
    return "\n".join(lines) + "\n"


def _recorded_status(spec: Spec, env: str, stable: int, candidate: int) -> str | None:
    """The last status's Markdown, when it compared exactly these two versions of ``env``."""
    path = status_file(spec.root)
    if not path.is_file():
        return None
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        compared = (recorded["env"], recorded["stable"]["version"], recorded["canary"]["version"])
        same = compared == (env, stable, candidate)
    except (ValueError, KeyError, TypeError):
        return None
    markdown = path.with_suffix(".md")
    return markdown.read_text(encoding="utf-8") if same and markdown.is_file() else None


def _write(spec: Spec, wanted: dict[Path, str | None], title: str, branch: str | None, start: str | None) -> str | None:
    """Write (and with ``branch`` commit on a new branch) every file; on any failure put them all back."""
    from .promote import write_or_restore

    previous = gitutil.switch_to_new_branch(spec.root, branch, start) if branch else None
    originals = {p: p.read_text(encoding="utf-8") if p.is_file() else None for p in wanted}
    paths = [p.relative_to(spec.root).as_posix() for p in wanted if wanted[p] is not None or originals[p] is not None]
    return write_or_restore(spec, wanted, originals, paths, title, branch, previous)
