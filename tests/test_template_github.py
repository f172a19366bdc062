"""What a real GitHub would break, checked in the generated files (GitHub's side cannot run here):
required checks that never report, pull requests whose checks never start, schedules that stop,
and README advice that does not match the workflows."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cookiecutter.main import cookiecutter

from tests.conftest import REPO

APP_TOKEN = "actions/create-github-app-token@bcd2ba49218906704ab6c1aa796996da409d3eb1"


@pytest.fixture(scope="module")
def bakes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bakes")
    return {level: Path(cookiecutter(str(REPO / "template"), no_input=True, output_dir=str(root / level),
                                     extra_context={"mlops_level": level})) for level in ("0", "1", "2")}  # fmt: skip


def workflow(repository: Path, name: str) -> dict:
    document = yaml.safe_load((repository / ".github" / "workflows" / name).read_text())
    document["on"] = document.pop(True)  # YAML 1.1 reads the key `on` as a boolean
    return document


def steps(document: dict, job: str) -> list[dict]:
    return document["jobs"][job]["steps"]


def test_verify_runs_on_every_pull_request_since_it_is_a_required_check(bakes) -> None:
    trigger = workflow(bakes["2"], "verify.yml")["on"]
    assert trigger == {"pull_request": None}, "a path filter leaves a required check pending forever"


@pytest.mark.parametrize(("level", "name", "job"), [("1", "promote.yml", "promote"), ("2", "promote.yml", "promote")])
def test_pull_requests_are_opened_with_a_minted_app_token_or_say_their_checks_wait(bakes, level, name, job) -> None:
    document = workflow(bakes[level], name)
    listed = steps(document, job)
    token = next(s for s in listed if s.get("uses", "").startswith("actions/create-github-app-token@"))
    assert token["uses"] == APP_TOKEN
    assert token["with"]["app-id"] == "${{ secrets.PROMOTION_APP_ID }}"
    assert token["with"]["private-key"] == "${{ secrets.PROMOTION_APP_PRIVATE_KEY }}"
    assert {k: v for k, v in token["with"].items() if k.startswith("permission-")} == {
        "permission-contents": "write", "permission-pull-requests": "write"}  # fmt: skip
    assert "env.HAS_PROMOTION_APP == 'true'" in token["if"]
    note = next(s for s in listed if "default-token-note.md" in s.get("run", ""))
    assert "env.HAS_PROMOTION_APP != 'true'" in note["if"]
    assert '>> "$BODY_FILE"' in note["run"] and '>> "$GITHUB_STEP_SUMMARY"' in note["run"]
    opened = next(s for s in listed if s.get("uses", "").startswith("peter-evans/create-pull-request@"))
    assert opened["with"]["token"] == "${{ steps.app-token.outputs.token || github.token }}"
    assert "PROMOTION_TOKEN" not in (bakes[level] / ".github" / "workflows" / name).read_text()
    text = (bakes[level] / ".github" / "default-token-note.md").read_text()
    assert "close and reopen" in text.lower() and "PROMOTION_APP_ID" in text and "PROMOTION_APP_PRIVATE_KEY" in text


@pytest.mark.parametrize("level", ["1", "2"])
def test_the_readme_says_how_to_configure_the_app_and_not_to_store_a_minted_token(bakes, level) -> None:
    readme = (bakes[level] / "README.md").read_text()
    assert "PROMOTION_APP_ID" in readme and "PROMOTION_APP_PRIVATE_KEY" in readme
    assert "expire after an hour" in readme and "do not store one as a" in readme
    assert "PROMOTION_TOKEN" not in readme


def test_the_readme_names_the_limits_of_environments_and_up_to_date_branches(bakes) -> None:
    readme = " ".join((bakes["2"] / "README.md").read_text().split())
    assert "only on GitHub Enterprise" in readme and "public repositories" in readme
    assert "require branches to be up to date before merging" in readme


@pytest.mark.parametrize("level", ["1", "2"])
def test_scheduled_workflows_are_kept_alive_with_least_privilege(bakes, level) -> None:
    document = workflow(bakes[level], "keepalive.yml")
    assert document["on"]["schedule"] == [{"cron": "41 4 1 * *"}]
    assert document["permissions"] == {}
    [job] = document["jobs"].values()
    assert job["permissions"] == {"actions": "write"}
    run = job["steps"][0]["run"]
    assert "gh workflow enable" in run and all(name in run for name in ("drift.yml", "train.yml", "keepalive.yml"))
    assert ("reconcile.yml" in run) == (level == "2")  # every scheduled workflow the level has, and no other
    assert "keepalive.yml" in (bakes[level] / "README.md").read_text()


def test_the_aliases_are_re_asserted_from_git_on_a_schedule_at_level_2(bakes) -> None:
    document = workflow(bakes["2"], "reconcile.yml")
    assert document["on"]["schedule"] == [{"cron": "23 */6 * * *"}] and "workflow_dispatch" in document["on"]
    assert document["permissions"] == {} and document["concurrency"]["cancel-in-progress"] is False
    [job] = document["jobs"].values()
    assert job["permissions"] == {"contents": "read"}
    assert job["steps"][-1]["run"].startswith("make reconcile")
    assert "reconcile:" in (bakes["2"] / "Makefile").read_text()
    assert "reconcile.yml" in (bakes["2"] / "README.md").read_text()
    assert not (bakes["1"] / ".github" / "workflows" / "reconcile.yml").exists()


def test_level_0_has_no_schedules_to_keep_alive(bakes) -> None:
    assert not (bakes["0"] / ".github" / "workflows" / "keepalive.yml").exists()


@pytest.mark.parametrize("level", ["1", "2"])
def test_training_delivers_to_staging_through_the_promote_workflow(bakes, level) -> None:
    propose = workflow(bakes[level], "train.yml")["jobs"]["propose"]
    assert propose["uses"] == "./.github/workflows/promote.yml"
    assert propose["with"]["environment"] == "staging"
    assert "needs.train.outputs.passed == 'true'" in propose["if"]
    assert "needs.train.outputs.shared_registry == 'true'" in propose["if"]
    promote = workflow(bakes[level], "promote.yml")["on"]
    assert set(promote) == {"workflow_call", "workflow_dispatch"}
    readme = " ".join((bakes[level] / "README.md").read_text().split())
    assert "the Train workflow proposes it for staging itself" in readme
    assert "continuous training and delivery of the model" in readme


def test_the_readme_names_the_image_tag_the_manifest_pins(bakes) -> None:
    readme = (bakes["2"] / "README.md").read_text()
    assert ":v<N>-<bento digest>" in readme and ":v<N>`" not in readme


@pytest.mark.parametrize("level", ["1", "2"])
def test_a_retrained_version_is_proposed_through_the_promote_workflow(bakes, level: str) -> None:
    """Drift's retraining opens its pull request the way every promotion does (and at level 2 builds
    and pushes the version's image first): retrain only trains and gates, then the Promote workflow runs."""
    jobs = workflow(bakes[level], "drift.yml")["jobs"]
    retrain, propose = jobs["retrain"], jobs["propose"]
    (trained,) = [s for s in retrain["steps"] if s.get("id") == "retrain"]
    assert trained["env"] == {"RETRAIN_PROMOTE": "false"} and trained["run"] == "make retrain"
    assert set(retrain["permissions"]) == {"contents", "issues"}  # no pushing, no pull request here
    assert propose["uses"] == "./.github/workflows/promote.yml"
    assert propose["if"] == "${{ needs.retrain.outputs.outcome == 'trained' }}"
    assert propose["with"] == {"version": "${{ fromJSON(needs.retrain.outputs.version) }}",
                               "environment": "${{ needs.retrain.outputs.environment }}",
                               "title": "${{ needs.retrain.outputs.title }}",
                               "body": "${{ needs.retrain.outputs.body }}", "label": "retraining"}  # fmt: skip
    assert ("packages" in propose["permissions"]) == (level == "2")
    promote = workflow(bakes[level], "promote.yml")
    steps_of_promote = promote["jobs"]["promote"]["steps"]
    built = [s for s in steps_of_promote if s.get("uses", "").startswith("docker/build-push-action@")]
    assert len(built) == (1 if level == "2" else 0)


