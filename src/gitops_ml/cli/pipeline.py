"""The level-0 pipeline: validate, schema infer, train, evaluate, card."""

from __future__ import annotations

from pathlib import Path

import click

from .. import cards, comment, slices
from ..data import MAX_LISTED_VALUES, ValidationReport, check_data, read_table
from ..errors import CheckFailed, ConfigError
from ..evaluate import evaluate
from ..schemas import write_module
from ..train import train
from .output import console, emit, table
from .root import json_option, main, parse_version, spec_of


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
    if not report.passed:
        raise CheckFailed(
            f"{report.source}: {sum(f.count for f in report.failures)} failing values in {len(report.failures)} checks",
            report,
        )
    return report


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
    return result


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
    result = evaluate(spec, parse_version(version), against)

    def render() -> None:
        rows = [(m, v, result.baseline_metrics.get(m)) for m, v in sorted(result.metrics.items())]
        baseline = f"{result.against} v{result.baseline_version}" if result.baseline_version else "baseline"
        table(f"{spec.model_name} v{result.version}", ["metric", "candidate", baseline], rows)
        if result.slices is not None:
            headers, rows = slices.table(result.slices, result.baseline_slices)
            table(f"{spec.metric} by group (min {result.slices.min_rows} rows to judge)", headers, rows)
            table("gaps between judged groups", slices.GAP_HEADERS, slices.gap_rows(result.slices))
        table(
            "gates",
            ["gate", "value", "threshold", "outcome"],
            [(g.name, g.value, g.threshold, g.passed) for g in result.gates],
        )
        console.out.print("all gates pass" if result.passed else "a gate FAILED")
        for notice in result.notices:
            console.info(notice)

    emit(result.as_dict(), render)
    if not result.passed:
        failed = [g.name for g in result.gates if not g.passed]
        raise CheckFailed(f"v{result.version} fails {len(failed)} gate(s): {'; '.join(failed)}", result)
    return result


@main.command("card")
@click.argument("version", required=False)
@json_option
@click.pass_context
def card_command(ctx: click.Context, version: str | None) -> None:
    """Write the model card of a version (default: the newest) into model_cards/."""
    spec = spec_of(ctx)
    card = cards.write_card(spec, parse_version(version))
    emit(
        card.as_dict(),
        lambda: console.out.print(
            f"wrote {card.path}; {card.unfilled} section(s) marked {cards.UNFILLED_MARKER} for a person to complete"
        ),
    )


@main.command("pr-comment")
@click.argument("version", required=False)
@click.option("--outcomes", envvar="OUTCOMES", default="", show_envvar=True,
              help="The pipeline steps' outcomes: 'validate=success train=failure ...'.")
@click.option("--card-url", envvar="CARD_URL", default="", show_envvar=True,
              help="Where the uploaded model card can be downloaded (upload-artifact's artifact-url).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path(".gitops-ml/pr-comment.md"),
              show_default=True, help="The Markdown file to write.")
@json_option
@click.pass_context
def pr_comment_command(ctx: click.Context, version: str | None, outcomes: str, card_url: str, output: Path) -> None:
    """Write the pipeline's pull-request comment: VERSION's metrics against what production runs,
    its gates, links to its card, the drift reports and the run, and the step that failed if one did.
    Without VERSION (training registered none) the comment says so instead of showing metrics."""
    spec = spec_of(ctx)
    written = comment.pull_request_comment(spec, parse_version(version),
                                           comment.parse_outcomes(outcomes), comment.links_from_actions(card_url),
                                           output if output.is_absolute() else spec.root / output)  # fmt: skip
    emit(written.as_dict(), lambda: console.out.print(
        f"wrote {spec.display(str(written.path))}: {', '.join(written.sections)}"))
    return written
