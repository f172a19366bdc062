"""Promotion by pull request: promote, verify, deploy, status."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import gitutil, release
from ..errors import CheckFailed
from ..release.registry import image_registry
from .output import console, emit, table
from .root import json_option, main, parse_version, spec_of


@main.command("promote")
@click.argument("version", type=int)
@click.option("--to", "to", required=True, metavar="ENV", help="Environment to release VERSION to.")
@click.option("--branch", is_flag=True,
              help="Also create branch promote/ENV/vVERSION and commit the release.")
@click.option("--title", envvar="PROMOTE_TITLE", help="Pull request title (env PROMOTE_TITLE; default: "
              "'Promote <model> vN to ENV').")
@click.option("--extra-body", envvar="PROMOTE_EXTRA_BODY", default="", metavar="MARKDOWN",
              help="Markdown added to the pull request's body (env PROMOTE_EXTRA_BODY), such as why a retrained "
                   "version is proposed.")
@click.option("--base", default="main", show_default=True, metavar="BRANCH",
              help="With --branch: the branch the promotion branch starts from (else origin/BRANCH).")
@click.option("--allow-unfilled", is_flag=True,
              help="Write a release of the last environment although its model card still has FILL-IN "
                   "sections (it cannot pass verify until they are filled in).")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the title and body files go (default: .gitops-ml/promotion/).")
@click.option("--image-digest", envvar="IMAGE_DIGEST", default=None, metavar="sha256:HEX",
              help="Digest of the image pushed for VERSION (env IMAGE_DIGEST): release.yaml records it and the "
                   "environment's kustomization.yaml pins it. A later environment takes the digest the one "
                   "before it runs.")
@json_option
@click.pass_context
def promote_command(ctx: click.Context, version: int, to: str, branch: bool, title: str | None, extra_body: str,
                    base: str, allow_unfilled: bool, output_dir: Path | None, image_digest: str | None) -> None:
    """Write environments/ENV/release.yaml for VERSION and the pull request's title and body.

    Refuses (exit 1, nothing written) an unknown version, failed or unrecorded gates, a missing
    model card, a version ENV already runs, one the previous environment does not run now, a card with
    FILL-IN sections for the last environment (unless --allow-unfilled), or while another promotion to
    ENV is running. With --branch the branch starts from --base, whatever is checked out.
    """
    spec = spec_of(ctx)
    result = release.promote(spec, version, to, branch=branch, title=title or None, extra_body=extra_body,
                             output_dir=output_dir, base=base,
                             allow_unfilled=allow_unfilled, image_digest=image_digest or None)
    for warning in result.warnings:
        console.err(f"warning: {warning}")

    def render() -> None:
        console.out.print(f"wrote {spec.display(str(result.manifest_path))}: {result.title}")
        if result.overlay_path:
            console.out.print(f"wrote {spec.display(str(result.overlay_path))}: image pinned at {result.image_digest}")
        console.out.print(f"pull request title: {spec.display(str(result.title_file))}")
        console.out.print(f"pull request body:  {spec.display(str(result.body_file))}")
        if result.branch:
            console.out.print(f"committed on branch {result.branch} ({result.commit[:12]}); "
                              f"push it and open a pull request: git push -u origin {result.branch}")
        if result.card_unfilled:
            console.out.print(f"the model card has {result.card_unfilled} section(s) still to fill in")

    emit(result.as_dict(), render)
    return result


@main.command("replay")
@click.argument("version", required=False)
@click.option("--env", "env", default=None, metavar="ENV",
              help="Environment whose logged traffic is replayed (default: the last one, production).")
@click.option("--window", default=None, metavar="DURATION",
              help="How much recent traffic: 30m, 12h, 7d, 2w (default: [tool.gitops-ml.release] replay_window).")
@json_option
@click.pass_context
def replay_command(ctx: click.Context, version: str | None, env: str | None, window: str | None):
    """Send ENV's recently logged traffic through VERSION (default: the newest) offline and compare it with
    what ENV answered: agreement, the shift of the prediction distribution and, on rows whose labels came
    back, both models' primary metric. Exit 1 when a replay gate of [tool.gitops-ml.release] fails."""
    from ..release.pr import replay_section
    from ..release.replay import refusal, replay

    spec = spec_of(ctx)
    result = replay(spec, parse_version(version), env, window)

    def render() -> None:
        console.out.print(replay_section(result).rstrip(), markup=False)

    emit(result.as_dict(), render)
    if not result.passed:
        raise CheckFailed(refusal(result), result)
    return result


@main.command("verify")
@click.option("--base", default="origin/main", show_default=True, metavar="REF",
              help="What the pull request merges into.")
@json_option
@click.pass_context
def verify_command(ctx: click.Context, base: str) -> None:
    """Check every release manifest changed against REF; exit 1 with every reason listed.

    The required check on a promotion pull request.
    """
    spec = spec_of(ctx)
    result = release.verify(spec, base)

    def render() -> None:
        if not result.checks:
            console.out.print(f"no release manifest changed against {base}")
            return
        table(f"release manifests changed against {base}",
              ["environment", "change", "version", "on base", "outcome"],
              [(c.env, c.change, c.version, c.base_version, c.passed) for c in result.checks])
        for reason in result.reasons:
            console.out.print(f"  - {reason}")
        for notice in result.notices:
            console.out.print(f"  notice: {notice}")

    emit(result.as_dict(), render)
    if not result.passed:
        raise CheckFailed(f"{len(result.reasons)} problem(s): " + "; ".join(result.reasons), result)
    return result


