"""The act harness's own pieces: which actions run for real, the stand-ins and what they record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cookiecutter.main import cookiecutter

from tests.conftest import REPO
from tests.support import act as harness
from tests.support.act import (
    ActionUse,
    actions_used,
    parse_job_results,
    runner_environment,
    write_standin,
    write_standin_command,
)

RECORDER = REPO / "tests" / "support" / "standin_recorder.py"

LOG = """\
[CI/pre-commit and tests] ⭐ Run Set up job
[CI/pre-commit and tests]   ✅  Success - Main Tests [20.7s]
[CI/pre-commit and tests] 🏁  Job succeeded
[Deploy/deploy staging      ] 🏁  Job failed
[Promote/open the promotion pull request] 🏁  Job succeeded
"""


def test_job_results_are_read_from_acts_closing_lines() -> None:
    assert parse_job_results(LOG) == {
        "pre-commit and tests": "succeeded",
        "deploy staging": "failed",
        "open the promotion pull request": "succeeded",
    }


def test_the_actions_a_level_2_bake_uses_are_found_with_their_inputs(tmp_path: Path) -> None:
    baked = Path(cookiecutter(str(REPO / "template"), no_input=True, output_dir=str(tmp_path)))
    used = {use.name: use for use in actions_used(baked / ".github" / "workflows")}
    assert {"actions/checkout", "actions/setup-python", "actions/upload-artifact",
            "peter-evans/create-pull-request", "docker/build-push-action"} <= set(used)  # fmt: skip
    pull_request = used["peter-evans/create-pull-request"]
    assert {"branch", "title", "body-path", "add-paths", "labels", "token"} <= pull_request.inputs
    assert all(len(use.ref) == 40 for use in used.values())


def test_checkout_and_setup_python_run_from_the_shared_sources_never_a_stand_in(tmp_path: Path, monkeypatch) -> None:
    checkout = ActionUse("actions/checkout", "11bd71901bbe5b1630ceea73d27597364c9af683", frozenset())
    if harness.shared_action(checkout) is None:
        pytest.skip(f"no pinned actions at {harness.SHARED_ACTIONS}")
    monkeypatch.setattr(harness, "SHARED_ACTIONS", tmp_path / "nowhere")
    baked = Path(cookiecutter(str(REPO / "template"), no_input=True, output_dir=str(tmp_path),
                              extra_context={"mlops_level": "0"}))  # fmt: skip
    runner = harness.Act.__new__(harness.Act)  # only local_repositories is exercised: no tool cache needed
    runner.standins = tmp_path / "standins"
    with pytest.raises(FileNotFoundError, match="actions/checkout@.*must run for real"):
        runner.local_repositories(baked)


def run_recorder(tmp_path: Path, workspace: Path, action: str, inputs: dict) -> subprocess.CompletedProcess:
    folder = write_standin(ActionUse(action, "0" * 40, frozenset(inputs)), tmp_path / "standin" / action)
    declared = yaml.safe_load((folder / "action.yml").read_text())
    assert set(declared["inputs"]) == set(inputs)
    environment = {**os.environ, "STANDIN_ACTION": action, "STANDIN_INPUTS": json.dumps(inputs),
                   "STANDIN_RECORD": str(tmp_path / "record"), "STANDIN_ARTIFACTS": str(tmp_path / "artifacts"),
                   "GITHUB_WORKSPACE": str(workspace)}  # fmt: skip
    return subprocess.run([sys.executable, str(folder / "record.py")], env=environment, capture_output=True, text=True)


def records(tmp_path: Path) -> list[dict]:
    return harness.read_records(tmp_path / "record")


def test_a_pull_request_stand_in_records_inputs_and_keeps_the_named_files(tmp_path: Path) -> None:
    workspace = tmp_path / "work"
    (workspace / "environments" / "staging").mkdir(parents=True)
    (workspace / "environments" / "staging" / "release.yaml").write_text("version: 3\n")
    (workspace / ".gitops-ml").mkdir()
    (workspace / ".gitops-ml" / "body.md").write_text("| feature | score |\n")
    inputs = {"branch": "promote/staging/v3", "body-path": str(workspace / ".gitops-ml" / "body.md"),
              "add-paths": "environments/\nmodel_cards/\n", "path": "/etc/hostname"}  # fmt: skip
    done = run_recorder(tmp_path, workspace, "peter-evans/create-pull-request", inputs)
    assert done.returncode == 0, done.stderr
    [entry] = records(tmp_path)
    assert entry["inputs"] == inputs
    assert entry["copied"] == [".gitops-ml/body.md", "environments/"]  # model_cards/ absent, /etc outside
    assert (Path(entry["files"]) / "environments" / "staging" / "release.yaml").read_text() == "version: 3\n"
    run = harness.ActRun(0, "", {}, [entry])
    assert run.recorded_file(entry, inputs["body-path"]).read_text() == "| feature | score |\n"


def test_artifacts_uploaded_by_one_job_are_downloaded_by_another(tmp_path: Path) -> None:
    first, second = tmp_path / "job1", tmp_path / "job2"
    (first / ".gitops-ml" / "drift").mkdir(parents=True)
    (first / ".gitops-ml" / "drift" / "body.md").write_text("severe")
    second.mkdir()
    up = run_recorder(tmp_path, first, "actions/upload-artifact",
                      {"name": "drift-report", "path": ".gitops-ml/drift/", "if-no-files-found": "error"})
    assert up.returncode == 0, up.stderr
    down = run_recorder(tmp_path, second, "actions/download-artifact", {"name": "drift-report", "path": "report"})
    assert down.returncode == 0, down.stderr
    assert (second / "report" / "body.md").read_text() == "severe"
    missing = run_recorder(tmp_path, second, "actions/download-artifact", {"name": "nothing", "path": "x"})
    assert missing.returncode == 1 and "no artifact named nothing" in missing.stdout
    empty = run_recorder(tmp_path, second, "actions/upload-artifact",
                         {"name": "none", "path": "absent/", "if-no-files-found": "error"})  # fmt: skip
    assert empty.returncode == 1


def test_the_gh_stand_in_records_its_arguments_and_the_body_file(tmp_path: Path) -> None:
    gh = write_standin_command("gh", tmp_path / "bin")
    (tmp_path / "body.md").write_text("Drift in 9 of 10 features")
    environment = {**os.environ, "STANDIN_RECORD": str(tmp_path / "record")}
    args = ["issue", "create", "--repo", "o/r", "--title", "Escalate", "--body-file", str(tmp_path / "body.md")]
    subprocess.run([str(gh), *args], env=environment, check=True)
    [entry] = records(tmp_path)
    assert entry["command"] == "gh" and entry["args"] == args
    assert (Path(entry["files"]) / "body.md").read_text() == "Drift in 9 of 10 features"


def test_the_tool_cache_is_seeded_once_for_setup_python(tmp_path: Path) -> None:
    target = harness.seed_tool_cache(tmp_path)
    version = target.parent.name
    assert (target.parent / "x64.complete").is_file()
    assert subprocess.run([str(target / "bin" / "python"), "-c", "import yaml, cookiecutter"]).returncode == 0
    (target / "marker").write_text("kept")
    assert harness.seed_tool_cache(tmp_path) == target and (target / "marker").is_file()
    assert version == ".".join(map(str, sys.version_info[:3]))


def test_act_runs_without_the_variables_of_a_parent_make(monkeypatch) -> None:
    # Under `make test`, MAKELEVEL would make every make in a job print "Entering directory" lines
    # into its step summary and outputs; a GitHub runner has no parent make.
    monkeypatch.setenv("MAKELEVEL", "1")
    monkeypatch.setenv("MAKEFLAGS", "w")
    monkeypatch.setenv("KEPT", "yes")
    environment = runner_environment()
    assert "MAKELEVEL" not in environment and "MAKEFLAGS" not in environment
    assert environment["KEPT"] == "yes"
