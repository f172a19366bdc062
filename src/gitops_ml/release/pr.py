"""The pull request's title and body for a promotion: what changes, metrics, gates, lineage, drift."""

from __future__ import annotations

import json
import os

from .. import cards, layout, slices, tracking
from ..config import Spec
from ..github import markdown_table
from ..metrics import higher_is_better
from .manifest import FIRST_SOURCE, ReleaseManifest


def default_title(spec: Spec, manifest: ReleaseManifest, current: ReleaseManifest | None) -> str:
    change = f" (replaces v{current.version})" if current else ""
    return f"Promote {spec.model_name} v{manifest.version} to {manifest.environment}{change}"


def promotion_body(
    spec: Spec,
    manifest: ReleaseManifest,
    current: ReleaseManifest | None,
    unfilled: int,
    extra_body: str,
    branch: str,
    groups: str = "",
    replayed: str = "",
    canary: str = "",
) -> str:
    env, version = manifest.environment, manifest.version
    was = f"v{current.version}" if current else "nothing"
    parts = [
        f"## Promote `{spec.model_name}` v{version} to {env}\n",
        extra_body.strip() + "\n" if extra_body.strip() else "",
        canary or f"**What changes:** `{env}` goes from {was} to **v{version}** "
        f"(from {_source(manifest.promoted_from)}). Merging this pull request deploys it: "
        f"the MLflow alias `{env}` moves to v{version} and image `{manifest.image}` is built. "
        "Rolling back is reverting the merge commit.\n",
        "### Metrics\n",
        _metrics_table(spec, manifest, current),
        _gates_section(manifest),
        groups,
        replayed,
        "### Lineage\n",
        markdown_table(
            ["", "release"],
            [
                ("model card", _link(manifest.model_card, branch)),
                ("MLflow run", _run_link(spec, manifest.run_id)),
                ("model", f"`{manifest.model_uri}` (`{manifest.logged_model_uri}`)"),
                ("artifact sha256", f"`{manifest.artifact_sha256}`"),
                ("trained from commit", f"`{manifest.git_commit or 'unknown'}`"),
                ("data fingerprint", f"`{manifest.data_fingerprint[:16]}`"),
                ("bento / image", f"`{manifest.bento_tag}` / `{manifest.image}`"),
            ],
        ),
        _drift_section(spec),
        _card_note(spec, env, unfilled),
    ]
    return "\n".join(part for part in parts if part)


def _metrics_table(spec: Spec, manifest: ReleaseManifest, current: ReleaseManifest | None) -> str:
    now = current.metrics if current else {}
    header = f"v{current.version} ({manifest.environment} now)" if current else "current"
    rows = []
    for metric, value in manifest.metrics.items():
        before = now.get(metric)
        delta = ""
        if value is not None and before is not None:
            change = value - before
            better = change > 0 if higher_is_better(metric) else change < 0
            delta = f"{change:+.4f}" + (" (better)" if better and change else " (worse)" if change else "")
        mark = " **(primary)**" if metric == spec.metric else ""
        rows.append((metric + mark, _number(value), _number(before) if current else "—", delta or "—"))
    note = (
        (
            "\nEach version's metrics are on its own held-out rows, as `gitops-ml evaluate` recorded "
            "them; no-regression gates, when there are any, score both on the same rows.\n"
        )
        if current
        else ""
    )
    return markdown_table(["metric", f"v{manifest.version}", header, "delta"], rows) + note


def _source(promoted_from: str) -> str:
    return "the registry" if promoted_from == FIRST_SOURCE else promoted_from


def _gates_section(manifest: ReleaseManifest) -> str:
    gates = manifest.gates
    against, baseline = gates.evaluated_against, gates.baseline_version
    where = f", evaluated against {against} v{baseline}" if against and baseline else ""
    rows = [(g.name, _number(g.value), _number(g.threshold), "pass" if g.passed else "FAIL") for g in gates.results]
    return f"### Gates: {'all pass' if gates.passed else 'FAILED'}{where}\n\n" + markdown_table(
        ["gate", "value", "threshold", "outcome"], rows
    )