def canary_line(result) -> str | None:
    """What deploy did to the canary's alias, when there is or was a canary."""
    alias = f"{result.env}-canary"
    if result.canary_version is not None:
        state = "moved to" if result.canary_alias_changed else "already at"
        return f"{result.env}: alias '{alias}' {state} v{result.canary_version} (the canary)"
    return f"{result.env}: alias '{alias}' removed (the canary ended)" if result.canary_alias_changed else None


@main.command("deploy")
@click.argument("env")
@click.option("--base", default="main", show_default=True, metavar="BRANCH",
              help="The default branch: deploy acts only on a manifest committed there and checked out.")
@json_option
@click.pass_context
def deploy_command(ctx: click.Context, env: str, base: str) -> None:
    """After a merge: point the registry alias ENV at the manifest's version, build or reuse its bento,
    and write the image reference for the containerize-and-push step. Running it again changes nothing."""
    spec = spec_of(ctx)
    result = release.deploy(spec, env, base)

    def render() -> None:
        if result.version is None:
            what = "alias removed" if result.alias_changed else "nothing to do"
            console.out.print(f"{env}: no release in git; {what}")
            return
        moved = (f"alias '{env}' moved from {_v(result.previous_version)} to v{result.version}"
                 if result.alias_changed else f"alias '{env}' already at v{result.version}")
        console.out.print(f"{env}: {moved}; bento {result.bento_tag}; image {result.image}")
        console.out.print(f"image reference written to {spec.display(str(result.image_file))}")
        if line := canary_line(result):
            console.out.print(line)

    emit(result.as_dict(), render)
    return result


@main.command("reconcile")
@click.option("--base", default="main", show_default=True, metavar="BRANCH",
              help="The default branch: only manifests committed there and checked out are re-asserted.")
@json_option
@click.pass_context
def reconcile_command(ctx: click.Context, base: str) -> None:
    """On a schedule: put every environment's registry alias back where its merged manifest says.
    Exit 1, naming each environment and why, when one cannot be put back (nothing is guessed)."""
    spec = spec_of(ctx)
    result = release.reconcile(spec, base)

    def render() -> None:
        rows = [[c.env, _v(c.git_version), _v(c.alias_before), _v(c.alias_after),
                 c.action + (": " + "; ".join(c.reasons) if c.reasons else "")] for c in result.checks]
        table(f"{spec.model_name}: aliases re-asserted from git",
              ["environment", "git", "alias before", "alias after", "action"], rows)

    emit(result.as_dict(), render)
    release.require_reconciled(result)
    return result


@main.command("changed-environments")
@click.option("--requested", envvar="REQUESTED", default="", metavar="ENV",
              help="Act on ENV only (the workflow's manual input; env REQUESTED).")
@click.option("--before", envvar="BEFORE", default="", metavar="COMMIT",
              help="The commit the push started from (github.event.before; env BEFORE). Forty zeros: the "
                   "branch's first push. Empty: the last commit alone.")
@click.option("--after", envvar="AFTER", default="HEAD", show_default=True, metavar="COMMIT",
              help="The commit the push ended at (env AFTER).")
@click.pass_context
def changed_environments_command(ctx: click.Context, requested: str, before: str, after: str) -> dict:
    """Print environments=<JSON list>, removed=<JSON list> and registry=<host> (where the released images
    are, for the registry login) for deploy.yml (in a job, also its outputs):
    REQUESTED, or those whose release manifest the push from BEFORE to AFTER changed (every commit of
    it), in the declared order; ``removed`` are those of them with no manifest left (a reverted first
    release: deploy removes the alias, and there is no image to build)."""
    spec = spec_of(ctx)
    folder = spec.environments_dir.relative_to(spec.root).as_posix()
    if requested:
        paths = []
    elif before:
        paths = gitutil.paths_changed_by_push(spec.root, before, after, folder)
    else:
        paths = gitutil.paths_changed_by_last_commit(spec.root, folder)
    environments = release.changed_environments(spec, requested, paths)
    removed = [env for env in environments if not release.manifest_path(spec, env).is_file()]
    registry = image_registry(spec)
    click.echo("environments=" + json.dumps(environments))
    click.echo("removed=" + json.dumps(removed))
    click.echo("registry=" + registry)
    return {"environments": environments, "removed": removed, "registry": registry}


@main.command("image-registry")
@click.pass_context
def image_registry_command(ctx: click.Context) -> dict:
    """Print registry=<host>: where the project's images are (release.image_repository), for a job's
    registry login (in a job, also its output)."""
    spec = spec_of(ctx)
    registry = image_registry(spec)
    click.echo("registry=" + registry)
    return {"registry": registry}


