"""A stand-in for the GitHub runner: GitHub's expression language and a step runner for workflow files.

``Runner(workspace, ...).run("ci.yml", "push")`` executes each job's ``run:`` steps in ``needs`` order
inside ``workspace`` (a git checkout) with GitHub's file variables (``GITHUB_OUTPUT``, ``GITHUB_ENV``,
``GITHUB_PATH``, ``GITHUB_STEP_SUMMARY``, ``GITHUB_WORKSPACE``) and its expressions (``${{ }}`` in
``env``, ``with``, ``if``, outputs and matrices). ``uses:`` steps are stood in for: the checkout is the
workspace, setup-python is ``python_bin``, upload-artifact asserts its paths exist and keeps them for
download-artifact. Steps that need GitHub itself (``Runner.NEEDS_GITHUB``) are skipped after their
inputs are checked, and recorded.

Its own tests are ``tests/test_workflow_runner.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HOST_BIN = Path(sys.executable).parent
STEP_TIMEOUT = 900


# == GitHub expressions ===============================================================================
class ExpressionError(Exception):
    pass


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\].,])"
    r"|(?P<name>[A-Za-z_][\w-]*))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise ExpressionError(f"cannot read {text[position:]!r} in {text!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and value == value  # NaN is falsy


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()  # GitHub compares strings ignoring case
    if isinstance(a, str) != isinstance(b, str):
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False
    return a == b


class Evaluator:
    """A recursive-descent evaluator of the expression language, enough for the generated workflows."""

    STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")

    def __init__(self, contexts: dict[str, Any], workspace: Path, failed: bool = False):
        self.contexts, self.workspace, self.failed = contexts, workspace, failed

    def evaluate(self, text: str) -> Any:
        self.tokens, self.index = _tokens(text), 0
        value = self._or()
        if self.index != len(self.tokens):
            raise ExpressionError(f"unexpected {self.tokens[self.index][1]!r} in {text!r}")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise ExpressionError("expression ends too early")
        token = self.tokens[self.index]
        if expected is not None and token[1] != expected:
            raise ExpressionError(f"expected {expected!r}, got {token[1]!r}")
        self.index += 1
        return token

    def _or(self) -> Any:
        value = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            value = value if _truthy(value) else right
        return value

    def _and(self) -> Any:
        value = self._equality()
        while self._peek() == "&&":
            self._take()
            right = self._equality()
            value = right if _truthy(value) else value
        return value

    def _equality(self) -> Any:
        value = self._compare()
        while self._peek() in ("==", "!="):
            op = self._take()[1]
            right = self._compare()
            value = _equal(value, right) if op == "==" else not _equal(value, right)
        return value

    def _compare(self) -> Any:
        value = self._unary()
        while self._peek() in ("<", ">", "<=", ">="):
            op = self._take()[1]
            right = self._unary()
            value = {"<": value < right, ">": value > right, "<=": value <= right, ">=": value >= right}[op]
        return value

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not _truthy(self._unary())
        return self._postfix(self._primary())

    def _primary(self) -> Any:
        kind, text = self._take()
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if text == "(":
            value = self._or()
            self._take(")")
            return value
        if kind != "name":
            raise ExpressionError(f"unexpected {text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self._peek() == "(":
            return self._call(text)
        if text not in self.contexts:
            raise ExpressionError(f"unknown context {text!r}")
        return self.contexts[text]

    def _postfix(self, value: Any) -> Any:
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                key = self._take()[1]
            else:
                key = self._or()
                self._take("]")
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def _call(self, name: str) -> Any:
        self._take("(")
        args = []
        while self._peek() != ")":
            args.append(self._or())
            if self._peek() == ",":
                self._take()
        self._take(")")
        if name == "success":
            return not self.failed
        if name == "failure":
            return self.failed
        if name == "always":
            return True
        if name == "cancelled":
            return False
        if name == "fromJSON":
            return json.loads(args[0])
        if name == "toJSON":
            return json.dumps(args[0])
        if name == "contains":
            haystack, needle = args
            if isinstance(haystack, list):
                return any(_equal(item, needle) for item in haystack)
            return _text(needle).lower() in _text(haystack).lower()
        if name == "startsWith":
            return _text(args[0]).lower().startswith(_text(args[1]).lower())
        if name == "hashFiles":
            found = [p for pattern in args for p in sorted(self.workspace.glob(pattern)) if p.is_file()]
            return uuid.uuid5(uuid.NAMESPACE_URL, "".join(p.read_text() for p in found)).hex if found else ""
        raise ExpressionError(f"unknown function {name}()")


_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def render(value: Any, evaluator: Evaluator) -> Any:
    """Replace ``${{ }}`` in strings (recursively); a string that is one expression keeps its value's type."""
    if isinstance(value, dict):
        return {k: render(v, evaluator) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, evaluator) for v in value]
    if not isinstance(value, str):
        return value
    whole = _EXPRESSION.fullmatch(value.strip())
    if whole:
        return evaluator.evaluate(whole.group(1))
    return _EXPRESSION.sub(lambda m: _text(evaluator.evaluate(m.group(1))), value)