def _number(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "—"


def _link(path: str, branch: str) -> str:
    """A link GitHub renders in a pull request body when the workflow says where the repository is."""
    server, repository = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    if server and repository:
        return f"[`{path}`]({server}/{repository}/blob/{branch}/{path})"
    return f"`{path}`"


def _run_link(spec: Spec, run_id: str) -> str:
    uri = spec.tracking
    if uri.startswith(("http://", "https://")):
        return f"[{run_id}]({uri.rstrip('/')}/#/runs/{run_id})"
    return f"`{run_id}` (open with `mlflow ui --backend-store-uri {uri}`)"


def drift_summary(spec: Spec) -> dict | None:
    """The latest drift summary `gitops-ml drift` left behind, if any."""
    try:
        return json.loads(layout.drift_summary_file(spec.root).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _drift_section(spec: Spec) -> str:
    summary = drift_summary(spec)
    if not isinstance(summary, dict):
        return ""
    facts = [f"decision **{summary.get('decision', 'unknown')}**"]
    for key in ("env", "environment", "window", "generated_at", "created"):
        if summary.get(key):
            facts.append(f"{key.replace('_', ' ')} {summary[key]}")
    reasons = summary.get("reasons") or []
    lines = "".join(f"- {reason}\n" for reason in reasons[:10] if isinstance(reason, str))
    return f"### Latest drift check\n\n{', '.join(facts)}\n\n{lines}"


def _card_note(spec: Spec, env: str, unfilled: int) -> str:
    if not unfilled:
        return ""
    last = spec.release.environments[-1]
    consequence = (
        "`gitops-ml verify` fails until they are filled in"
        if env == last
        else f"fill them in before promoting to {last}"
    )
    return (
        f"### Model card to complete\n\nThe card still has {unfilled} `{cards.UNFILLED_MARKER}` "
        f"section(s): {consequence}.\n"
    )


def groups_section(
    env: str, candidate: tracking.Version, current: ReleaseManifest | None, running: tracking.Version | None
) -> str:
    """The candidate's metric per group against what ``env`` runs now.

    Same rows when evaluate scored the running version as its baseline; else each version's own
    recorded groups; and when the running version recorded none, the pull request says so.
    """
    mine = slices.recorded(candidate)
    if mine is None:
        return ""
    report = slices.SliceReport.from_dict(mine["candidate"])
    baseline, note = None, ""
    if current is None:
        note = f"{env} runs nothing yet: nothing to compare with."
    elif mine.get("baseline") and mine.get("baseline_version") == current.version:
        baseline = slices.SliceReport.from_dict(mine["baseline"])
        note = f"Both scored on v{candidate.version}'s held-out rows, as `gitops-ml evaluate` recorded them."
    elif running is not None and (theirs := slices.recorded(running)) is not None:
        baseline = slices.SliceReport.from_dict(theirs["candidate"])
        note = "Each version on its own held-out rows, as `gitops-ml evaluate` recorded them."
    else:
        note = (f"v{current.version} ({env} now) has no per-group metrics recorded (evaluated before "
                "`[tool.gitops-ml.slices]` was set, or in another registry): nothing to compare with.")
    headers, rows = slices.table(report, baseline)
    if baseline is not None:
        headers[4] = f"v{current.version} ({env} now)"
    headers[3] = f"v{candidate.version}"
    return (
        f"### {report.metric} by group\n\n{note} Groups under {report.min_rows} rows are too small to judge.\n\n"
        + markdown_table(headers, [[slices.number(v) for v in row] for row in rows])
        + "\n"
        + markdown_table(slices.GAP_HEADERS, [[slices.number(v) for v in row] for row in slices.gap_rows(report)])
        + _gap_change(report, baseline, current)
    )


def _gap_change(report: slices.SliceReport, baseline: slices.SliceReport | None, current) -> str:
    if baseline is None:
        return ""
    lines = []
    for column in report.columns:
        before = baseline.column(column.column)
        if before is None or column.gap is None or before.gap is None:
            continue
        lines.append(f"- `{column.column}`: gap {column.gap:.4f}, v{current.version} {before.gap:.4f} "
                     f"({column.gap - before.gap:+.4f})")
    return ("\n" + "\n".join(lines) + "\n") if lines else ""


def replay_section(result) -> str:
    """The replay of production traffic (``release.replay.Replay``) as Markdown: agreement, the prediction
    distributions and their shift, quality on labelled rows, gates, and what could not be compared."""
    env, mine = result.env, f"v{result.candidate_version}"
    theirs = f"v{result.production_version} ({env} now)" if result.production_version is not None else env
    served = f"v{result.production_version}"
    lines = [f"### Replay of {env} traffic\n"]
    if result.agreement is not None:
        sampled = ", sampled" if result.sampled else ""
        lines.append(
            f"{result.rows_replayed} {env} requests of the last {result.window}, as {served} answered them{sampled}, "
            f"sent through {mine} offline: **{result.agreement:.2%} agreement** ({result.disagreements} answers "
            f"differ); prediction shift {_shift_text(result)}.\n"
        )
        lines.append(markdown_table(["answer", theirs, mine, "change"], _distribution_rows(result)))
        if result.candidate_metric is not None:
            delta = result.candidate_metric - result.production_metric
            lines.append(
                f"On the {result.labelled_rows} replayed rows whose labels came back:\n\n"
                + markdown_table(["metric", theirs, mine, "delta"], [
                    (result.metric, _number(result.production_metric), _number(result.candidate_metric),
                     f"{delta:+.4f}")])
            )
    if result.gates:
        lines.append(markdown_table(
            ["replay gate", "value", "threshold", "outcome"],
            [(g.name, _number(g.value), _number(g.threshold), ("pass" if g.passed else "FAIL")
              + (f" ({g.reason})" if g.reason else "")) for g in result.gates]))
    if result.notes:
        lines.append("".join(f"- {note}\n" for note in result.notes))
    return "\n".join(lines) + "\n"


def _shift_text(result) -> str:
    if result.task == "classification":
        return f"{result.shift:.4f} (total variation distance of the class shares)"
    return f"{result.shift:+.4f} (mean answer)"


def _distribution_rows(result) -> list[tuple]:
    before, after = result.production, result.candidate
    if result.task == "classification":
        classes = sorted(set(before.shares) | set(after.shares))
        return [(f"class {c}", f"{before.shares.get(c, 0.0):.2%}", f"{after.shares.get(c, 0.0):.2%}",
                 f"{(after.shares.get(c, 0.0) - before.shares.get(c, 0.0)) * 100:+.2f} points") for c in classes]
    return [(name, _number(before.summary[name]), _number(after.summary[name]),
             f"{after.summary[name] - before.summary[name]:+.4f}") for name in before.summary]
