"""The level-0 pipeline: validate, schema infer, train, evaluate, card."""

from __future__ import annotations

from pathlib import Path

import click

from .. import cards, github
from ..data import MAX_LISTED_VALUES, ValidationReport, check_data, read_table
from ..errors import CheckFailed, ConfigError
from ..evaluate import evaluate
from ..schemas import write_module
from ..train import train
from .output import console, emit, table
from .root import json_option, main, spec_of


@main.command()
@click.argument("path", required=False)
@json_option
@click.pass_context
def validate(ctx: click.Context, path: str | None) -> None:
    """Check a data file (default: the training data) against the project's pandera contract.

    Every failure is reported at once: column, check, failing values and rows.
    """
    spec = spec_of(ctx)
    _, report = check_data(spec, path)
    emit(report.as_dict(), lambda: _print_report(report))
    if github.in_actions():
        _annotate(report)
    if not report.passed:
        raise CheckFailed(
            f"{report.source}: {sum(f.count for f in report.failures)} failing values in {len(report.failures)} checks",
            report,
        )


def _print_report(report: ValidationReport) -> None:
    if report.passed:
        console.out.print(f"{report.source}: {report.rows} rows x {report.columns} columns pass the contract")
        return
    table(
        f"{report.source}: {len(report.failures)} failing checks",
        ["column", "check", "count", "failing values", "rows"],
        [(f.column, f.check, f.count, ", ".join(f.values[:MAX_LISTED_VALUES]), _rows(f.rows)) for f in report.failures],
    )


def _rows(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:MAX_LISTED_VALUES])
    return shown + (f" (+{len(rows) - MAX_LISTED_VALUES} more)" if len(rows) > MAX_LISTED_VALUES else "")


def _annotate(report: ValidationReport) -> None:
    """``::error`` lines on the data file and a table in the step summary."""
    for failure in report.failures:
        click.echo(
            github.annotation(
                "error",
                f"{failure.count} rows fail '{failure.check}': {', '.join(failure.values[:MAX_LISTED_VALUES])}",
                file=report.source,
                title=f"data contract: {failure.column}",
            )
        )
    outcome = "passes" if report.passed else f"fails {len(report.failures)} checks"
    summary = f"### Data contract: `{report.source}` {outcome}\n\n{report.rows} rows, {report.columns} columns\n\n"
    if report.failures:
        summary += github.markdown_table(
            ["column", "check", "count", "failing values", "rows"],
            [
                (f.column, f.check, f.count, ", ".join(f.values[:MAX_LISTED_VALUES]), _rows(f.rows))
                for f in report.failures
            ],
        )
    github.write_summary(summary)


@main.group()
def schema() -> None:
    """Data contracts."""


@schema.command("infer")
@click.argument("path")
@click.option("--target", required=True, help="The column the model predicts.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("schema.py"),
    show_default=True,
    help="Where to write the module.",
)
@click.option("--class-name", default="DataSchema", show_default=True)
@json_option
def schema_infer(path: str, target: str, output: Path, class_name: str) -> None:
    """Write a starting pandera DataFrameModel inferred from PATH, to review before committing."""
    frame = read_table(path)
    if target not in frame.columns:
        raise ConfigError(f"{path}: no column {target!r}; columns are {', '.join(map(str, frame.columns))}")
    written = write_module(frame, target, output, class_name)
    emit(
        {"path": str(written), "columns": len(frame.columns), "rows": len(frame)},
        lambda: console.out.print(
            f"wrote {written}: {len(frame.columns)} columns from {len(frame)} rows; "
            "review the bounds and categories, then point [tool.gitops-ml] schema at it"
        ),
    )


# On a runner the embedded store ends with the job: the version cannot be promoted from anywhere.
EMBEDDED_IN_ACTIONS = (
    "MLFLOW_TRACKING_URI is not set: v{version} was registered in this job's embedded MLflow store, "
    "which ends with the job, so it cannot be promoted. Set the MLFLOW_TRACKING_URI secret to a shared "
    "tracking server (see the README's secrets table)."
)


