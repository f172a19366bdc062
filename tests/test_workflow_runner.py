"""The workflow stand-in's own tests: GitHub's expression language and the step runner, on small inputs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .support.bake import bake, git
from .support.workflow_runner import Evaluator, ExpressionError, Runner, condition, read_commands_file, render


def evaluate(text: str, failed: bool = False, workspace: Path = Path("."), **contexts):
    return Evaluator(contexts, workspace, failed).evaluate(text)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 == 1", True),
        ("'Main' == 'main'", True),  # strings compare ignoring case
        ("'1' == 1", True),  # a string and a number compare as numbers
        ("'a' == 1", False),
        ("2 > 1 && 'x'", "x"),  # && and || return an operand, not a boolean
        ("'' || 'fallback'", "fallback"),
        ("!0", True),
        ("(1 < 2) == true", True),
        ("null", None),
        ("3.5", 3.5),
        ("'it''s'", "it's"),
        ("contains('hello world', 'WORLD')", True),
        ("contains(fromJSON('[\"a\", \"b\"]'), 'B')", True),
        ("startsWith('refs/heads/main', 'refs/heads/')", True),
        ("toJSON(fromJSON('{\"a\": 1}'))", '{"a": 1}'),
    ],
)
def test_the_evaluator_follows_githubs_rules(expression, expected):
    assert evaluate(expression) == expected


def test_contexts_are_read_by_property_and_index_and_a_missing_key_is_null():
    contexts = {"github": {"event": {"inputs": {"version": "3"}}}, "matrix": {"env": "staging"}}
    assert evaluate("github.event.inputs.version", **contexts) == "3"
    assert evaluate("github['event']['inputs'].version", **contexts) == "3"
    assert evaluate("matrix.env == 'STAGING'", **contexts) is True
    assert evaluate("github.event.nothing.here", **contexts) is None


def test_status_functions_see_whether_a_step_failed():
    assert evaluate("success()") is True and evaluate("failure()") is False
    assert evaluate("success()", failed=True) is False and evaluate("failure()", failed=True) is True
    assert evaluate("always()", failed=True) is True and evaluate("cancelled()") is False


def test_hash_files_changes_with_the_files(tmp_path):
    (tmp_path / "a.txt").write_text("one")
    first = evaluate("hashFiles('*.txt')", workspace=tmp_path)
    (tmp_path / "a.txt").write_text("two")
    assert first and evaluate("hashFiles('*.txt')", workspace=tmp_path) != first
    assert evaluate("hashFiles('*.none')", workspace=tmp_path) == ""


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("unknown.value", "unknown context 'unknown'"),
        ("nope()", "unknown function nope()"),
        ("1 ==", "expression ends too early"),
        ("1 2", "unexpected '2'"),
        ("1 ~ 2", "cannot read"),
    ],
)
def test_a_bad_expression_is_an_error_naming_it(expression, message):
    with pytest.raises(ExpressionError, match=message):
        evaluate(expression)


def test_render_keeps_a_whole_expressions_type_and_writes_embedded_ones_as_text():
    evaluator = Evaluator({"inputs": {"n": 2, "flag": True}}, Path("."))
    assert render("${{ inputs.n }}", evaluator) == 2
    assert render("v${{ inputs.n }}-${{ inputs.flag }}", evaluator) == "v2-true"
    assert render({"a": ["${{ inputs.flag }}"], "b": 5}, evaluator) == {"a": [True], "b": 5}


def test_an_if_is_implicitly_success_and_unless_a_status_function_is_called():
    ok, failed = Evaluator({}, Path(".")), Evaluator({}, Path("."), failed=True)
    assert condition(None, ok) is True and condition(None, failed) is False
    assert condition("${{ 1 == 1 }}", ok) is True and condition("1 == 1", failed) is False
    assert condition("always() && 1 == 1", failed) is True
    assert condition(False, ok) is False


def test_commands_files_read_single_lines_and_heredocs(tmp_path):
    path = tmp_path / "output"
    path.write_text("a=1\nbody<<EOF\nline one\nline=two\nEOF\n\nempty=\n")
    assert read_commands_file(path) == {"a": "1", "body": "line one\nline=two", "empty": ""}
    assert read_commands_file(tmp_path / "missing") == {}


WORKFLOW = """\
name: tiny
on:
  push: {}