def condition(text: Any, evaluator: Evaluator) -> bool:
    """An ``if:``: implicitly ``success() && (...)`` unless it calls a status function."""
    if text is None:
        return not evaluator.failed
    if isinstance(text, bool):
        return text and not evaluator.failed
    body = text.strip()
    whole = _EXPRESSION.fullmatch(body)
    if whole:
        body = whole.group(1)
    if not any(f"{name}(" in body for name in Evaluator.STATUS_FUNCTIONS):
        body = f"success() && ({body})"
    return _truthy(evaluator.evaluate(body))


def read_commands_file(path: Path) -> dict[str, str]:
    """``name=value`` and ``name<<DELIM ... DELIM`` lines, as GitHub reads GITHUB_OUTPUT and GITHUB_ENV."""
    values: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            collected = []
            while lines[index] != delimiter:
                collected.append(lines[index])
                index += 1
            index += 1
            values[name] = "\n".join(collected)
        else:
            name, _, value = line.partition("=")
            values[name] = value
    return values


def _needs(job: dict) -> list[str]:
    return [job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", [])


# == the runner ==========================================================================================
@dataclass
class StepRecord:
    workflow: str
    job: str
    step: str
    outcome: str  # "ran", "stand-in", "skipped: <why>", "condition false"
    note: str = ""


@dataclass
class JobRun:
    name: str
    ran: bool
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""


@dataclass
class WorkflowRun:
    name: str
    jobs: dict[str, list[JobRun]]
    records: list[StepRecord]

    def job(self, name: str) -> JobRun:
        (run,) = self.jobs[name]
        return run

    def outputs(self, job: str) -> dict[str, str]:
        return self.job(job).outputs


class Runner:
    """Runs a workflow file's jobs in ``needs`` order inside ``workspace``."""

    # Steps that need GitHub itself: (workflow, job, step name) -> why. Their inputs are still checked.
    NEEDS_GITHUB = {
        ("pipeline.yml", "pipeline", "Comment the metrics on the pull request"): "posts a pull-request comment",
        ("promote.yml", "promote", "Open the pull request"): "opens a pull request",
        ("drift.yml", "retrain", "Open an issue when retraining did not help"): "opens an issue (gh)",
        ("drift.yml", "escalate", "Open the issue"): "opens an issue (gh)",
        ("promote.yml", "promote", "Set up Docker Buildx"): "needs a Docker daemon",
        ("promote.yml", "promote", "Log in to the container registry"): "logs in to the registry",
        ("promote.yml", "promote", "Build the image and push it"): "needs buildx and the registry",
        ("verify.yml", "verify", "Log in to the container registry"): "logs in to the registry",
        ("deploy.yml", "deploy", "Log in to the container registry"): "logs in to the registry",
        ("promote.yml", "promote", "Mint the GitHub App token"): "mints a token through GitHub's API",
        ("keepalive.yml", "keepalive", "Re-enable the scheduled workflows and this one"): "calls GitHub's API (gh)",
    }

    def __init__(
        self,
        workspace: Path,
        python_bin: Path,
        scratch: Path,
        machine_env: dict[str, str] | None = None,
        repository: str = "your-org/customer-churn",
    ):
        self.workspace, self.python_bin, self.scratch = workspace, python_bin, scratch
        self.repository = repository  # owner/name, as github.repository reads
        # What the runner machine itself provides; here a free port for `make smoke` (3000 may be taken).
        self.machine_env = machine_env or {}
        self.artifacts = scratch / "artifacts"
        self.records: list[StepRecord] = []
        self.ran_workflows: set[str] = set()

    # -- workflow and jobs -------------------------------------------------------------------------
    def run(
        self,
        workflow: str,
        event: str,
        inputs: dict[str, Any] | None = None,
        base_ref: str = "",
        ref: str = "refs/heads/main",
    ) -> WorkflowRun:
        document = yaml.safe_load((self.workspace / ".github" / "workflows" / workflow).read_text())
        triggers = document[True] if True in document else document["on"]  # YAML reads `on` as true
        assert event in triggers, f"{workflow} does not run on {event}"
        self.ran_workflows.add(workflow)
        declared = (triggers.get(event) or {}).get("inputs", {}) if isinstance(triggers.get(event), dict) else {}
        given = {name: spec.get("default") for name, spec in declared.items()} | (inputs or {})
        missing = [n for n, s in declared.items() if s.get("required") and given.get(n) in (None, "")]
        assert not missing, f"{workflow}: required inputs {missing} not given"
        sha = self._git("rev-parse", "HEAD").strip()
        github = {
            "event_name": event,
            "ref": ref,
            "sha": sha,
            "workspace": str(self.workspace),
            "repository": self.repository,
            "repository_owner": self.repository.split("/")[0],
            "actor": "octocat",
            "base_ref": base_ref,
            "head_ref": ref.removeprefix("refs/heads/") if base_ref else "",
            "token": "ghs_stand-in-token",
            "workflow": document.get("name", workflow),
            "run_id": "4242",
            "server_url": "https://github.com",
            "event": {
                "before": self._git("rev-parse", "HEAD^").strip() if event == "push" else "",
                "repository": {"default_branch": "main"},
                "pull_request": {"number": 7} if event == "pull_request" else None,
                "inputs": given,
            },
        }
        base = {
            "github": github,
            "inputs": given,
            "secrets": {},
            "vars": {},
            "env": {},
            "runner": {"os": "Linux", "temp": str(self.scratch)},
        }
        workflow_env = {
            k: _text(render(v, Evaluator(base, self.workspace))) for k, v in (document.get("env") or {}).items()
        }
        defaults = (document.get("defaults") or {}).get("run", {})
        runs: dict[str, list[JobRun]] = {}
        for name in self._order(document["jobs"]):
            job = document["jobs"][name]
            needs = _needs(job)
            needs_context = {
                n: {
                    "outputs": runs[n][0].outputs if runs[n] else {},
                    "result": "success" if runs[n] and all(r.ran for r in runs[n]) else "skipped",
                }
                for n in needs
            }
            contexts = {**base, "env": workflow_env, "needs": needs_context}
            skipped_need = any(c["result"] == "skipped" for c in needs_context.values())
            if skipped_need or not condition(job.get("if"), Evaluator(contexts, self.workspace)):
                self.records.append(StepRecord(workflow, name, "(job)", "condition false"))
                runs[name] = []
                continue
            if "uses" in job:  # a reusable workflow: its own run (act runs it in test_workflows_act.py)
                self.records.append(StepRecord(workflow, name, "(job)", f"calls {job['uses']}"))
                runs[name] = []
                continue
            runs[name] = [
                self._run_job(workflow, name, job, {**contexts, "matrix": combo}, defaults, workflow_env)
                for combo in self._matrix(job, contexts)
            ]
        return WorkflowRun(workflow, runs, [r for r in self.records if r.workflow == workflow])

    @staticmethod
    def _order(jobs: dict) -> list[str]:
        done: list[str] = []
        while len(done) < len(jobs):
            ready = [n for n, j in jobs.items() if n not in done and all(d in done for d in _needs(j))]
            assert ready, f"jobs {set(jobs) - set(done)} wait on each other"
            done += ready
        return done

    def _matrix(self, job: dict, contexts: dict) -> list[dict]:
        matrix = render((job.get("strategy") or {}).get("matrix"), Evaluator(contexts, self.workspace))
        if not matrix:
            return [{}]
        assert not {"include", "exclude"} & set(matrix), "include/exclude are not stood in for"
        combos: list[dict] = [{}]
        for key, values in matrix.items():
            assert isinstance(values, list), f"matrix {key} is not a list: {values!r}"
            combos = [{**c, key: v} for c in combos for v in values]
        return combos

    def _run_job(
        self, workflow: str, name: str, job: dict, contexts: dict, defaults: dict, workflow_env: dict[str, str]
    ) -> JobRun:
        label = name if not contexts["matrix"] else f"{name} ({', '.join(map(str, contexts['matrix'].values()))})"
        evaluator = Evaluator(contexts, self.workspace)
        if "environment" in job:
            assert render(job["environment"], evaluator), f"{workflow}: job {label} has an empty environment"
        job_env = {**workflow_env, **{k: _text(render(v, evaluator)) for k, v in (job.get("env") or {}).items()}}
        shell = ((job.get("defaults") or {}).get("run") or defaults).get("shell")
        state = {"env": dict(job_env), "path": [], "steps": {}, "summary": ""}
        failed = False
        for step in job["steps"]:
            step_name = step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0]
            step_contexts = {**contexts, "env": state["env"], "steps": state["steps"]}
            evaluator = Evaluator(step_contexts, self.workspace, failed)
            if not condition(step.get("if"), evaluator):
                self.records.append(StepRecord(workflow, label, step_name, "condition false"))
                continue
            env = {**state["env"], **{k: _text(render(v, evaluator)) for k, v in (step.get("env") or {}).items()}}
            key = (workflow, name, step_name)
            outputs: dict[str, str] = {}
            try:
                if key in self.NEEDS_GITHUB:
                    note = self._check_skipped(step, env, evaluator, state)
                    self.records.append(
                        StepRecord(workflow, label, step_name, f"skipped: {self.NEEDS_GITHUB[key]}", note)
                    )
                elif "uses" in step:
                    note = self._stand_in(step, render(step.get("with") or {}, evaluator), state)
                    self.records.append(StepRecord(workflow, label, step_name, "stand-in", note))
                else:
                    outputs = self._run_script(workflow, label, step_name, step["run"], env, shell, state)
                    self.records.append(StepRecord(workflow, label, step_name, "ran"))
            except AssertionError:
                if not step.get("continue-on-error"):
                    raise
                self.records.append(StepRecord(workflow, label, step_name, "failed (continue-on-error)"))
            if "id" in step:
                state["steps"][step["id"]] = {"outputs": outputs, "outcome": "success", "conclusion": "success"}
        final = Evaluator({**contexts, "steps": state["steps"], "env": state["env"]}, self.workspace)
        job_outputs = {k: _text(render(v, final)) for k, v in (job.get("outputs") or {}).items()}
        return JobRun(label, True, job_outputs, state["summary"])

    # -- steps --------------------------------------------------------------------------------------
    def _files(self) -> dict[str, Path]:
        folder = self.scratch / "files" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        names = {
            "GITHUB_OUTPUT": "output",
            "GITHUB_ENV": "env",
            "GITHUB_PATH": "path",
            "GITHUB_STEP_SUMMARY": "summary",
        }
        files = {variable: folder / name for variable, name in names.items()}
        for path in files.values():
            path.touch()
        return files

    def _process_env(self, env: dict[str, str], state: dict, files: dict[str, Path]) -> dict[str, str]:
        github = {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_REPOSITORY": self.repository,
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": "4242",
            "GITHUB_SHA": self._git("rev-parse", "HEAD").strip(),
            "RUNNER_TEMP": str(self.scratch),
            "RUNNER_OS": "Linux",
        }
        path = [*state["path"], str(self.python_bin), str(HOST_BIN), "/usr/local/bin", "/usr/bin", "/bin"]
        return {
            "HOME": os.environ.get("HOME", str(self.scratch)),
            "LANG": "C.UTF-8",
            **self.machine_env,
            **github,
            **{k: str(v) for k, v in files.items()},
            **env,
            "PATH": os.pathsep.join(path),
        }

    def _run_script(
        self, workflow: str, job: str, step: str, script: str, env: dict[str, str], shell: str | None, state: dict
    ) -> dict[str, str]:
        files = self._files()
        script_file = files["GITHUB_OUTPUT"].parent / "step.sh"
        script_file.write_text(script)
        command = (
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)]
            if shell == "bash"
            else ["bash", "-e", str(script_file)]
        )
        done = subprocess.run(
            command,
            cwd=self.workspace,
            env=self._process_env(env, state, files),
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
        )
        assert done.returncode == 0, (
            f"{workflow} / {job} / {step}: exit {done.returncode}\n--- script\n{script}"
            f"\n--- stdout (end)\n{done.stdout[-4000:]}"
            f"\n--- stderr (end)\n{done.stderr[-4000:]}"
        )
        state["env"].update(read_commands_file(files["GITHUB_ENV"]))
        state["path"][:0] = [line for line in files["GITHUB_PATH"].read_text().splitlines() if line]
        state["summary"] += files["GITHUB_STEP_SUMMARY"].read_text()
        return read_commands_file(files["GITHUB_OUTPUT"])

    def _stand_in(self, step: dict, inputs: dict, state: dict) -> str:
        action = step["uses"].split("@")[0]
        if action == "actions/checkout":
            assert (self.workspace / ".git").is_dir(), "checkout: the workspace is not a git repository"
            assert inputs.get("persist-credentials") is False
            if inputs.get("fetch-depth") == 0:
                assert self._git("branch", "-r").strip(), "fetch-depth 0 but no remote branches to compare with"
            return "the bake is the checkout"
        if action == "actions/setup-python":
            version_file = self.workspace / inputs["python-version-file"]
            assert version_file.is_file(), f"setup-python: {version_file} missing"
            assert version_file.read_text().strip() in ("3.11", "3.12")
            for dependency in str(inputs.get("cache-dependency-path", "")).split():
                assert (self.workspace / dependency).is_file(), f"setup-python cache: {dependency} missing"
            return f"this interpreter ({sys.version.split()[0]}) for {version_file.read_text().strip()}"
        if action == "actions/upload-artifact":
            return self._upload(inputs)
        if action == "actions/download-artifact":
            stored = self.artifacts / inputs["name"]
            assert stored.is_dir(), f"download-artifact: no artifact {inputs['name']!r} was uploaded"
            shutil.copytree(stored, self.workspace / inputs.get("path", "."), dirs_exist_ok=True)
            return f"copied {inputs['name']}"
        if action == "actions/cache":
            return "no cache"
        raise AssertionError(f"no stand-in for {action}")

    def _upload(self, inputs: dict) -> str:
        patterns = [p for p in str(inputs["path"]).splitlines() if p.strip()]
        assert int(inputs.get("retention-days", 0)) > 0, "upload-artifact without retention-days"
        found = [p for pattern in patterns for p in self.workspace.glob(pattern.strip().rstrip("/") or ".")]
        files = [f for p in found for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]
        if not files:
            assert inputs.get("if-no-files-found", "warn") != "error", f"upload-artifact: nothing at {patterns}"
            return f"nothing at {patterns} ({inputs.get('if-no-files-found', 'warn')})"
        target = self.artifacts / inputs["name"]
        for pattern in patterns:  # GitHub stores paths relative to the folder named
            source = self.workspace / pattern.strip()
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            elif source.is_file():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / source.name)
        return f"{len(files)} files as {inputs['name']!r}"

    def _check_skipped(self, step: dict, env: dict[str, str], evaluator: Evaluator, state: dict) -> str:
        """What a skipped step would be handed must exist: files, titles, branches, changes."""
        inputs = render(step.get("with") or {}, evaluator)
        for key, value in {**env, **inputs}.items():
            if key.endswith("_FILE") or (key.endswith("-path") and key != "cache-dependency-path"):
                assert value and (self.workspace / value).is_file(), f"{key}: no file {value!r}"
        action = step.get("uses", "").split("@")[0]
        if action == "peter-evans/create-pull-request":
            for required in ("title", "branch", "commit-message", "token"):
                assert inputs.get(required), f"create-pull-request: empty {required}"
            paths = [p for p in inputs["add-paths"].split() if p]
            changes = self._git("status", "--porcelain", "--untracked-files=all", "--", *paths)
            assert changes.strip(), f"create-pull-request: no changes under {paths}"
            return f"branch {inputs['branch']}: {len(changes.splitlines())} changed files"
        if action == "docker/login-action":
            assert inputs.get("registry") and inputs.get("password") and inputs.get("username")
            return f"registry {inputs['registry']}"
        if action == "docker/build-push-action":
            context = Path(inputs["context"])
            assert (context / "env" / "docker" / "Dockerfile").is_file(), f"build context {context}: no Dockerfile"
            assert inputs.get("tags") and inputs.get("push") in (True, "true"), "no image to push"
            return f"context {context.name}, image {inputs['tags']}"
        if "BENTO_TAG" in env:
            assert env["IMAGE"] and env["BENTO_TAG"], "no image or bento to containerize"
            home = self.workspace / ".bentoml"
            found = subprocess.run(
                [HOST_BIN / "bentoml", "get", env["BENTO_TAG"], "-o", "json"],
                env={**os.environ, "BENTOML_HOME": str(home)},
                capture_output=True,
                text=True,
            )
            assert found.returncode == 0, f"bento {env['BENTO_TAG']} not in {home}: {found.stderr[-2000:]}"
            return f"bento {env['BENTO_TAG']} is in .bentoml/, image {env['IMAGE']}"
        if "TITLE" in env:
            assert env["TITLE"].strip(), "issue without a title"
        return ", ".join(f"{k}={v}" for k, v in env.items() if k.endswith("_FILE") or k == "TITLE")

    def _git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.workspace, capture_output=True, text=True).stdout


def standin_python(folder: Path) -> Path:
    """A virtualenv that sees this one's packages: `pip install` lands in it, not in the shared .venv."""
    subprocess.run([Path(sys.base_prefix) / "bin" / "python3", "-m", "venv", "--without-pip", str(folder)], check=True)
    site = next((folder / "lib").glob("python3.*/site-packages"))
    host_site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    (site / "_host_packages.pth").write_text(f"import site; site.addsitedir({host_site!r})\n")
    return folder / "bin"
