"""The generated workflows, run: every job's ``run:`` steps in order inside a baked repository.

The stand-in for the GitHub runner (``tests/support/workflow_runner.py``) executes each workflow with
GitHub's file variables (``GITHUB_OUTPUT``, ``GITHUB_ENV``, ``GITHUB_PATH``, ``GITHUB_STEP_SUMMARY``,
``GITHUB_WORKSPACE``) and its expressions (``${{ }}`` in ``env``, ``with``, ``if``, outputs and
matrices). ``uses:`` steps are stood in for: the checkout is the bake (a git repository with a bare
``origin``), setup-python is this interpreter, upload-artifact asserts its paths exist and keeps them
for download-artifact. Steps that need GitHub itself (opening pull requests and issues, pushing images)
are skipped after their inputs are checked, and listed. A wrong path, a missing make target or a missing
output fails here, not on a team's first push.

Each test runs alone: a workflow's run is a module-scoped fixture that asks for the runs it needs
(Promote needs Train, Deploy needs Verify...), so ``-k deploy`` trains, promotes, verifies and deploys,
and the full module runs each workflow once.

Also here: the level-2 walk with the bake's own Makefile, and the bake's own tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gitops_ml.serve.inference_log import LogWriter

from .conftest import free_port
from .support.bake import bake, git, repository
from .support.workflow_runner import HOST_BIN, STEP_TIMEOUT, Runner, WorkflowRun, standin_python

pytestmark = pytest.mark.slow

SLUG = "customer-churn"
OWNER = "your-org"


@pytest.fixture(scope="module")
def python_bin(tmp_path_factory) -> Path:
    return standin_python(tmp_path_factory.mktemp("standin") / "venv")


@pytest.fixture(scope="module")
def level2(tmp_path_factory, python_bin) -> Runner:
    root = tmp_path_factory.mktemp("workflows")
    workspace = repository(bake(root, mlops_level="2", task="classification", python_version="3.12"))
    return Runner(workspace, python_bin, root / "scratch", {"PORT": str(free_port())}, repository=f"{OWNER}/{SLUG}")


def drifted_inference_log(project: Path, model_version: int, severity: str, rows: int = 600) -> list[Path]:
    """What a served model would have logged after the world changed, written by the served model's own
    writer (``LogWriter``), so the format is the product's."""
    from gitops_ml.example.generate import TARGET, drifted_batch

    frame = drifted_batch(rows, severity, seed=3)
    features = [
        {k: (None if v != v else v) for k, v in row.items()}
        for row in frame.drop(columns=[TARGET]).to_dict(orient="records")
    ]
    writer = LogWriter(
        project / "logs" / "inference",
        model_name=SLUG,
        model_version=model_version,
        data_fingerprint="",
        flush_seconds=0.05,
    )
    try:
        # The logged answer stands in for the model's: the batch's own label.
        assert writer.submit(features, [int(label) for label in frame[TARGET]]) == rows
        assert writer.flush(timeout=30), "the inference log writer did not drain"
    finally:
        writer.close()
    return writer.files


def labelled_feedback(project: Path, rows: int = 600) -> None:
    """Labelled recent rows where churn no longer follows the old pattern, and the spec pointing at them."""
    from gitops_ml.example.generate import drifted_batch

    drifted_batch(rows, "severe", seed=4).to_csv(project / "data" / "feedback.csv", index=False)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    section = "[tool.gitops-ml.drift]\n"
    pyproject.write_text(text.replace(section, section + 'feedback = "data/feedback.csv"\n'))


# == the level-2 workflows, in the order a team meets them ===================================================
# Each workflow's run is a module fixture: a test asks for the run it checks, and that run asks for the
# runs it needs, so every test passes alone and the module runs each workflow once.
def trained_version(train: WorkflowRun) -> int:
    """The version the Train workflow registered, as its summary states it."""
    found = re.search(rf"### Trained {SLUG} v(\d+)", train.job("train").summary)
    assert found, train.job("train").summary
    return int(found.group(1))


@pytest.fixture(scope="module")
def ci_run(level2) -> WorkflowRun:
    return level2.run("ci.yml", "push")


