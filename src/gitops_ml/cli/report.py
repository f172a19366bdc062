"""The one place the engine's results become GitHub Actions side effects: step outputs, the step
summary and ``::error`` annotations. Stage functions return typed results and never write these;
the command group calls :func:`publish` once per command, after it returns or fails a check.
Outside GitHub Actions (no ``$GITHUB_OUTPUT``, no ``$GITHUB_STEP_SUMMARY``) it does nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from .. import github
from ..config import Spec
from ..data import MAX_LISTED_VALUES

# Commands whose failed check still carries a result worth reporting (a failed gate, a failed smoke...).
REPORTED_ON_FAILURE = frozenset({"validate", "evaluate", "verify", "smoke", "feedback", "reconcile", "replay"})


def publish(ctx: click.Context, command: str | None, result: object, spec: Spec | None, failed: bool = False) -> None:
    """Hand ``result`` of ``command`` to GitHub, when running in a GitHub Actions job."""
    reporter = REPORTERS.get(command or "")
    if result is None or reporter is None:
        return
    if failed and command not in REPORTED_ON_FAILURE:
        return
    # Workflow commands work on either stream; keep stdout one JSON object under --json. Outputs and
    # summaries go to the files GitHub names ($GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY) when it names them;
    # annotations only inside a job, where something reads them.
    stream = sys.stderr if ctx.meta.get("json") else sys.stdout
    reporter(result, spec, lambda line: click.echo(line, file=stream) if github.in_actions() else None)


def _outputs(values: dict[str, object]) -> None:
    for name, value in values.items():
        github.set_output(name, "" if value is None else str(value))


def _rows_listed(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:MAX_LISTED_VALUES])
    return shown + (f" (+{len(rows) - MAX_LISTED_VALUES} more)" if len(rows) > MAX_LISTED_VALUES else "")


def validation(report, spec: Spec | None, echo: Callable[[str], None]) -> None:
    """``::error`` lines on the data file and a table in the step summary."""
    for failure in report.failures:
        echo(
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
                (f.column, f.check, f.count, ", ".join(f.values[:MAX_LISTED_VALUES]), _rows_listed(f.rows))
                for f in report.failures
            ],
        )
    github.write_summary(summary)


# On a runner the embedded store ends with the job: the version cannot be promoted from anywhere.
EMBEDDED_IN_ACTIONS = (
    "MLFLOW_TRACKING_URI is not set: v{version} was registered in this job's embedded MLflow store, "
    "which ends with the job, so it cannot be promoted. Set the MLFLOW_TRACKING_URI secret to a shared "
    "tracking server (see the README's secrets table)."
)


def training(result, spec: Spec | None, echo: Callable[[str], None]) -> None:
    shared = spec is not None and not spec.embedded_registry
    _outputs({"version": result.version, "shared_registry": str(shared).lower()})
    if not shared:
        echo(github.annotation("warning", EMBEDDED_IN_ACTIONS.format(version=result.version),
                               title="MLFLOW_TRACKING_URI is not set"))  # fmt: skip
    github.write_summary(
        f"### Trained {result.model_name} v{result.version}\n\n"
        + github.markdown_table(["metric", "value"], [(k, f"{v:.4f}") for k, v in sorted(result.metrics.items())])
    )


def evaluation(result, spec: Spec | None, echo: Callable[[str], None]) -> None:
    for notice in result.notices:
        title = "Slice gates" if notice.startswith("slice ") else "Regression gates skipped"
        echo(github.annotation("notice", notice, title=title))
    for gate in result.gates:
        if not gate.passed and gate.kind in SLICE_KINDS:
            echo(github.annotation("error", f"{gate.name}: {gate.value:.4f}", title="Slice gate failed"))
    _outputs({"passed": str(result.passed).lower()})
    github.write_summary(
        f"### Gates for {spec.model_name} v{result.version}: {'pass' if result.passed else 'FAIL'}\n\n"
        + github.markdown_table(
            ["gate", "value", "outcome"],
            [(g.name, f"{g.value:.4f}", "pass" if g.passed else "FAIL") for g in result.gates],
        )
        + (_slices_summary(result) if result.slices is not None else "")
    )


SLICE_KINDS = frozenset({"group-floor", "group-ceiling", "group-gap", "parity"})


def _slices_summary(result) -> str:
    from .. import slices

    headers, rows = slices.table(result.slices, result.baseline_slices)
    baseline = f" (now: {result.against} v{result.baseline_version}, same rows)" if result.baseline_slices else ""
    return (
        f"\n#### {result.slices.metric} by group{baseline}\n\n"
        f"Groups under {result.slices.min_rows} held-out rows are listed as too small to judge and left out "
        "of the slice gates.\n\n"
        + github.markdown_table(headers, [[slices.number(v) for v in row] for row in rows])
        + "\n"
        + github.markdown_table(slices.GAP_HEADERS, [[slices.number(v) for v in row] for row in
                                                     slices.gap_rows(result.slices)])
    )  # fmt: skip


def packaging(result, spec: Spec | None, echo: Callable[[str], None]) -> None:
    _outputs({"bento_tag": result.bento_tag, **({"archive": result.archive} if result.archive else {})})
    github.write_summary(
        f"### Bento `{result.bento_tag}`\n\nmodel version {result.model_version}"
        + (f", archive `{Path(result.archive).name}`" if result.archive else "")
        + "\n"
    )


def smoking(result, spec: Spec | None, echo: Callable[[str], None]) -> None:
    github.write_summary(
        f"### Smoke test of `{result.url}`: {'pass' if result.passed else 'FAIL'}\n\n"
        + github.markdown_table(
            ["check", "outcome", "detail"], [(c.name, "pass" if c.passed else "FAIL", c.detail) for c in result.checks]
        )
    )


def promotion(result, spec: Spec | None, echo: Callable[[str], None]) -> None:
    from ..release.promote import promotion_branch

    _outputs(
        {
            "title": result.title,
            "body_file": result.body_file,
            "branch": result.branch or promotion_branch(result.env, result.version),
            "manifest": result.manifest_path,
            "version": result.version,
            "environment": result.env,
        }
    )


def verification(result, spec: Spec | None, echo: Callable[[str], None]) -> None:
    for check in result.checks:
        for reason in check.reasons:
            echo(github.annotation("error", reason, file=check.path, title=f"release {check.env}"))
        for notice in check.notices:
            echo(github.annotation("notice", notice, file=check.path, title=f"release {check.env}"))
    rows = [(c.env, c.change, c.version, "pass" if c.passed else "FAIL") for c in result.checks]
    outcome = "pass" if result.passed else "FAIL"
    github.write_summary(
        f"### Release verification against `{result.base}`: {outcome}\n\n"
        + (
            github.markdown_table(["environment", "change", "version", "outcome"], rows)
            if rows
            else "No release manifest changed.\n"
        )
        + "".join(f"- {reason}\n" for reason in result.reasons)
        + "".join(f"- notice: {notice}\n" for notice in result.notices)
    )


def deployment(result, spec: Spec | None, echo: Callable[[str], None]) -> None:
    _outputs(
        {
            "image": result.image or "",
            "bento_tag": result.bento_tag or "",
            "version": "" if result.version is None else result.version,
            "changed": str(result.alias_changed).lower(),
            "canary_version": "" if result.canary_version is None else result.canary_version,
        }
    )
    from .release import canary_line

    version = "nothing" if result.version is None else f"v{result.version}"
    canary = canary_line(result)
    github.write_summary(
        f"### Deployed {spec.model_name} to {result.env}: {version}\n\n"
        f"image `{result.image or '-'}`, bento `{result.bento_tag or '-'}`\n" + (f"\n{canary}\n" if canary else "")
    )


def reconciliation(result, spec: Spec | None, echo: Callable[[str], None]) -> None:
    """The schedule's re-assertion: a table of every alias, and an error annotation per refusal, so a
    failed scheduled run says on its page which environment and why."""
    for check in result.refused:
        echo(github.annotation("error", "; ".join(check.reasons), title=f"alias {check.env}"))
    rows = [(c.env, _version(c.git_version), _version(c.alias_before), _version(c.alias_after), c.action)
            for c in result.checks]
    outcome = f"{len(result.refused)} refused" if result.refused else "every alias follows git"
    github.write_summary(
        f"### Aliases re-asserted from git: {outcome}\n\n"
        + github.markdown_table(["environment", "git", "alias before", "alias after", "action"], rows)
        + "".join(f"- {c.env}: {reason}\n" for c in result.refused for reason in c.reasons)
    )


def _version(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


def changed_environments(result: dict, spec: Spec | None, echo: Callable[[str], None]) -> None:
    """The ``environments`` output deploy.yml's matrix reads (and ``removed``, the environments whose
    release is gone), written here rather than redirected from stdout, so nothing else a shell or make
    prints can corrupt them."""
    _outputs({"environments": json.dumps(result["environments"]), "removed": json.dumps(result["removed"]),
              "registry": result["registry"]})


def image_building(plan, spec: Spec | None, echo: Callable[[str], None]) -> None:
    """``build`` says whether the job builds and pushes; with it, what to build and how to name it;
    without it, the digest the promotion takes unchanged."""
    if not plan.build:
        _outputs({"build": "false", "version": plan.version, "image": plan.image, "registry": plan.registry,
                  "digest": plan.digest, "takes_from": plan.takes_from})
        github.write_summary(f"### Image of {spec.model_name} v{plan.version} for {plan.env}\n\n"
                             f"No build: {plan.env} takes the image {plan.takes_from} runs, "
                             f"`{plan.digest}`, unchanged.\n")
        return
    context = plan.context
    _outputs(
        {
            "build": "true",
            "image": context.image,
            "registry": context.registry,
            "bento_tag": context.bento_tag,
            "version": context.version,
            "context": context.folder,
            "dockerfile": context.dockerfile,
            "labels": "\n".join(f"{key}={value}" for key, value in context.labels.items()),
        }
    )
    github.write_summary(
        f"### Image of {spec.model_name} v{context.version} for {context.env}\n\n"
        f"`{context.image}` from bento `{context.bento_tag}`\n"
    )


def drift_check(result, spec: Spec | None, echo: Callable[[str], None]) -> None:
    from ..monitor import outputs
    from ..monitor.drift import Unreleased

    files = result.files
    if isinstance(result, Unreleased):  # nothing released: a notice, not a failure every scheduled run
        echo(github.annotation("notice", f"{result.message}; nothing to monitor yet",
                               title=f"drift: no release in {result.env or 'any environment'}"))
        _outputs({"decision": result.decision, "monitored": "false",
                  "summary": files.summary_json if files else None})
        if files is not None:
            github.write_summary(files.summary_md.read_text(encoding="utf-8"))
        return
    if files is None:
        return
    if result.saw_nothing:  # a release, and not one row to look at: say so loudly, and why
        echo(github.annotation("warning", f"monitoring saw nothing: {result.saw_nothing}",
                               title=f"drift: no traffic of {result.model_name} v{result.model_version} seen"))
        github.write_summary(f"### Monitoring saw nothing\n\n> [!WARNING]\n> The drift check of "
                             f"{result.model_name} v{result.model_version} in {result.env} read no row at all, so "
                             f"it measured nothing: {result.saw_nothing}.\n")
    github.write_summary(files.summary_md.read_text(encoding="utf-8"))
    _outputs({"decision": result.decision, "summary": files.summary_json, "drifted_features": len(result.drifted),
              "monitored": str(result.monitored).lower()})
    if files.report_html:
        _outputs({"report": files.report_html})
    if files.title_file and files.body_file:
        _outputs({"title": outputs.title(result), "title_file": files.title_file, "body_file": files.body_file})


def retraining(result, spec: Spec | None, echo: Callable[[str], None]) -> None:
    drift_check(result.drift, spec, echo)  # retrain measured drift first, as `drift` would have reported
    if result.promotion is not None:
        promotion(result.promotion, spec, echo)
    _outputs({"outcome": result.outcome})
    if result.outcome == "trained":
        # What the Promote workflow needs to open the retraining pull request once the image is pushed.
        _outputs({"version": result.new_version, "environment": result.promote_env,
                  "title": result.title_file.read_text(encoding="utf-8").strip(),
                  "body": result.body_file.read_text(encoding="utf-8")})
    if result.outcome == "escalate" and result.title_file and result.body_file:
        # The issue replaces the pull request drift announced: point every output at it.
        _outputs(
            {
                "title": result.title_file.read_text(encoding="utf-8").strip(),
                "title_file": result.title_file,
                "issue_title_file": result.title_file,
                "body_file": result.body_file,
                "issue_body_file": result.body_file,
            }
        )
    github.write_summary(
        f"### Retrain {spec.model_name} for {result.env}: **{result.outcome}**\n\n"
        + "".join(f"- {r}\n" for r in result.reasons)
    )


def feedback_joined(result, spec: Spec | None, echo: Callable[[str], None]) -> None:
    """The join's counts in the summary; refused duplicates and an empty join as ``::error`` lines."""
    if result.duplicate_label_keys:
        echo(github.annotation("error", f"{len(result.duplicate_label_keys)} keys labelled more than once: "
                               + ", ".join(result.duplicate_label_keys[:MAX_LISTED_VALUES]),
                               file=result.labels, title=f"feedback: duplicate {result.on}"))
    elif not result.written:
        echo(github.annotation("error", f"no label matched a production prediction logged in the last "
                               f"{result.window}", file=result.labels, title="feedback: nothing joined"))
    _outputs({"matched": result.matched, "output": result.output if result.written else ""})
    outcome = f"{result.matched} labelled rows written to `{result.output}`" if result.written else "nothing written"
    github.write_summary(
        f"### Feedback joined on `{result.on}`: {outcome}\n\n"
        + github.markdown_table(["", "count"], [
            ("labels", result.label_rows), ("production predictions logged", result.logged_rows),
            ("matched", result.matched), ("labels with no prediction", result.unmatched_labels),
            ("predictions with no label", result.unlabelled_predictions),
            ("keys predicted more than once (newest kept)", result.duplicate_logged_keys),
            ("keys labelled more than once (refused)", len(result.duplicate_label_keys))])
    )


