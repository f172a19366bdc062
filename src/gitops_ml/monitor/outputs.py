"""What a drift run leaves behind: Evidently HTML, JSON and Markdown summaries, a PR or issue as files.

Each run replaces the files of the previous one, so a workflow never acts on a stale title or body.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import github, layout
from ..config import Spec

if TYPE_CHECKING:
    from .drift import DriftResult, Unreleased

REPORT, SUMMARY_JSON, SUMMARY_MD, TITLE, BODY = "report.html", "summary.json", "summary.md", "title.txt", "body.md"
KIND = {"retrain": "pull_request", "escalate": "issue"}


@dataclass(frozen=True)
class Files:
    directory: Path
    summary_json: Path
    summary_md: Path
    report_html: Path | None
    title_file: Path | None
    body_file: Path | None
    kind: str | None  # what the decision calls for: "pull_request", "issue" or None

    def as_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def default_dir(spec: Spec) -> Path:
    return layout.drift_dir(spec.root)


def clean(value):
    """JSON without NaN: a missing number is null."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def write(spec: Spec, result: DriftResult, output_dir: Path | None = None) -> Files:
    folder = Path(output_dir) if output_dir else default_dir(spec)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (REPORT, SUMMARY_JSON, SUMMARY_MD, TITLE, BODY):
        (folder / name).unlink(missing_ok=True)
    report = None
    if result.snapshot is not None:
        report = folder / REPORT
        result.snapshot.save_html(str(report))
    kind = KIND.get(result.decision)
    title_file = body_file = None
    if kind:
        title_file, body_file = folder / TITLE, folder / BODY
        title_file.write_text(title(result) + "\n", encoding="utf-8")
        body_file.write_text(body(result), encoding="utf-8")
    files = Files(folder, folder / SUMMARY_JSON, folder / SUMMARY_MD, report, title_file, body_file, kind)
    result.files = files
    markdown = summary_markdown(result)
    files.summary_md.write_text(markdown, encoding="utf-8")
    files.summary_json.write_text(json.dumps(clean(result.as_dict()), indent=2, default=str) + "\n",
                                  encoding="utf-8")
    return files


