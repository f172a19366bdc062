"""Model cards: YAML front matter a machine reads, and Markdown a person reads and completes.

Sections follow "Model Cards for Model Reporting" (Mitchell et al., 2019). What only a
person can say is left as ``FILL-IN`` markers; promotion to production refuses a card
that still has one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient

from . import tracking
from .config import Spec
from .github import markdown_table
from .slices import GAP_HEADERS, SliceReport, gap_rows, number, recorded, table

SLICE_PLOT = "metric_by_group.png"
MEASURED_START = "<!-- measured by gitops-ml card: rewritten each time -->"
MEASURED_END = "<!-- end of measured -->"

UNFILLED_MARKER = "FILL-IN"


@dataclass(frozen=True)
class Card:
    path: Path
    front_matter: dict
    unfilled: int

    def as_dict(self) -> dict:
        return {"path": str(self.path), "unfilled": self.unfilled, **self.front_matter}


def card_path(spec: Spec, version: int) -> Path:
    return spec.cards_dir / f"{spec.model_name}-v{version}.md"


def read_front_matter(path: Path) -> dict:
    """The YAML between the leading ``---`` lines of a card."""
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return {}
    block, _, _ = text[4:].partition("\n---\n")
    return yaml.safe_load(block) or {}


def count_unfilled(path: Path) -> int:
    return path.read_text(encoding="utf-8").count(UNFILLED_MARKER)


def write_card(spec: Spec, version: int | None = None) -> Card:
    """Write ``model_cards/<model>-v<version>.md`` with the version's lineage, metrics, gates and plots.

    Sections a person already filled in are kept when the card is written again.
    """
    client = tracking.connect(spec)
    model = tracking.get_version(spec, client, version)
    run = client.get_run(model.run_id)
    gates = json.loads(model.tags.get(tracking.TAG_GATES, "{}") or "{}")
    front = {
        "model": spec.model_name,
        "version": model.version,
        "task": spec.task,
        "run_id": model.run_id,
        "git_commit": model.git_commit,
        "data_fingerprint": model.data_fingerprint,
        "data_uri": run.data.tags.get("data_uri", ""),
        "split": run.data.tags.get("split", ""),
        "metrics": {k: round(v, 4) for k, v in sorted((gates.get("metrics") or run.data.metrics).items())},
        "gates_passed": gates.get("passed"),
        "gates": [
            {"name": g["name"], "value": round(g["value"], 4), "passed": g["passed"]} for g in gates.get("gates", [])
        ],
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    path = card_path(spec, model.version)
    path.parent.mkdir(parents=True, exist_ok=True)
    plots = _copy_plots(client, model.run_id, path.with_suffix(""))
    kept = _filled_sections(path) if path.exists() else {}
    grouped = _slices(model)
    if grouped is not None:
        front["slices"] = {c.column: {"gap": _round(c.gap), "positive_rate_gap": _round(c.parity_difference),
                                      "too_small": [g.value for g in c.too_small]} for c in grouped.columns}
        plots = [p for p in plots if p.name != SLICE_PLOT]
        # Imported here: matplotlib costs every command that reaches this module (drift, promote,
        # verify, deploy) about half a second, and only drawing a card needs it.
        from . import plots as plots_module

        figure = plots_module.by_group(grouped)
        path.with_suffix("").mkdir(parents=True, exist_ok=True)
        figure.savefig(path.with_suffix("") / SLICE_PLOT, dpi=100)
    body = _render(spec, front, run, plots, path.parent, kept, grouped) + drift_section(client, model.run_id)
    path.write_text("---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n\n" + body, encoding="utf-8")
    return Card(path=path, front_matter=front, unfilled=count_unfilled(path))


def _slices(model: tracking.Version) -> SliceReport | None:
    found = recorded(model)
    return SliceReport.from_dict(found["candidate"]) if found else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _copy_plots(client: MlflowClient, run_id: str, folder: Path) -> list[Path]:
    """Copy the run's plots next to the card so the card renders on GitHub without MLflow."""
    found = tracking.download_artifact(client, run_id, "plots")  # an unreadable store is named, not skipped
    if found is None:  # a run logged without plots
        return []
    downloaded = Path(found)
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for png in sorted(downloaded.glob("*.png")):
        copied.append(Path(shutil.copy2(png, folder / png.name)))
    return copied


PERSON_SECTIONS = {
    "Intended use": f"<!-- {UNFILLED_MARKER}: who uses the predictions, for which decisions; uses out of scope. -->",
    "Limitations": f"<!-- {UNFILLED_MARKER}: where the model does badly; conditions it was not tested under. -->",
    "Ethical considerations": f"<!-- {UNFILLED_MARKER}: people affected, sensitive features, fairness checks owed. -->",
}


def _filled_sections(path: Path) -> dict[str, str]:
    """Person-written sections of an existing card whose markers were replaced."""
    kept = {}
    text = path.read_text(encoding="utf-8")
    for title in PERSON_SECTIONS:
        _, found, rest = text.partition(f"\n## {title}\n")
        if found:
            section = _without_measured(rest.split("\n## ", 1)[0]).strip()
            if UNFILLED_MARKER not in section:
                kept[title] = section
    return kept


def _without_measured(section: str) -> str:
    """A section without the block the card computes (a person's text is what is left)."""
    before, found, rest = section.partition(MEASURED_START)
    return before + rest.partition(MEASURED_END)[2] if found else section


