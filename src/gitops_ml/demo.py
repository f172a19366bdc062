"""``make demo``: the whole GitOps loop on the bundled example, in a scratch folder, with real parts.

1. generate a level-2 repository from the template, with a local bare git remote;
2. validate, train, evaluate and card with real MLflow (embedded);
3. package, serve on 127.0.0.1 and smoke-test over HTTP;
4. promote to staging on a branch, verify, merge, deploy; then the same to production;
5. send production traffic (drifted batches of the example) through the served model, keep the
   request ids it answers with, and join the batches' known outcomes back by id (`feedback join`);
6. run drift, get ``retrain``, retrain and leave the retraining branch with its pull-request body;
7. stop everything it started and print where to look.

``DEMO_DIR`` (default ``demo/``) is wiped first, so running it twice works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .example import drifted_batch
from .processes import free_port, stop, wait_for

console = Console(highlight=False, width=int(os.environ.get("COLUMNS", "120")))
TRAFFIC_ROWS = 1500  # enough rows for a sound drift statement, few enough to send in seconds
BATCH = 100


class StepFailed(Exception):
    """A command of a step failed; the message names the command and the log holds its output."""


@dataclass
class Step:
    name: str
    action: Callable[[], str]
    outcome: str = ""
    seconds: float = 0.0
    look: str = ""


@dataclass
class Demo:
    base: Path
    project: Path = field(init=False)
    remote: Path = field(init=False)
    logs: Path = field(init=False)
    server: subprocess.Popen | None = None
    port: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    retrain_branch: str = ""
    looks: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.remote = self.base / "remote.git"
        self.logs = self.base / "logs"

    # -- running commands -------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "BENTOML_DO_NOT_TRACK": "True",
            "DO_NOT_TRACK": "1",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
        if hasattr(self, "project"):
            env["BENTOML_HOME"] = str(self.project / ".bentoml")
        for name in ("MLFLOW_TRACKING_URI", "GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
            env.pop(name, None)  # the demo's project uses its own embedded store, not the caller's
        return env

    def run(self, step: str, *command: str, cwd: Path | None = None) -> str:
        """Run a command, appending its output to the step's log; raise naming it if it fails."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{step}.log"
        with log.open("a", encoding="utf-8") as handle:
            handle.write(f"$ {' '.join(command)}\n")
            done = subprocess.run(
                command, cwd=cwd or self.project, env=self.env(), capture_output=True, text=True, check=False
            )
            handle.write(done.stdout + done.stderr + f"(exit {done.returncode})\n")
        if done.returncode != 0:
            raise StepFailed(f"`{' '.join(command)}` exited {done.returncode}; log: {log}")
        return done.stdout

    def gitops(self, step: str, *args: str) -> dict:
        """A ``gitops-ml`` command with ``--json``; its one JSON object."""
        return json.loads(self.run(step, sys.executable, "-m", "gitops_ml", *args, "--json"))

    def git(self, step: str, *args: str) -> str:
        return self.run(step, "git", *args).strip()

    # -- the steps ---------------------------------------------------------------------
    def generate(self) -> str:
        made = json.loads(
            self.run(
                "generate",
                sys.executable,
                "-m",
                "gitops_ml",
                "new",
                "--no-input",
                "--output-dir",
                str(self.base),
                "--json",
                cwd=self.base,
            )
        )
        self.project = Path(made["path"])
        self.run("generate", "git", "init", "--bare", "--initial-branch=main", str(self.remote), cwd=self.base)
        for args in (
            ("init", "--initial-branch=main"),
            ("config", "user.name", "Demo Team"),
            ("config", "user.email", "demo@example.com"),
            ("add", "-A"),
            ("commit", "-qm", "Initial commit from the gitops-ml template"),
            ("remote", "add", "origin", str(self.remote)),
            ("push", "-q", "origin", "main"),
        ):
            self.git("generate", *args)
        return f"level {made.get('level', 2)} repository, {len(made.get('files', []))} files"

    def pipeline(self) -> str:
        self.gitops("pipeline", "validate")
        trained = self.gitops("pipeline", "train")
        version = trained["version"]
        evaluated = self.gitops("pipeline", "evaluate", str(version))
        card = self.gitops("pipeline", "card", str(version))
        self.versions["candidate"] = version
        self.looks["model card"] = str(self.project / card["path"])
        metric = evaluated["metrics"].get("roc_auc") or next(iter(evaluated["metrics"].values()))
        return f"v{version}: roc_auc {metric:.3f}, gates {'pass' if evaluated['passed'] else 'FAIL'}"

    def serve_and_smoke(self) -> str:
        version = self.versions["candidate"]
        packaged = self.gitops("package", "package", str(version))
        self.start_server("package", str(version))
        smoked = self.gitops("package", "smoke", self.url, "--expect-version", str(version))
        self.stop_server()
        return f"bento {packaged['bento_tag']}; smoke {smoked.get('outcome', 'passed')}"

    def release_to(self, env: str) -> str:
        version = self.versions["candidate"]
        step = f"promote-{env}"
        if env == self.final_env:
            self.complete_card(step, version)
        promoted = self.gitops(step, "promote", str(version), "--to", env, "--branch")
        branch = promoted["branch"]
        self.git(step, "push", "-q", "origin", branch)
        self.gitops(step, "verify", "--base", "origin/main")
        self.git(step, "checkout", "-q", "main")
        self.git(step, "merge", "-q", "--no-ff", branch, "-m", f"Merge pull request: {promoted['title']}")
        self.git(step, "push", "-q", "origin", "main")
        deployed = self.gitops(step, "deploy", env)
        self.looks[f"{env} pull request body"] = str(promoted["body_file"])
        return f"v{version} merged and deployed; image {deployed.get('image', '')}".strip()

    @property
    def final_env(self) -> str:
        return "production"

    JUDGEMENT = ("No protected attributes are features; the gaps above are within the slice gates, and "
                 "region and age are held to parity.")

    def complete_card(self, step: str, version: int) -> None:
        """What a reviewer does before production: fill in the card's FILL-IN sections, commit."""
        from .cards import MEASURED_END, UNFILLED_MARKER, card_path
        from .config import load_spec

        path = card_path(load_spec(self.project), version)
        text = path.read_text(encoding="utf-8")
        lines = [line for line in text.splitlines() if UNFILLED_MARKER not in line]
        filled = (
            "\n".join(lines)
            .replace("## Intended use\n", "## Intended use\nRank customers for retention offers; not for pricing.\n")
            .replace("## Limitations\n", "## Limitations\nTrained on one year of a synthetic example.\n")
        )
        if MEASURED_END in filled:  # the judgement goes under the measured gaps it answers
            filled = filled.replace(f"{MEASURED_END}\n", f"{MEASURED_END}\n{self.JUDGEMENT}\n", 1)
        else:
            filled = filled.replace("## Ethical considerations\n", f"## Ethical considerations\n{self.JUDGEMENT}\n")
        path.write_text(filled + "\n", encoding="utf-8")
        self.git(step, "add", "model_cards")
        self.git(step, "commit", "-qm", f"Complete the model card of v{version} for production")
        self.git(step, "push", "-q", "origin", "main")

    def traffic(self) -> str:
        self.start_server("traffic", "--env", "production")
        batch = drifted_batch(TRAFFIC_ROWS, "moderate", seed=11)
        features = batch.drop(columns=["churned"])
        request_ids: list[str] = []
        for start in range(0, len(features), BATCH):
            rows = json.loads(features.iloc[start : start + BATCH].to_json(orient="records"))
            answers = self.post("/predict_batch", rows)
            request_ids += [answer["request_id"] for answer in answers]  # what a client keeps to label later
        self.stop_server()  # flushes the inference log
        joined = self.record_feedback(batch.assign(request_id=request_ids))
        return (f"{len(request_ids)} rows of moderately drifted traffic served and logged; labels joined back "
                f"by request id: {joined['matched']} matched, {joined['unmatched_labels']} unmatched")

    def record_feedback(self, batch) -> dict:
        """The labels arrive later, as in production: a file of request ids and outcomes, joined with the
        inference log by `gitops-ml feedback join` into the labelled data set that drift and retraining
        read, declared in the spec the way a team would declare its own."""
        (self.project / "data" / "labels.csv").write_text(batch[["request_id", "churned"]].to_csv(index=False),
                                                          encoding="utf-8")
        pyproject = self.project / "pyproject.toml"
        text = pyproject.read_text(encoding="utf-8")
        section = "[tool.gitops-ml.drift]\n"
        if section not in text:
            raise StepFailed(f"{pyproject} has no {section.strip()} section to declare the feedback data in")
        pyproject.write_text(text.replace(section, section + 'feedback = "data/feedback.csv"\n'), encoding="utf-8")
        joined = self.gitops("traffic", "feedback", "join", "data/labels.csv", "--on", "request_id")
        if joined["matched"] != len(batch):
            raise StepFailed(f"feedback join matched {joined['matched']} of {len(batch)} labels; "
                             f"see {self.logs / 'traffic.log'}")
        self.git("traffic", "add", "pyproject.toml", "data/labels.csv", "data/feedback.csv")
        self.git("traffic", "commit", "-qm", "Labelled production data for monitoring and retraining")
        self.git("traffic", "push", "-q", "origin", "main")
        return joined

    def drift_and_retrain(self) -> str:
        drift = self.gitops("drift", "drift", "--env", "production")
        outputs = drift.get("outputs", {})
        self.looks["drift report"] = str(outputs.get("report_html", ""))
        self.looks["drift summary"] = str(outputs.get("summary_md", ""))
        if drift["decision"] != "retrain":
            raise StepFailed(f"drift decided {drift['decision']!r}, expected 'retrain'; see {self.logs / 'drift.log'}")
        retrained = self.gitops("retrain", "retrain", "--env", "production", "--branch")
        if retrained["outcome"] != "promoted":
            raise StepFailed(f"retrain ended {retrained['outcome']!r}: {'; '.join(retrained.get('reasons', []))}")
        promotion = retrained["promotion"]
        self.versions["retrained"], self.retrain_branch = retrained["new_version"], promotion["branch"]
        self.looks["retraining pull request body"] = str(promotion["body_file"])
        return (
            f"drift: {drift['decision']} ({drift['drifted_features']} of {drift['features_checked']} features); "
            f"v{retrained['new_version']} passed the gates, branch {promotion['branch']}"
        )

    def replay_in_production_pull_request(self) -> str:
        """The retrained version goes the whole way: its staging pull request merged and deployed, then its
        production pull request, whose body replays the traffic production just served through it."""
        step = "replay"
        version = self.versions["retrained"]
        branch = self.retrain_branch
        self.git(step, "push", "-q", "origin", branch)
        self.git(step, "checkout", "-q", "main")
        self.git(step, "merge", "-q", "--no-ff", branch, "-m", f"Merge pull request: retrained v{version} to staging")
        self.git(step, "push", "-q", "origin", "main")
        self.gitops(step, "deploy", "staging")
        self.complete_card(step, version)
        promoted = self.gitops(step, "promote", str(version), "--to", self.final_env, "--branch")
        replayed = promoted["replay"]
        self.looks["production pull request body, with the replay"] = str(promoted["body_file"])
        if replayed["agreement"] is None:
            raise StepFailed(f"the replay found no production traffic: {'; '.join(replayed['notes'])}")
        return (f"v{version} on {replayed['rows_replayed']} production requests v{replayed['production_version']} "
                f"answered: {replayed['agreement']:.1%} agreement, shift {replayed['shift']:.3f}; "
                f"branch {promoted['branch']}")

    # -- the server --------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_server(self, step: str, *args: str) -> None:
        self.port = free_port()
        log = self.logs / f"{step}-server.log"
        with log.open("ab") as output:  # the server keeps its own copy of the descriptor
            self.server = subprocess.Popen(
                [sys.executable, "-m", "gitops_ml", "serve", *args, "--port", str(self.port)],
                cwd=self.project,
                env=self.env(),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for(f"{self.url}/readyz", self.server, timeout=90)
        except (RuntimeError, TimeoutError) as exc:
            raise StepFailed(f"`gitops-ml serve` did not become ready: {exc}; log: {log}") from exc

    def post(self, path: str, payload: object) -> object:
        request = urllib.request.Request(
            f"{self.url}{path}", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())

    def stop_server(self) -> None:
        if self.server is not None:
            stop(self.server, grace=20)  # SIGTERM first: the service flushes its inference log
            self.server = None


def steps(demo: Demo) -> list[Step]:
    return [
        Step("generate a level-2 repository", demo.generate),
        Step("validate, train, evaluate, card", demo.pipeline),
        Step("package, serve, smoke", demo.serve_and_smoke),
        Step("promote to staging, verify, merge, deploy", lambda: demo.release_to("staging")),
        Step("promote to production, verify, merge, deploy", lambda: demo.release_to("production")),
        Step("production traffic through the served model", demo.traffic),
        Step("drift, retrain, retraining pull request", demo.drift_and_retrain),
        Step("retrained version to staging, then its production pull request with the replay",
             demo.replay_in_production_pull_request),
    ]


def main() -> int:
    base = Path(os.environ.get("DEMO_DIR", "demo")).resolve()
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    demo = Demo(base)
    plan = steps(demo)
    started = time.monotonic()
    failed: Step | None = None
    try:
        for number, step in enumerate(plan, 1):
            console.print(f"[bold][{number}/{len(plan)}][/bold] {step.name} ...")
            begin = time.monotonic()
            try:
                step.outcome = step.action()
            except Exception as exc:  # noqa: BLE001 - any failure stops the demo with the step named
                step.seconds = time.monotonic() - begin
                step.outcome = f"FAILED: {exc}"
                failed = step
                break
            step.seconds = time.monotonic() - begin
            console.print(f"      {step.outcome} ({step.seconds:.1f} s)")
    finally:
        demo.stop_server()
    _closing_table(demo, plan, time.monotonic() - started)
    if failed:
        console.print(f"[red]step failed: {failed.name}[/red]")
        for log in sorted(demo.logs.glob("*.log"), key=lambda p: p.stat().st_mtime)[-1:]:
            console.print(f"--- last lines of {log} ---")
            console.print("\n".join(log.read_text(errors="replace").splitlines()[-40:]), markup=False)
        return 1
    return 0


def _closing_table(demo: Demo, plan: list[Step], total: float) -> None:
    table = Table(title=f"make demo: {total:.0f} s in all", title_justify="left")
    for column in ("step", "outcome", "time"):
        table.add_column(column, overflow="fold")
    for step in plan:
        table.add_row(step.name, step.outcome or "not run", f"{step.seconds:.1f} s" if step.outcome else "")
    console.print(table)
    if not hasattr(demo, "project"):
        return
    where = Table(title="where to look", title_justify="left")
    where.add_column("what")
    where.add_column("where", overflow="fold")
    where.add_row("the generated repository", str(demo.project))
    for what, path in demo.looks.items():
        where.add_row(what, path)
    where.add_row(
        "MLflow UI", f"cd {demo.project} && mlflow ui --host 127.0.0.1 --backend-store-uri sqlite:///.mlflow/mlflow.db"
    )
    where.add_row("step logs", str(demo.logs))
    console.print(where)


if __name__ == "__main__":
    sys.exit(main())