@main.command("train")
@click.option("--data", help="Data file or URI (default: the spec's training data).")
@json_option
@click.pass_context
def train_command(ctx: click.Context, data: str | None) -> None:
    """Validate, fit the project's model, log it to MLflow and register a new version."""
    spec = spec_of(ctx)
    console.info(f"training {spec.model_name} ({spec.task}) on {data or spec.data}")
    try:
        result = train(spec, data)
    except CheckFailed as failed:
        report = failed.result
        if isinstance(report, ValidationReport):
            emit(report.as_dict(), lambda: _print_report(report))
        raise
    emit(
        result.as_dict(),
        lambda: table(
            f"{result.model_name} v{result.version} (run {result.run_id})",
            ["metric", "value"],
            sorted(result.metrics.items()),
        ),
    )
    if github.in_actions():
        github.set_output("version", str(result.version))
        github.set_output("shared_registry", str(not spec.embedded_registry).lower())
        if spec.embedded_registry:
            print(github.annotation("warning", EMBEDDED_IN_ACTIONS.format(version=result.version),
                                    title="MLFLOW_TRACKING_URI is not set"))  # fmt: skip
        github.write_summary(
            f"### Trained {result.model_name} v{result.version}\n\n"
            + github.markdown_table(["metric", "value"], [(k, f"{v:.4f}") for k, v in sorted(result.metrics.items())])
        )


@main.command("evaluate")
@click.argument("version", required=False)
@click.option(
    "--against",
    "against",
    metavar="ENV",
    help="Compare with the model ENV runs (default: the furthest environment that runs one).",
)
@json_option
@click.pass_context
def evaluate_command(ctx: click.Context, version: str | None, against: str | None) -> None:
    """Score a registered version (default: the newest) on its held-out data and apply the gates."""
    spec = spec_of(ctx)
    result = evaluate(spec, version, against)

    def render() -> None:
        rows = [(m, v, result.baseline_metrics.get(m)) for m, v in sorted(result.metrics.items())]
        baseline = f"{result.against} v{result.baseline_version}" if result.baseline_version else "baseline"
        table(f"{spec.model_name} v{result.version}", ["metric", "candidate", baseline], rows)
        table(
            "gates",
            ["gate", "value", "threshold", "outcome"],
            [(g.name, g.value, g.threshold, g.passed) for g in result.gates],
        )
        console.out.print("all gates pass" if result.passed else "a gate FAILED")
        for notice in result.notices:
            console.info(notice)

    emit(result.as_dict(), render)
    if github.in_actions():
        for notice in result.notices:
            print(github.annotation("notice", notice, title="Regression gates skipped"))
        github.set_output("passed", str(result.passed).lower())
        github.write_summary(
            f"### Gates for {spec.model_name} v{result.version}: "
            f"{'pass' if result.passed else 'FAIL'}\n\n"
            + github.markdown_table(
                ["gate", "value", "outcome"],
                [(g.name, f"{g.value:.4f}", "pass" if g.passed else "FAIL") for g in result.gates],
            )
        )
    if not result.passed:
        failed = [g.name for g in result.gates if not g.passed]
        raise CheckFailed(f"v{result.version} fails {len(failed)} gate(s): {'; '.join(failed)}", result)


@main.command("card")
@click.argument("version", required=False)
@json_option
@click.pass_context
def card_command(ctx: click.Context, version: str | None) -> None:
    """Write the model card of a version (default: the newest) into model_cards/."""
    spec = spec_of(ctx)
    card = cards.write_card(spec, version)
    emit(
        card.as_dict(),
        lambda: console.out.print(
            f"wrote {card.path}; {card.unfilled} section(s) marked {cards.UNFILLED_MARKER} for a person to complete"
        ),
    )