def replaying(result, spec: Spec | None, echo: Callable[[str], None]) -> None:
    """The replay's comparison in the step summary, an ``::error`` per failed replay gate, and outputs."""
    from ..release.pr import replay_section
    from ..release.replay import outcome

    for gate in result.failed_gates:
        echo(github.annotation("error", f"{gate.name}: {outcome(gate)}",
                               title=f"replay of {result.env} traffic"))
    _outputs({"passed": str(result.passed).lower(), "rows_replayed": result.rows_replayed,
              "agreement": "" if result.agreement is None else f"{result.agreement:.6f}"})
    github.write_summary(replay_section(result))


def canary_step(result, spec: Spec | None, echo: Callable[[str], None]) -> None:
    """``canary status``: its recommendation as an output (the summary is written by the status itself);
    ``canary complete|abort``: the pull request's title, body file and branch, as promote's."""
    if hasattr(result, "recommendation"):
        _outputs({"recommendation": result.recommendation, "environment": result.env})
        return
    from ..release.canary import finish_branch

    _outputs(
        {
            "title": result.title,
            "body_file": result.body_file,
            "branch": result.branch or finish_branch(result.env, result.canary_version, result.action),
            "action": result.action,
            "environment": result.env,
        }
    )


REPORTERS: dict[str, Callable[[object, Spec | None, Callable[[str], None]], None]] = {
    "validate": validation,
    "train": training,
    "evaluate": evaluation,
    "package": packaging,
    "smoke": smoking,
    "promote": promotion,
    "verify": verification,
    "changed-environments": changed_environments,
    "image-context": image_building,
    "image-registry": lambda result, spec, echo: _outputs(result),
    "deploy": deployment,
    "reconcile": reconciliation,
    "drift": drift_check,
    "feedback": feedback_joined,
    "retrain": retraining,
    "replay": replaying,
    "canary": canary_step,
}