@pytest.fixture(scope="module")
def keepalive_run(level2) -> WorkflowRun:
    return level2.run("keepalive.yml", "workflow_dispatch")


@pytest.fixture(scope="module")
def train_run(level2) -> WorkflowRun:
    return level2.run("train.yml", "workflow_dispatch")


@pytest.fixture(scope="module")
def pipeline_run(level2) -> WorkflowRun:
    return level2.run("pipeline.yml", "pull_request", base_ref="main", ref="refs/pull/7/merge")


@pytest.fixture(scope="module")
def promote_run(level2, train_run) -> tuple[WorkflowRun, str]:
    """Promote the trained version to staging; then what create-pull-request does: the changes, committed
    on the branch it names. Returns the run and that branch."""
    version = trained_version(train_run)
    git(level2.workspace, "checkout", "-q", "main")
    run = level2.run("promote.yml", "workflow_dispatch", inputs={"version": version, "environment": "staging"})
    branch = f"promote/staging/v{version}"
    git(level2.workspace, "checkout", "-q", "-b", branch)
    git(level2.workspace, "add", "environments", "model_cards")
    git(level2.workspace, "commit", "-qm", f"Promote v{version} to staging")
    return run, branch


@pytest.fixture(scope="module")
def verify_run(level2, promote_run) -> WorkflowRun:
    _, branch = promote_run
    git(level2.workspace, "checkout", "-q", branch)
    return level2.run("verify.yml", "pull_request", base_ref="main", ref=f"refs/heads/{branch}")


@pytest.fixture(scope="module")
def deploy_run(level2, promote_run, verify_run) -> WorkflowRun:
    """The promotion merged once its required check passed, then the Deploy workflow on the push."""
    _, branch = promote_run
    git(level2.workspace, "checkout", "-q", "main")
    git(level2.workspace, "merge", "-q", "--no-ff", "-m", "Merge the promotion", branch)
    git(level2.workspace, "push", "-q", "origin", "main")
    return level2.run("deploy.yml", "push")


@pytest.fixture(scope="module")
def reconcile_run(level2, train_run, deploy_run) -> WorkflowRun:
    """After the deploy, staging's alias is removed by hand (outside git); the scheduled Reconcile
    workflow puts it back where the merged manifest says."""
    from gitops_ml import tracking
    from gitops_ml.config import load_spec

    git(level2.workspace, "checkout", "-q", "main")
    spec = load_spec(level2.workspace)
    tracking.connect(spec).delete_registered_model_alias(spec.model_name, "staging")
    return level2.run("reconcile.yml", "workflow_dispatch")


def run_drift(level2: Runner, version: int, severity: str, labelled: bool) -> WorkflowRun:
    """Drift on an inference log of ``severity`` (and labelled feedback when asked); the log, the feedback
    and the spec change are removed after, so the other drift run starts from the deployed state."""
    logs = level2.workspace / "logs" / "inference"
    feedback = level2.workspace / "data" / "feedback.csv"
    try:
        drifted_inference_log(level2.workspace, version, severity)
        if labelled:
            labelled_feedback(level2.workspace)
        return level2.run("drift.yml", "workflow_dispatch", inputs={"environment": "staging"})
    finally:
        shutil.rmtree(logs, ignore_errors=True)
        feedback.unlink(missing_ok=True)
        git(level2.workspace, "checkout", "-q", "--", "pyproject.toml")


@pytest.fixture(scope="module")
def drift_retrain_run(level2, train_run, deploy_run) -> WorkflowRun:
    return run_drift(level2, trained_version(train_run), "moderate", labelled=False)


@pytest.fixture(scope="module")
def drift_escalate_run(level2, train_run, deploy_run) -> WorkflowRun:
    return run_drift(level2, trained_version(train_run), "severe", labelled=True)


def test_ci_runs_pre_commit_and_the_generated_tests(level2, ci_run):
    run = ci_run
    steps = {r.step: r.outcome for r in run.records}
    assert steps["pre-commit (ruff, workflow schema, zizmor, hygiene)"] == "ran"
    assert steps["Tests"] == "ran"
    assert re.search(r"\d+ passed", run.job("checks").summary), run.job("checks").summary
    assert (level2.artifacts / "test-report" / "junit.xml").is_file()