def write_unreleased(spec: Spec, result: Unreleased, output_dir: Path | None = None) -> Files:
    """The summaries of a run that found no release (so the workflow's report artifact is never missing)."""
    folder = Path(output_dir) if output_dir else default_dir(spec)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (REPORT, SUMMARY_JSON, SUMMARY_MD, TITLE, BODY):
        (folder / name).unlink(missing_ok=True)
    files = Files(folder, folder / SUMMARY_JSON, folder / SUMMARY_MD, None, None, None, None)
    result.files = files
    where = result.env or "any environment"
    files.summary_md.write_text(f"### Drift of {result.model_name} in {where}: nothing released yet\n\n"
                                f"{result.message}. Nothing is served, so there is nothing to monitor; the "
                                "drift check starts once a release is deployed.\n", encoding="utf-8")
    files.summary_json.write_text(json.dumps(result.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    return files


# -- text ------------------------------------------------------------------------------------------
def title(result: DriftResult) -> str:
    if result.decision == "escalate":
        return f"{result.model_name} v{result.model_version} in {result.env}: severe drift, back to development"
    return f"Retrain {result.model_name}: drift in {len(result.drifted)} features"


def _number(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _threshold(found) -> str:
    return f"{_number(found.threshold)} (calibrated)" if found.calibrated else _number(found.threshold)


def _calibration_line(result: DriftResult) -> str:
    found = result.calibration_summary()
    if not found["used"]:
        return f"Fixed thresholds: {found['note']}"
    said = (f"Thresholds calibrated on {found['current_rows']}-row splits of the training rows "
            f"({found['splits']} splits; false alarms at most {result.thresholds.get('false_alarm_rate')})")
    return said + (f"; {found['note']}" if found["note"] else "") + "."


def summary_markdown(result: DriftResult, heading: str = "###") -> str:
    """The drift run for a person: decision, reasons, rows, per-feature scores, quality."""
    cur = result.current
    lines = [f"{heading} Drift of {result.model_name} v{result.model_version} in {result.env}: "
             f"**{result.decision}**", ""]
    lines += [f"- **{r.grade}** ({r.signal}): {r.message}" for r in result.reasons]
    lines += ["", github.markdown_table(
        ["data", "source", "rows", "used", "notes"],
        [("current", cur.source, cur.rows_read, cur.rows_used, _notes(result)),
         *([("reference", result.reference.source, result.reference.rows, len(result.reference.frame),
             f"fingerprint {result.reference.fingerprint[:12]}"
             + ("; sampled" if result.reference.sampled else ""))] if result.reference else []),
         *([("labelled", result.labelled.source, result.labelled.rows_read, result.labelled.rows_used,
             f"{result.labelled.invalid_rows} broke the contract" if result.labelled.invalid_rows else "")]
           if result.labelled else [])])]
    if result.features:
        rows = [(f.column, f.kind, f.method, _number(f.score), _threshold(f), _number(f.past),
                 "**drifted**" if f.drifted else "")
                for f in sorted(result.features, key=lambda f: (not f.drifted, f.column))]
        if result.prediction:
            p = result.prediction
            rows.append((f"_{p.column}_", p.kind, p.method, _number(p.score), _threshold(p), _number(p.past),
                         "**drifted**" if p.drifted else ""))
        lines += [f"{len(result.drifted)} of {len(result.features)} features drifted "
                  f"(share {result.drift_share:.2f}; retrain at {result.thresholds.get('retrain_drift_share')}, "
                  f"escalate at {result.thresholds.get('escalate_drift_share')}).", "",
                  _calibration_line(result), "",
                  github.markdown_table(["column", "type", "test", "score", "threshold", "past it by", ""], rows)]
    if result.shares:
        moved = [s for s in result.shares if s.moved]
        lines += [f"Traffic share by group: {len(moved)} of {len(result.shares)} groups moved by "
                  f"{result.shares[0].threshold} or more (slices.share_shift).", "",
                  github.markdown_table(["column", "group", "training share", "current share", "change (points)", ""],
                                        [(s.column, s.group, f"{s.reference:.1%}", f"{s.current:.1%}",
                                          f"{s.change * 100:+.1f}", "**moved**" if s.moved else "")
                                         for s in result.shares])]
    if result.quality:
        q = result.quality
        lines += [github.markdown_table(["metric", "at training", "on recent labelled rows", "loss", "rows"],
                                        [(q.metric, _number(q.training), _number(q.current), f"{q.loss:+.1%}",
                                          q.rows)])]
    return "\n".join(lines) + "\n"


def _notes(result: DriftResult) -> str:
    cur, notes = result.current, []
    if cur.window:
        notes.append(f"window {cur.window}")
    if cur.sampled:
        notes.append(f"sampled {cur.rows_used} of {cur.rows_read} (seeded)")
    if cur.corrupt_lines:
        notes.append(f"{cur.corrupt_lines} corrupt log lines skipped")
    if cur.invalid_rows:
        notes.append(f"{cur.invalid_rows} rows broke the contract")
    return "; ".join(notes)


def body(result: DriftResult) -> str:
    """The body of the pull request (retrain) or issue (escalate) the decision calls for."""
    report = "`report.html` (kept with the workflow run's artifacts)"
    if result.decision == "escalate":
        intro = (f"The drift monitor graded the traffic of **{result.model_name} v{result.model_version}** in "
                 f"**{result.env}** as **severe**. Retraining on fresh data alone will not fix this: the model "
                 "goes back to development.\n\n"
                 "To do:\n\n- [ ] Read the reasons below and the Evidently report in "
                 f"{report}.\n- [ ] Decide whether the data contract, the features or the model must change.\n"
                 "- [ ] Train and evaluate a new version; promote it by pull request.\n")
    else:
        intro = (f"The drift monitor graded the traffic of **{result.model_name} v{result.model_version}** in "
                 f"**{result.env}** as **moderate**: retrain on the training data plus the labelled recent "
                 f"data (`gitops-ml retrain --env {result.env}`) and release by pull request. The Evidently "
                 f"report is in {report}.\n")
    return intro + "\n" + summary_markdown(result, heading="##")
