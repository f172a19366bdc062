"""Monitoring commands: ``drift`` (measure and decide) and ``retrain`` (act on a retrain decision)."""

from __future__ import annotations

from pathlib import Path

import click

from ..monitor import DriftResult, drift, retrain
from .output import console, emit, table
from .root import json_option, main, spec_of


@main.command("drift")
@click.option("--env", metavar="ENV", help="Environment whose model is checked (default: the furthest that runs one).")
@click.option("--current", metavar="SOURCE",
              help="CSV or Parquet path or URI of current data (default: the inference log of ENV's model).")
@click.option("--window", metavar="DURATION",
              help="Only rows this recent, e.g. 7d or 12h (default for the log: [tool.gitops-ml.drift] window).")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the reports go (default: <project>/.gitops-ml/drift/).")
@json_option
@click.pass_context
def drift_command(ctx: click.Context, env: str | None, current: str | None, window: str | None,
                  output_dir: Path | None) -> None:
    """Compare what ENV's model is asked with what it was trained on, and decide what to do.

    Decisions: none, retrain, escalate, insufficient_data. Each exits 0; the decision is in
    the JSON summary and in $GITHUB_OUTPUT as `decision`.
    """
    spec = spec_of(ctx)
    console.info(f"drift of {spec.model_name} ({env or 'furthest environment'}) on {current or 'the inference log'}")
    result = drift(spec, env, current, window, output_dir)
    emit(result.as_dict(), lambda: _print_drift(result))
    return result


def _print_drift(result: DriftResult) -> None:
    console.out.print(f"{result.model_name} v{result.model_version} in {result.env}: decision [bold]"
                      f"{result.decision}[/bold]")
    for reason in result.reasons:
        console.out.print(f"  {reason.grade:>17}  {reason.signal}: {reason.message}", markup=False)
    if result.features:
        table(f"{len(result.drifted)} of {len(result.features)} features drifted",
              ["column", "type", "test", "score", "threshold", "drifted"],
              [(f.column, f.kind, f.method, f.score, f.threshold, "yes" if f.drifted else "")
               for f in result.features])
    if result.files:
        for label, path in (("report", result.files.report_html), ("summary", result.files.summary_json),
                            ("title", result.files.title_file), ("body", result.files.body_file)):
            if path:
                console.out.print(f"{label}: {path}", markup=False)


@main.command("retrain")
@click.option("--env", metavar="ENV", required=True, help="Environment whose model drifted.")
@click.option("--branch", is_flag=True, help="Commit the promotion on a new branch (as `promote --branch`).")
@json_option
@click.pass_context
def retrain_command(ctx: click.Context, env: str, branch: bool) -> None:
    """On a `retrain` decision: train with the labelled recent data, gate, and promote to the first
    environment (staging by default).

    Outcomes: promoted (a pull request's manifest, title and body are written), escalate (an
    issue's title and body: gates failed or no labelled data), skipped (no retrain decision).
    Each exits 0; the outcome is in $GITHUB_OUTPUT as `outcome`.
    """
    spec = spec_of(ctx)
    result = retrain(spec, env, branch=branch)

    def render() -> None:
        console.out.print(f"retrain {spec.model_name} for {result.env}: [bold]{result.outcome}[/bold]")
        for reason in result.reasons:
            console.out.print(f"  {reason}", markup=False)
        if result.evaluation is not None:
            table(f"v{result.new_version} gates", ["gate", "value", "threshold", "outcome"],
                  [(g.name, g.value, g.threshold, g.passed) for g in result.evaluation.gates])
        for label, path in (("title", result.title_file), ("body", result.body_file)):
            if path:
                console.out.print(f"{label}: {path}", markup=False)

    emit(result.as_dict(), render)
    return result