def test_train_workflow_registers_a_gated_carded_version(level2, train_run):
    summary = train_run.job("train").summary
    assert "### Trained customer-churn v1" in summary and "### Gates for customer-churn v1: pass" in summary
    assert (level2.artifacts / "model-card" / "customer-churn-v1.md").is_file()


def test_pipeline_workflow_trains_packages_and_smoke_tests_a_pull_request(level2, pipeline_run):
    outcomes = {r.step: r.outcome for r in pipeline_run.records}
    assert outcomes["Serve it and smoke-test it over HTTP"] == "ran"
    comment = (level2.workspace / ".gitops-ml" / "pr-comment.md").read_text()
    # The module's train run registered v1 first, so the pull request's version is the next one.
    assert re.match(r"### customer-churn v\d+: all gates pass\n", comment), comment
    assert "| roc_auc **(primary)** |" in comment
    assert outcomes["Comment the metrics on the pull request"].startswith("skipped")


def test_promote_workflow_writes_the_release_verifies_it_and_would_open_the_pull_request(
    level2, train_run, promote_run
):
    version = trained_version(train_run)
    run, branch = promote_run
    manifest = yaml.safe_load(git(level2.workspace, "show", f"{branch}:environments/staging/release.yaml"))
    assert manifest["version"] == version
    outcomes = {r.step: r for r in run.records}
    assert outcomes["Verify the change, as the required check will"].outcome == "ran"
    opened = outcomes["Open the pull request"]
    assert opened.outcome == "skipped: opens a pull request"
    assert branch == f"promote/staging/v{version}"
    assert opened.note.startswith(f"branch {branch}:"), opened.note


def test_verify_workflow_passes_the_promotion_pull_request(verify_run):
    assert [r.outcome for r in verify_run.records if r.step == "Verify the release changes"] == ["ran"]


def test_deploy_workflow_deploys_the_merged_release(level2, train_run, deploy_run):
    run = deploy_run
    assert run.outputs("changes") == {"environments": '["staging"]', "removed": "[]", "registry": "ghcr.io"}
    (deployed,) = run.jobs["deploy"]
    assert deployed.name == "deploy (staging)"
    state = json.loads((level2.workspace / ".gitops-ml" / "deploy" / "staging.json").read_text())
    assert state["version"] == trained_version(train_run) and state["image"].startswith(f"ghcr.io/{OWNER}/{SLUG}:")
    skipped = [r.step for r in run.records if r.outcome.startswith("skipped")]
    assert skipped == ["Log in to the container registry"]  # nothing is built after a merge
    assert not [r for r in run.records if "image" in r.step.lower() and "registry" not in r.step.lower()]


def test_reconcile_workflow_puts_an_alias_moved_outside_git_back(level2, train_run, reconcile_run):
    summary = reconcile_run.job("reconcile").summary
    version = trained_version(train_run)
    assert "Aliases re-asserted from git: every alias follows git" in summary
    assert f"| staging | v{version} | - | v{version} | moved |" in summary
    assert "| production | - | - | - | in sync |" in summary


def test_drift_workflow_retrains_on_drift_and_escalates_without_labels(level2, drift_retrain_run):
    """Moderate covariate drift calls for retraining; with no labelled recent data to learn from, the
    retrain job says so in an issue instead of a pull request."""
    run = drift_retrain_run
    assert run.outputs("drift")["decision"] == "retrain", run.job("drift").summary
    assert run.jobs["escalate"] == []
    outcomes = {r.step: r for r in run.records if r.job == "retrain"}
    assert outcomes["Retrain on fresh data"].outcome == "ran"
    assert "**escalate**" in run.job("retrain").summary
    proposed = [r for r in run.records if r.job == "propose"]
    assert [r.outcome for r in proposed] == ["condition false"], proposed
    issue = outcomes["Open an issue when retraining did not help"]
    assert issue.outcome == "skipped: opens an issue (gh)" and "BODY_FILE=" in issue.note
    assert (level2.artifacts / "drift-report" / "summary.json").is_file()