permissions: {}
env:
  GREETING: hello
jobs:
  first:
    runs-on: ubuntu-latest
    outputs:
      answer: ${{ steps.compute.outputs.answer }}
    steps:
      - id: compute
        run: |
          echo "answer=42" >> "$GITHUB_OUTPUT"
          echo "CARRIED=yes" >> "$GITHUB_ENV"
      - run: test "$CARRIED" = yes && echo "### $GREETING" >> "$GITHUB_STEP_SUMMARY"
  second:
    needs: first
    runs-on: ubuntu-latest
    if: ${{ needs.first.outputs.answer == '42' }}
    strategy:
      matrix:
        env: [staging, production]
    steps:
      - env:
          WHERE: ${{ matrix.env }}
        run: echo "$WHERE" >> "$GITHUB_WORKSPACE/seen.txt"
      - name: Never
        if: ${{ matrix.env == 'nowhere' }}
        run: exit 1
  third:
    needs: second
    if: ${{ false }}
    runs-on: ubuntu-latest
    steps:
      - run: exit 1
"""


def workspace_with(tmp_path: Path, workflow: str) -> Path:
    workspace = tmp_path / "repo"
    (workspace / ".github" / "workflows").mkdir(parents=True)
    (workspace / ".github" / "workflows" / "tiny.yml").write_text(workflow)
    git(workspace, "init", "-q", "-b", "main")
    git(workspace, "add", "-A")
    git(workspace, "commit", "-qm", "start")
    return workspace


def test_the_runner_passes_outputs_env_and_matrices_between_steps_and_jobs(tmp_path):
    workspace = workspace_with(tmp_path, WORKFLOW)
    runner = Runner(workspace, Path(sys.executable).parent, tmp_path / "scratch")
    run = runner.run("tiny.yml", "push")
    assert run.outputs("first") == {"answer": "42"}
    assert run.job("first").summary == "### hello\n"
    assert [job.name for job in run.jobs["second"]] == ["second (staging)", "second (production)"]
    assert (workspace / "seen.txt").read_text() == "staging\nproduction\n"
    assert run.jobs["third"] == []
    outcomes = [(r.job, r.step, r.outcome) for r in run.records]
    assert ("second (staging)", "Never", "condition false") in outcomes
    assert ("third", "(job)", "condition false") in outcomes


def test_a_failing_step_fails_the_run_with_its_script_and_output(tmp_path):
    failing = WORKFLOW.replace('echo "answer=42" >> "$GITHUB_OUTPUT"', 'echo "broken on purpose" >&2; exit 3')
    runner = Runner(workspace_with(tmp_path, failing), Path(sys.executable).parent, tmp_path / "scratch")
    expected = r"(?s)tiny.yml / first / .*: exit 3\n--- script.*--- stderr.*broken on purpose"
    with pytest.raises(AssertionError, match=expected):
        runner.run("tiny.yml", "push")


def test_an_event_the_workflow_does_not_take_is_refused(tmp_path):
    runner = Runner(workspace_with(tmp_path, WORKFLOW), Path(sys.executable).parent, tmp_path / "scratch")
    with pytest.raises(AssertionError, match="tiny.yml does not run on pull_request"):
        runner.run("tiny.yml", "pull_request")


def test_steps_that_need_github_are_listed_for_every_generated_workflow(tmp_path):
    """Every (workflow, job, step) the runner skips exists in a level-2 bake's workflows, spelled the same."""
    import yaml

    project = bake(tmp_path, mlops_level="2")
    named = set()
    for path in (project / ".github" / "workflows").glob("*.yml"):
        for job_name, job in yaml.safe_load(path.read_text())["jobs"].items():
            named |= {(path.name, job_name, step.get("name")) for step in job.get("steps", [])}
    assert set(Runner.NEEDS_GITHUB) <= named, set(Runner.NEEDS_GITHUB) - named