def _slice_evaluation(grouped: SliceReport | None, base: Path, folder: Path) -> str:
    if grouped is None:
        return ""
    headers, rows = table(grouped)
    plot = (folder / SLICE_PLOT).relative_to(base).as_posix()
    return (
        f"### {grouped.metric} by group\n"
        f"On the same held-out rows; a group needs {grouped.min_rows} rows to be judged "
        "(`[tool.gitops-ml.slices] min_rows`), smaller ones are listed, not dropped.\n\n"
        + markdown_table(headers, [[number(v) for v in row] for row in rows])
        + "\n"
        + markdown_table(GAP_HEADERS, [[number(v) for v in row] for row in gap_rows(grouped)])
        + f"\n![{grouped.metric} by group]({plot})\n\n"
    )


def _measured_gaps(grouped: SliceReport | None) -> str:
    """What the numbers say, for the person who writes the judgement under them."""
    if grouped is None:
        return (f"{MEASURED_START}\nNo groups measured: set `[tool.gitops-ml.slices] columns` to see the "
                f"metric and the positive-prediction rate by group here.\n{MEASURED_END}\n")  # fmt: skip
    lines = [MEASURED_START, f"Measured on the held-out rows ({grouped.metric}, groups of at least "
             f"{grouped.min_rows} rows):", ""]  # fmt: skip
    for column in grouped.columns:
        ends = column.best_and_worst(grouped.metric)
        if column.gap is None or ends is None:
            lines.append(f"- `{column.column}`: fewer than two groups large enough to judge")
            continue
        best, worst = ends
        said = (f"- `{column.column}`: {grouped.metric} gap {column.gap:.4f} between {best.value} "
                f"({best.metric:.4f}) and {worst.value} ({worst.metric:.4f})")  # fmt: skip
        if column.parity_difference is not None:
            rates = [g for g in column.judged if g.positive_rate is not None]
            high = max(rates, key=lambda g: g.positive_rate)
            low = min(rates, key=lambda g: g.positive_rate)
            said += (f"; positive-prediction rate gap {column.parity_difference:.4f} ({high.value} "
                     f"{high.positive_rate:.1%}, {low.value} {low.positive_rate:.1%})")  # fmt: skip
        if column.too_small:
            said += "; too small to judge: " + ", ".join(f"{g.value} ({g.rows} rows)" for g in column.too_small)
        lines.append(said)
    return "\n".join([*lines, MEASURED_END]) + "\n"


def _render(
    spec: Spec,
    front: dict,
    run,
    plots: list[Path],
    base: Path,
    kept: dict[str, str],
    grouped: SliceReport | None = None,
) -> str:
    metric_rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in front["metrics"].items())
    gate_rows = (
        "\n".join(f"| {g['name']} | {g['value']:.4f} | {'pass' if g['passed'] else 'FAIL'} |" for g in front["gates"])
        or "| not evaluated yet: run `gitops-ml evaluate` | | |"
    )
    images = "\n\n".join(f"![{p.stem.replace('_', ' ')}]({p.relative_to(base).as_posix()})" for p in plots)
    person = {title: kept.get(title, marker) for title, marker in PERSON_SECTIONS.items()}
    params = run.data.params
    return f"""# Model card: {spec.model_name} v{front["version"]}

## Model details
- Task: {spec.task}, target column `{spec.target}`
- Factory: `{spec.model_factory}`; registered as `models:/{spec.model_name}/{front["version"]}`
- Trained from commit `{front["git_commit"] or "unknown"}` in MLflow run `{front["run_id"]}`

## Intended use
{person["Intended use"]}

## Training data
- Source: `{front["data_uri"]}` (fingerprint `{front["data_fingerprint"][:16]}…`)
- Contract: `{spec.schema_}`
- Split: {front["split"]}; {params.get("train_rows", "?")} training rows, {params.get("test_rows", "?")} held out

## Evaluation
| metric | value |
|---|---|
{metric_rows}

| gate | value | outcome |
|---|---|---|
{gate_rows}

{images}

{_slice_evaluation(grouped, base, base / f"{spec.model_name}-v{front['version']}")}## Limitations
{person["Limitations"]}

## Ethical considerations
{_measured_gaps(grouped)}
{person["Ethical considerations"]}
"""


def drift_section(client: MlflowClient, run_id: str) -> str:
    """The calibrated drift thresholds of this version and the shift each detects (issue 16)."""
    from .monitor.calibration import read_logged

    calibration = read_logged(client, run_id)
    if calibration is None:
        return "\n## Drift thresholds\nNot calibrated: drift uses Evidently's fixed thresholds.\n"
    lines = ["", "## Drift thresholds",
             f"Calibrated on {calibration.training_rows} training rows ({calibration.combination}): a batch "
             f"from the training distribution is called drifted in at most {calibration.false_alarm_rate:.1%} "
             "of runs. 'Detected' is the smallest shift caught 9 times in 10 at that batch size "
             "(numbers: mean shift in standard deviations; categories: share of rows moved to the rarest one).",
             *[f"- {note}" for note in calibration.notes]]
    for size in calibration.sizes:
        found = [*size.columns, *([size.prediction] if size.prediction else [])]
        lines += ["", f"Batches of {size.current_rows} rows ({size.splits} splits"
                  + (", conservative" if size.conservative else "") + "):", "",
                  "| column | test | null median | threshold | detected |", "|---|---|---|---|---|"]
        lines += [f"| {c.column} | {c.method_display} | {c.null_median:.4g} | {c.threshold:.4g} | "
                  + ("not within the tested shifts" if c.detectable is None and c.detectable_unit else
                     "not measured" if c.detectable is None else f"{c.detectable} {c.detectable_unit}") + " |"
                  for c in found]
    return "\n".join(lines) + "\n"