def test_drift_workflow_escalates_when_labelled_data_shows_the_model_broke(level2, drift_escalate_run):
    run = drift_escalate_run
    assert run.outputs("drift")["decision"] == "escalate", run.job("drift").summary
    assert run.jobs["retrain"] == []
    outcomes = {r.step: r.outcome for r in run.records if r.job == "escalate"}
    assert outcomes["Download the drift report"] == "stand-in"
    assert outcomes["Open the issue"] == "skipped: opens an issue (gh)"
    assert (level2.workspace / "drift-report" / "body.md").is_file()


def test_every_workflow_ran_and_the_skipped_steps_are_listed(
    level2, ci_run, pipeline_run, deploy_run, drift_retrain_run, drift_escalate_run, keepalive_run, reconcile_run
):
    generated = {p.name for p in (level2.workspace / ".github" / "workflows").glob("*.yml")}
    assert level2.ran_workflows == generated
    skipped = [r for r in level2.records if r.outcome.startswith("skipped")]
    listed = "\n".join(f"  {r.workflow} / {r.job} / {r.step}: {r.outcome} ({r.note})" for r in skipped)
    print(f"\nsteps skipped because they need GitHub itself:\n{listed}")
    assert {(r.workflow, r.job.split(" (")[0], r.step) for r in skipped} <= set(Runner.NEEDS_GITHUB)
    reached = {(r.workflow, r.job.split(" (")[0], r.step) for r in skipped}
    never = [key for key in Runner.NEEDS_GITHUB if key[0] in generated and key not in reached]
    # Every step that needs GitHub was reached and had its inputs checked; the retraining pull request is
    # the Promote workflow's (a reusable one, run by act in tests/test_workflows_act.py).
    assert never == [], never


# == level 0, regression: its CI, that is its own tests, pass ==============================================
def test_level0_regression_ci_passes(tmp_path, python_bin, baked_repository):
    workspace = baked_repository(mlops_level="0", task="regression", python_version="3.11")
    runner = Runner(workspace, python_bin, tmp_path / "scratch")
    run = runner.run("ci.yml", "pull_request", base_ref="main", ref="refs/pull/1/merge")
    assert re.search(r"\d+ passed", run.job("checks").summary)
    assert {p.name for p in (workspace / ".github" / "workflows").glob("*.yml")} == {"ci.yml"}


# == the level-2 walk, with the bake's own Makefile =========================================================
def test_level2_walk_with_the_makefile(tmp_path, baked_repository):
    project = baked_repository(mlops_level="2", task="classification", project_name="Walk")
    env = {
        "PATH": f"{HOST_BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "LANG": "C.UTF-8",
    }

    def make(*args: str) -> str:
        done = subprocess.run(
            ["make", *args, "VENV="], cwd=project, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT
        )
        assert done.returncode == 0, (
            f"make {' '.join(args)}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        return done.stdout

    make("validate")
    make("train")
    make("evaluate")
    make("card")
    assert (project / "model_cards" / "walk-v1.md").is_file()
    make("package")
    make("smoke", f"PORT={free_port()}")
    git(project, "checkout", "-q", "-b", "promote/staging/v1")
    make("promote", "VERSION=1", "ENV=staging")
    make("verify", "BASE=origin/main")
    git(project, "add", "environments", "model_cards")
    git(project, "commit", "-qm", "Promote v1 to staging")
    git(project, "checkout", "-q", "main")
    git(project, "merge", "-q", "--no-ff", "-m", "Merge the promotion", "promote/staging/v1")
    git(project, "push", "-q", "origin", "main")
    make("deploy", "ENV=staging")
    assert json.loads((project / ".gitops-ml" / "deploy" / "staging.json").read_text())["version"] == 1
    assert "staging" in make("status")
    replayed = make("replay", "VERSION=1", "ENV=staging")  # only smoke traffic was logged: nothing to replay
    assert "### Replay of staging traffic" in replayed and "no production traffic of v1 was logged" in replayed
    make("drift", "ENV=staging")
    summary = json.loads((project / ".gitops-ml" / "drift" / "summary.json").read_text())
    assert summary["decision"] in {"none", "insufficient_data", "retrain", "escalate"}