# -- deploy.yml (issue 14 item 3): what a queue of merges, a long push and a revert do -----------------
def test_deploy_queues_per_environment_and_never_cancels_a_waiting_deployment(bakes) -> None:
    document = workflow(bakes["2"], "deploy.yml")
    # A workflow-level group let a later merge (to staging) cancel production waiting for its reviewers.
    assert "concurrency" not in document
    deploy = document["jobs"]["deploy"]
    assert deploy["environment"] == "${{ matrix.environment }}"
    assert deploy["concurrency"] == {"group": "deploy-${{ matrix.environment }}", "cancel-in-progress": False}
    # reading the push is per push: a shared group would drop a pending push's deploy altogether
    assert document["jobs"]["changes"]["concurrency"]["group"] == "deploy-changes-${{ github.sha }}"


def test_deploy_counts_every_commit_of_the_push(bakes) -> None:
    changes = workflow(bakes["2"], "deploy.yml")["jobs"]["changes"]
    checkout = next(s for s in changes["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0, "github.event.before may be many commits back"
    changed = next(s for s in changes["steps"] if s.get("id") == "changed")
    assert changed["env"]["BEFORE"] == "${{ github.event.before }}"
    assert changed["env"]["AFTER"] == "${{ github.sha }}"
    assert changed["run"].startswith("make changed-environments")
    assert changes["outputs"] == {"environments": "${{ steps.changed.outputs.environments }}",
                                  "removed": "${{ steps.changed.outputs.removed }}",
                                  "registry": "${{ steps.changed.outputs.registry }}"}  # fmt: skip


def test_a_removed_release_only_removes_the_alias(bakes) -> None:
    deploy = workflow(bakes["2"], "deploy.yml")["jobs"]["deploy"]
    assert deploy["env"]["REMOVED"] == "${{ contains(fromJSON(needs.changes.outputs.removed), matrix.environment) }}"
    listed = deploy["steps"]
    setup = {"Check out", "Set up Python", "Install the project and gitops-ml"}
    last = listed[-1]
    assert last["run"] == "make deploy" and "if" not in last, "the alias is removed (or moved) in every case"
    for step in listed[:-1]:
        if step["name"] not in setup:  # every image step: the revert of a first release has no image
            assert step.get("if") == "${{ env.REMOVED != 'true' }}", step["name"]
