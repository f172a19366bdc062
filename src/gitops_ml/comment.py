"""The pipeline's pull-request comment: the candidate's metrics against what production runs, its
gates, where its card and the drift reports are, and which step failed when one did.

The pipeline workflow runs every stage as its own step and hands this module each step's outcome;
the comment is written from what the stages recorded (the gates `gitops-ml evaluate` kept on the
version in the registry), so it says the same thing whichever step stopped the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import cards, tracking
from .config import Spec
from .errors import ConfigError
from .github import markdown_table
from .metrics import higher_is_better
from .release.registry import recorded_gates

# The pipeline's stages in the order its steps run them; each is also a make target.
STAGES = ("validate", "train", "evaluate", "card", "package", "smoke")
OUTCOMES = ("success", "failure", "cancelled", "skipped")


@dataclass(frozen=True)
class Links:
    """Where a reader of the pull request finds the rest (empty when not known)."""

    card: str = ""
    run: str = ""
    drift: str = ""


@dataclass
class Comment:
    version: int | None
    failed_stage: str | None
    markdown: str
    path: Path
    sections: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"version": self.version, "failed_stage": self.failed_stage, "path": str(self.path),
                "sections": self.sections}  # fmt: skip


def parse_outcomes(text: str) -> dict[str, str]:
    """``validate=success train=failure ...`` (the steps' ``outcome``s) as a dict, checked."""
    outcomes: dict[str, str] = {}
    for pair in text.split():
        stage, sep, outcome = pair.partition("=")
        if not sep or stage not in STAGES:
            raise ConfigError(f"OUTCOMES: {pair!r} is not <stage>=<outcome> with a stage among {', '.join(STAGES)}")
        if outcome not in OUTCOMES:
            raise ConfigError(f"OUTCOMES: {stage}={outcome!r}: the outcome must be one of {', '.join(OUTCOMES)}")
        outcomes[stage] = outcome
    return outcomes


def first_failure(outcomes: dict[str, str]) -> str | None:
    return next((stage for stage in STAGES if outcomes.get(stage) in ("failure", "cancelled")), None)


def links_from_actions(card_url: str = "") -> Links:
    """Links built from the variables every GitHub Actions job has; empty outside a job."""
    server, repository, run = (os.environ.get(name, "") for name in
                               ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))  # fmt: skip
    if not (server and repository):
        return Links(card=card_url)
    base = f"{server}/{repository}"
    return Links(card=card_url, run=f"{base}/actions/runs/{run}" if run else "",
                 drift=f"{base}/actions/workflows/drift.yml")  # fmt: skip


def pull_request_comment(spec: Spec, version: int | None, outcomes: dict[str, str], links: Links,
                         output: Path) -> Comment:  # fmt: skip
    """Write the comment for ``version`` (None when training did not register one) to ``output``."""
    failed = first_failure(outcomes)
    model = _version_or_none(spec, version)
    sections = []
    if failed:
        sections.append(failure_line(failed, outcomes, links))
    if model is None:
        sections.append("No model version was registered by this run, so there are no metrics to compare.\n")
    else:
        sections.append(evaluation_section(spec, model))
    sections.append(links_section(spec, model, links))
    markdown = "\n".join(sections)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.name + ".tmp")
    temporary.write_text(markdown, encoding="utf-8")
    temporary.replace(output)  # a reader never sees half a comment
    titles = [section.splitlines()[0] for section in sections]
    return Comment(model.version if model else None, failed, markdown, output, titles)


def _version_or_none(spec: Spec, version: int | None) -> tracking.Version | None:
    if version is None:
        return None
    return tracking.get_version(spec, tracking.connect(spec), version)


def failure_line(stage: str, outcomes: dict[str, str], links: Links) -> str:
    after = [s for s in STAGES[STAGES.index(stage) + 1:] if outcomes.get(s) == "skipped"]
    skipped = f"; {', '.join(f'`{s}`' for s in after)} did not run" if after else ""
    log = f" ([the run's log]({links.run}))" if links.run else ""
    return (f"**:x: The pipeline failed at `make {stage}`**{skipped}. Run `make {stage}` locally to see "
            f"why{log}.\n")  # fmt: skip


def evaluation_section(spec: Spec, model: tracking.Version) -> str:
    gates = recorded_gates(model)
    if gates is None:
        return f"### {spec.model_name} v{model.version}\n\n`gitops-ml evaluate` did not run on this version.\n"
    against, baseline = gates.get("against"), gates.get("baseline_version")
    verdict = "all gates pass" if gates["passed"] else "a gate FAILED"
    title = f"### {spec.model_name} v{model.version}" + (f" against {against} v{baseline}" if baseline else "")
    parts = [f"{title}: {verdict}\n", metrics_table(spec, model.version, gates)]
    rows = [(g["name"], _number(g["value"]), _number(g["threshold"]), "pass" if g["passed"] else "**FAIL**")
            for g in gates.get("gates", [])]  # fmt: skip
    parts.append(markdown_table(["gate", "value", "threshold", "outcome"], rows))
    parts += [f"> {notice}\n" for notice in gates.get("notices", [])]
    if not baseline:
        parts.append("No environment runs a model yet: only the absolute gates applied.\n")
    return "\n".join(parts)


def metrics_table(spec: Spec, version: int, gates: dict) -> str:
    """Every metric of the candidate beside the baseline's, both scored on the candidate's held-out rows."""
    baseline_metrics = gates.get("baseline_metrics") or {}
    baseline = gates.get("baseline_version")
    header = f"{gates.get('against')} v{baseline}" if baseline else "production"
    rows = []
    for metric, value in sorted((gates.get("metrics") or {}).items()):
        before = baseline_metrics.get(metric)
        rows.append((metric + (" **(primary)**" if metric == spec.metric else ""), _number(value),
                     _number(before), _delta(metric, value, before)))  # fmt: skip
    return markdown_table(["metric", f"v{version}", header, "change"], rows)


def _delta(metric: str, value: float | None, before: float | None) -> str:
    if value is None or before is None:
        return "—"
    change = value - before
    if not change:
        return "±0"
    better = change > 0 if higher_is_better(metric) else change < 0
    return f"{change:+.4f} ({'better' if better else 'worse'})"


def links_section(spec: Spec, model: tracking.Version | None, links: Links) -> str:
    rows = []
    if model is not None:
        card = cards.card_path(spec, model.version)
        written = card.is_file()
        where = f"[{card.name}]({links.card})" if links.card and written else f"`{spec.display(str(card))}`"
        rows.append(("model card", where if written else "not written (the card step did not run or failed)"))
    if links.drift:
        rows.append(("drift reports", f"[the Drift workflow's runs]({links.drift}) (each run's report is an artifact)"))
    if links.run:
        rows.append(("this run", f"[logs, summary and artifacts]({links.run})"))
    return "### Links\n\n" + markdown_table(["", ""], rows) if rows else ""


def _number(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) and not isinstance(value, bool) else "—"