@main.command("image-context")
@click.argument("env")
@click.option("--version", "version", type=int, default=None, metavar="N",
              help="The version being promoted to ENV: for the first environment, write its "
                   "bento's build context; for a later one, name the digest it takes unchanged and build "
                   "nothing. Without it: ENV's released bento, to rebuild its image by hand.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Folder to write (default: .gitops-ml/image/ENV).")
@json_option
@click.pass_context
def image_context_command(ctx: click.Context, env: str, version: int | None, output: Path | None) -> None:
    """Write the container build context of a bento (its service, models and Dockerfile) and name its
    image and labels, for a builder to build and push (output build=true). A later environment of a
    promotion builds nothing (build=false, the digest it takes). Moves no alias, writes no manifest."""
    spec = spec_of(ctx)
    if version is None:
        context = release.image_context(spec, env, output)
        emit(context.as_dict(), lambda: _print_context(spec, context))
        return release.ImagePlan(context.env, context.version, context.image, context=context)
    plan = release.promotion_image(spec, version, env, output)
    if plan.build:
        emit(plan.as_dict(), lambda: _print_context(spec, plan.context))
    else:
        emit(plan.as_dict(), lambda: console.out.print(
            f"{plan.env}: v{plan.version} takes the image {plan.takes_from} runs, {plan.digest}, unchanged; "
            "nothing to build"))
    return plan


def _print_context(spec, context: release.ImageContext) -> None:
    console.out.print(f"{context.env}: build context of bento {context.bento_tag} (v{context.version}) in "
                      f"{spec.display(str(context.folder))}; image {context.image}")


@main.command("status")
@json_option
@click.pass_context
def status_command(ctx: click.Context) -> None:
    """What each environment runs per git, beside the registry aliases; divergence flagged."""
    spec = spec_of(ctx)
    result = release.status(spec)
    emit({"environments": [s.as_dict() for s in result]}, lambda: table(
        f"{spec.model_name}: environments",
        ["environment", "git", spec.metric, "since", "registry alias", "in sync", "note"],
        [(s.env, _v(s.version), s.metrics.get(spec.metric), _since(s), _v(s.alias_version),
          "?" if s.in_sync is None else ("yes" if s.in_sync else "NO"), s.note) for s in result]))
    unreachable = [s for s in result if s.in_sync is None]
    if unreachable:
        raise CheckFailed(unreachable[0].note, result)


def _v(version: int | None) -> str:
    return "nothing" if version is None else f"v{version}"


def _since(status: release.EnvironmentStatus) -> str:
    return f"{status.since_commit[:10]} ({status.since})" if status.since_commit else ""


@main.group("canary")
def canary_group() -> None:
    """A canary in the last environment (strategy = "canary"): compare it with the stable version on live
    traffic, then complete or abort it by a second pull request."""


@canary_group.command("status")
@click.option("--env", "env", default=None, metavar="ENV", help="Environment (default: the last one).")
@click.option("--window", default=None, metavar="DURATION",
              help="How much logged traffic: 30m, 12h, 1d (default: [tool.gitops-ml.release] canary_window).")
@json_option
@click.pass_context
def canary_status_command(ctx: click.Context, env: str | None, window: str | None):
    """Split ENV's inference log by version (stable vs canary) and compare: rows, answers and their shift,
    quality on rows whose labels came back. Writes .gitops-ml/canary-status.json and .md with the
    recommendation (complete, abort or wait); exit 0 whatever it recommends."""
    from ..release import canary

    spec = spec_of(ctx)
    result = canary.status(spec, env, window)
    path, _ = canary.write_status(spec, result)

    def render() -> None:
        console.out.print(canary.summary(result).rstrip(), markup=False)
        console.out.print(f"written to {spec.display(str(path))}")

    emit(result.as_dict(), render)
    return result


def _finish_command(action: str):
    @click.option("--env", "env", default=None, metavar="ENV", help="Environment (default: the last one).")
    @click.option("--branch", is_flag=True, help=f"Commit on a new branch canary/ENV/vN-{action}.")
    @click.option("--base", default="main", show_default=True, metavar="BRANCH",
                  help="With --branch: the branch it starts from (else origin/BRANCH).")
    @json_option
    @click.pass_context
    def command(ctx: click.Context, env: str | None, branch: bool, base: str):
        from ..release import canary

        spec = spec_of(ctx)
        result = canary.finish(spec, action, env, branch=branch, base=base)

        def render() -> None:
            console.out.print(f"{result.title}: {', '.join(result.changed)}")
            console.out.print(f"pull request body: {spec.display(str(result.body_file))}")
            if result.branch:
                console.out.print(f"committed on branch {result.branch} ({result.commit[:12]}); "
                                  f"push it and open a pull request: git push -u origin {result.branch}")

        emit(result.as_dict(), render)
        return result

    command.__doc__ = (
        "Write the pull request that completes the canary: canary.yaml becomes release.yaml (and the overlay)."
        if action == "complete" else
        "Write the pull request that aborts the canary: canary.yaml removed, the stable version keeps all traffic."
    )  # fmt: skip
    return canary_group.command(action)(command)


_finish_command("complete")
_finish_command("abort")
