"""Monitoring commands: ``drift`` (measure and decide), ``feedback join`` (labels back onto the logged
predictions) and ``retrain`` (act on a retrain decision)."""

from __future__ import annotations

from pathlib import Path

import click

from ..monitor import DriftResult, drift, retrain
from ..monitor.calibration import Recalibrated, recalibrate
from ..monitor.drift import unreleased
from ..monitor.reference import NoRelease
from .output import console, emit, table
from .root import json_option, main, spec_of


@main.group("drift", invoke_without_command=True)
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
    the JSON summary and in $GITHUB_OUTPUT as `decision`. No release in ENV yet: decision
    no_release, a notice, exit 0. A log that shows nothing at all for the window (absent, empty,
    only smoke traffic): insufficient_data with a warning saying why. A log location that cannot be
    read (no driver, credentials refused): exit 1 naming it.
    """
    if ctx.invoked_subcommand:  # `drift calibrate`: the options above belong to the drift run
        return
    spec = spec_of(ctx)
    console.info(f"drift of {spec.model_name} ({env or 'furthest environment'}) on {current or 'the inference log'}")
    try:
        result = drift(spec, env, current, window, output_dir)
    except NoRelease as exc:
        found = unreleased(spec, env, str(exc), output_dir)
        emit(found.as_dict(), lambda: console.out.print(f"{spec.model_name}: {found.message}; nothing to monitor",
                                                        markup=False))
        return found
    emit(result.as_dict(), lambda: _print_drift(result))
    return result


@drift_command.command("calibrate")
@click.argument("version", type=int, required=False)
@json_option
@click.pass_context
def calibrate_command(ctx: click.Context, version: int | None) -> None:
    """Calibrate VERSION's drift thresholds on its training rows and log them with its run.

    VERSION defaults to the one the furthest environment runs. `train` already does this for
    every new version; this is for versions trained before, or after changing drift settings.
    """
    spec = spec_of(ctx)
    found = recalibrate(spec, version)
    emit(found.as_dict(), lambda: _print_calibration(found))


def _print_calibration(found: Recalibrated) -> None:
    console.out.print(f"{found.model_name} v{found.version}: drift calibration logged to {found.artifact}",
                      markup=False)
    for note in found.calibration.notes:
        console.out.print(f"  note: {note}", markup=False)
    for size in found.calibration.sizes:
        rows = [(c.column, c.method_display, c.null_median, c.threshold,
                 "" if c.detectable is None else f"{c.detectable} {c.detectable_unit}")
                for c in [*size.columns, *([size.prediction] if size.prediction else [])]]
        table(f"{size.current_rows}-row batches ({size.splits} splits, false alarms <= "
              f"{found.calibration.false_alarm_rate:.0%})", ["column", "test", "null median", "threshold",
                                                             "detected 9 in 10"], rows)


def _print_drift(result: DriftResult) -> None:
    console.out.print(f"{result.model_name} v{result.model_version} in {result.env}: decision [bold]"
                      f"{result.decision}[/bold]")
    if result.saw_nothing:
        console.err(f"warning: monitoring saw nothing: {result.saw_nothing}")
    for reason in result.reasons:
        console.out.print(f"  {reason.grade:>17}  {reason.signal}: {reason.message}", markup=False)
    if result.features:
        table(f"{len(result.drifted)} of {len(result.features)} features drifted",
              ["column", "type", "test", "score", "threshold", "past", "drifted"],
              [(f.column, f.kind, f.method, f.score, f.threshold, f.past, "yes" if f.drifted else "")
               for f in result.features])
    if result.files:
        for label, path in (("report", result.files.report_html), ("summary", result.files.summary_json),
                            ("title", result.files.title_file), ("body", result.files.body_file)):
            if path:
                console.out.print(f"{label}: {path}", markup=False)


@main.command("retrain")
@click.option("--env", metavar="ENV", required=True, help="Environment whose model drifted.")
@click.option("--branch", is_flag=True, help="Commit the promotion on a new branch (as `promote --branch`).")
@click.option("--promote/--no-promote", "promote", default=True, envvar="RETRAIN_PROMOTE", show_default=True,
              help="Promote a version that passes (env RETRAIN_PROMOTE). --no-promote leaves it to the caller "
                   "(outcome trained), which pushes its image first and promotes with the digest.")
@json_option
@click.pass_context
def retrain_command(ctx: click.Context, env: str, branch: bool, promote: bool) -> None:
    """On a `retrain` decision: train with the labelled recent data, gate, and promote to the first
    environment (staging by default).

    Outcomes: promoted (a pull request's manifest, title and body are written), trained (with
    --no-promote: the version passed; the title and the body's retraining part are written), escalate (an
    issue's title and body: gates failed or no labelled data), skipped (no retrain decision).
    Each exits 0; the outcome is in $GITHUB_OUTPUT as `outcome`.
    """
    spec = spec_of(ctx)
    result = retrain(spec, env, branch=branch, promote=promote)

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


@main.group("feedback")
def feedback_group() -> None:
    """Labels that arrive later, joined back onto what the served model predicted."""


@feedback_group.command("join")
@click.argument("labels")
@click.option("--on", "key", metavar="KEY",
              help="Join key: request_id (default) or the project's [tool.gitops-ml] id_column.")
@click.option("--window", default="30d", show_default=True, metavar="DURATION",
              help="Logged predictions this recent are joined.")
@click.option("-o", "--output", metavar="URI",
              help="CSV or Parquet path or URI to write (default: [tool.gitops-ml.drift] feedback).")
@json_option
@click.pass_context
def feedback_join_command(ctx: click.Context, labels: str, key: str | None, window: str,
                          output: str | None) -> None:
    """Join LABELS (CSV or Parquet: the key and the target) with the production predictions of the
    inference log into the labelled recent data that drift and retrain read.

    Reports matched, unmatched and duplicate keys. A key labelled twice is refused (exit 1), the keys
    named; the output is written whole or not at all.
    """
    from ..monitor.feedback import join

    spec = spec_of(ctx)
    result = join(spec, labels, key, window, output)
    emit(result.as_dict(), lambda: table(
        f"feedback joined on {result.on} into {result.output}", ["", ""],
        [("labels", f"{result.label_rows} rows in {result.labels}"),
         ("logged predictions", f"{result.logged_rows} production rows in the last {result.window}"),
         ("matched", result.matched), ("labels with no prediction", result.unmatched_labels),
         ("predictions with no label", result.unlabelled_predictions),
         ("keys predicted more than once (newest kept)", result.duplicate_logged_keys)]))
    return result
