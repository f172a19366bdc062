"""The cookiecutter template: bakes per level and task, hooks, offline workflow checks, `gitops-ml new`,
the wheel that ships the template, and cruft create/update.

Bakes are cheap (about 0.1 s); one bake per configuration is shared by the module's tests.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from cookiecutter.exceptions import FailedHookException

from gitops_ml import __version__, scaffold
from gitops_ml.cli import main

from .support.bake import CYCLED, PRODUCT, REPO, TEMPLATE, bake, config_generator, config_id, files_of, template_facts
from .support.workflow_runner import read_commands_file

BIN = Path(sys.executable).parent
EXAMPLE_DATA = REPO / "src" / "gitops_ml" / "example" / "data" / "churn.csv"

# Every level with both tasks, every Python version and licence at least once: from cookiecutter.json.
MATRIX = config_generator()

COMMON_FILES = {
    ".github/CODEOWNERS",
    ".github/default-token-note.md",
    ".github/dependabot.yml",
    ".github/pull_request_template.md",
    ".github/workflows/ci.yml",
    ".gitignore",
    ".pre-commit-config.yaml",
    ".python-version",
    "LICENSE",
    "Makefile",
    "README.md",
    "pyproject.toml",
    "environments/production/README.md",
    "environments/staging/README.md",
    "model_cards/README.md",
    "src/{package}/__init__.py",
    "src/{package}/model.py",
    "src/{package}/schema.py",
    "tests/conftest.py",
    "tests/test_model.py",
    "tests/test_pipeline.py",
    "tests/test_schema.py",
}
LEVEL_WORKFLOWS = {
    "0": {"ci.yml"},
    "1": {"ci.yml", "train.yml", "drift.yml", "promote.yml", "keepalive.yml"},
    "2": {"ci.yml", "train.yml", "drift.yml", "promote.yml", "keepalive.yml", "pipeline.yml", "verify.yml",
          "deploy.yml", "reconcile.yml"},
}
DATA_FILE = {"classification": "data/churn.csv", "regression": "data/charges.csv"}
# Level 2's Kubernetes base, and the manifests of the GitOps controller chosen (none: the base only).
KUBERNETES_BASE = {f"deploy/kubernetes/base/{name}.yaml" for name in (
    "kustomization", "deployment", "service", "serviceaccount", "poddisruptionbudget", "horizontalpodautoscaler",
    "configmap")}  # fmt: skip
CONTROLLER_FILES = {
    "argocd": {"deploy/argocd/staging.yaml", "deploy/argocd/production.yaml"},
    "flux": {"deploy/flux/repository.yaml", "deploy/flux/staging.yaml", "deploy/flux/production.yaml"},
    "none": set(),
}

# Every action a generated workflow may use: the full commit SHA of the version in its comment.
PINS = {
    "actions/checkout": ("11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "actions/setup-python": ("0b93645e9fea7318ecaed2b359559ac225c90a2b", "v5.3.0"),
    "actions/upload-artifact": ("b4b15b8c7c6ac21ea08fcf65892d2ee8f75cf882", "v4.4.3"),
    "actions/download-artifact": ("fa0a91b85d4f404e444e00e005971372dc801d16", "v4.1.8"),
    "actions/cache": ("6849a6489940f00c2f30c0fb92c6274307ccb58a", "v4.1.2"),
    "actions/github-script": ("60a0d83039c74a4aee543508d2ffcb1c3799cdea", "v7.0.1"),
    "peter-evans/create-pull-request": ("5e914681df9dc83aa4e4905692ca88beb2f9e91f", "v7.0.5"),
    "docker/setup-buildx-action": ("c47758b77c9736f4b2ef4073d4d51994fabfe349", "v3.7.1"),
    "docker/login-action": ("9780b0c442fbb1117ed29e0efdff1e18412f7567", "v3.3.0"),
    "docker/build-push-action": ("263435318d21b8e681c14492fe198d362a7d2c83", "v6.18.0"),
    "actions/create-github-app-token": ("bcd2ba49218906704ab6c1aa796996da409d3eb1", "v3.2.0"),
}
MAKE_TARGETS = [
    "help",
    "setup",
    "lint",
    "test",
    "validate",
    "train",
    "evaluate",
    "card",
    "package",
    "serve",
    "smoke",
    "promote",
    "verify",
    "deploy",
    "drift",
    "retrain",
    "all",
]


@pytest.fixture(scope="module")
def bakes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[dict[str, str], Path]]:
    """One bake per configuration of the matrix, shared by the module (tests only read them)."""
    root = tmp_path_factory.mktemp("bakes")
    return [
        (
            config,
            bake(root / config_id(config), **config, project_name=f"Churn L{config['mlops_level']} {config['task']}"),
        )
        for config in MATRIX
    ]


def pick(bakes, **wanted: str) -> Path:
    """The first bake of the matrix whose answers include ``wanted``."""
    return next(path for config, path in bakes if wanted.items() <= config.items())


def all_bakes(bakes) -> list[tuple[dict[str, str], Path]]:
    return list(bakes)


def test_the_matrix_bakes_every_option_of_every_choice_question():
    """What config_generator promises: a choice added to cookiecutter.json is baked without a test edit."""
    facts = template_facts()
    for name in (*PRODUCT, *CYCLED):
        assert {config[name] for config in MATRIX} == set(facts[name]), name
    levels_tasks = {(config["mlops_level"], config["task"]) for config in MATRIX}
    assert len(levels_tasks) == len(facts["mlops_level"]) * len(facts["task"])


# -- what a bake holds ------------------------------------------------------------------------------
@pytest.mark.parametrize("config", MATRIX, ids=config_id)
def test_bake_has_the_files_of_its_level_and_nothing_else(bakes, config):
    level, task = config["mlops_level"], config["task"]
    project = pick(bakes, **config)
    package = project.name.replace("-", "_")
    expected = {f.format(package=package) for f in COMMON_FILES}
    expected |= {f".github/workflows/{name}" for name in LEVEL_WORKFLOWS[level]}
    expected.add(DATA_FILE[task])
    if level == "2":
        expected |= KUBERNETES_BASE | CONTROLLER_FILES[config["gitops_controller"]]
    if level == "2" and config["release_strategy"] == "canary":
        controller = config["gitops_controller"]
        expected |= {".github/workflows/canary.yml", "deploy/kubernetes/canary/kustomization.yaml",
                     "environments/production/canary/kustomization.yaml"}  # fmt: skip
        expected |= {f"deploy/{controller}/production-canary.yaml"} if controller != "none" else set()
    assert files_of(project) == expected


@pytest.mark.parametrize("config", MATRIX, ids=config_id)
def test_no_jinja_is_left_and_github_expressions_only_under_github(bakes, config):
    project = pick(bakes, **config)
    for path in project.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(project).as_posix()
        assert not re.search(r"\{\{|\{%|\{#|cookiecutter", relative), relative
        text = path.read_text(encoding="utf-8")
        leftovers = re.findall(r"\{%|%\}|\{#|(?<!\$)\{\{|cookiecutter\.", text)
        assert not leftovers, f"{relative}: unrendered Jinja {leftovers[:3]}"
        if "${{" in text:
            assert relative.startswith(".github/"), f"{relative}: GitHub expression outside .github/"
        else:
            assert "{{" not in text, f"{relative}: braces left by the template"


def test_github_expressions_survive_rendering(bakes):
    """Workflows copied verbatim and the rendered drift.yml and keepalive.yml keep GitHub's ${{ }} intact."""
    project = pick(bakes, mlops_level="2", task="classification")
    for name in LEVEL_WORKFLOWS["2"]:
        text = (project / ".github" / "workflows" / name).read_text()
        assert any(f"${{{{ {context}." in text for context in ("github", "inputs", "secrets")), name
    drift = (project / ".github" / "workflows" / "drift.yml").read_text()
    assert "${{ needs.drift.outputs.decision == 'retrain' }}" in drift
    assert 'cron: "17 6 * * 1"' in drift
    keepalive = (project / ".github" / "workflows" / "keepalive.yml").read_text()
    assert "GH_TOKEN: ${{ github.token }}" in keepalive and "{%" not in keepalive


@pytest.mark.parametrize("config", MATRIX, ids=config_id)
def test_project_settings_follow_the_answers(bakes, config):
    import tomllib

    task, python = config["task"], config["python_version"]
    project = pick(bakes, **config)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    package = project.name.replace("-", "_")
    spec = pyproject["tool"]["gitops-ml"]
    assert spec["task"] == task
    assert spec["data"] == DATA_FILE[task]
    assert spec["schema"].startswith(f"{package}.schema:")
    assert spec["model_factory"] == f"{package}.model:build_model"
    assert "tracking_uri" not in spec  # embedded by default
    assert spec["release"]["image_repository"] == f"ghcr.io/your-org/{project.name}"
    assert pyproject["project"]["dependencies"] == [f"gitops-ml=={__version__}"]
    assert (project / ".python-version").read_text().strip() == python
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + python.replace(".", "")

    from gitops_ml.config import load_spec

    loaded = load_spec(project)  # the engine accepts it
    assert loaded.target == ("churned" if task == "classification" else "monthly_charges")


def test_template_engine_version_is_the_package_version():
    context = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    assert context["_engine_version"] == __version__


def test_template_sample_is_the_bundled_example_data():
    """The template carries its own copy (a checkout-free `cookiecutter <repo>` needs it); keep them equal."""
    shipped = TEMPLATE / "{{cookiecutter.project_slug}}" / "data" / "churn.csv"
    assert shipped.read_bytes() == EXAMPLE_DATA.read_bytes()


def test_regression_sample_has_the_target_and_no_leaking_columns(bakes):
    project = pick(bakes, mlops_level="2", task="regression")
    with (project / "data" / "charges.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    with EXAMPLE_DATA.open() as handle:
        original = list(csv.DictReader(handle))
    assert len(rows) == len(original)
    assert list(rows[0])[-1] == "monthly_charges"
    assert "total_charges" not in rows[0] and "churned" not in rows[0]
    assert [r["monthly_charges"] for r in rows[:50]] == [r["monthly_charges"] for r in original[:50]]


def test_regression_data_meets_its_contract(bakes):
    from gitops_ml.config import load_spec
    from gitops_ml.data import check_data

    spec = load_spec(pick(bakes, mlops_level="0", task="regression"))
    _, report = check_data(spec)
    assert report.passed, report.as_dict()


def test_engine_source_git_points_at_this_repository(tmp_path):
    import tomllib

    project = bake(
        tmp_path,
        engine_source="git",
        mlflow_tracking_uri="https://mlflow.example.com",
        license="MIT",
        author_name="Ada Lovelace",
    )
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["dependencies"] == [
        f"gitops-ml @ git+https://github.com/gitops-ml/gitops-ml@v{__version__}"
    ]
    assert pyproject["tool"]["gitops-ml"]["tracking_uri"] == "https://mlflow.example.com"
    licence = (project / "LICENSE").read_text()
    assert licence.startswith("MIT License\n") and "Ada Lovelace" in licence and licence.endswith("SOFTWARE.\n")


def test_apache_licence_is_the_full_text(bakes):
    text = (pick(bakes, license="Apache-2.0") / "LICENSE").read_text()
    assert "Apache License" in text and "END OF TERMS AND CONDITIONS" in text and text.endswith("License.\n")


# -- workflows ----------------------------------------------------------------------------------------
def workflows(bakes) -> list[Path]:
    return sorted(p for _, project in all_bakes(bakes) for p in (project / ".github" / "workflows").glob("*.yml"))


def test_every_action_is_pinned_to_a_known_full_sha_with_its_version(bakes):
    for path in workflows(bakes):
        for line in path.read_text().splitlines():
            match = re.search(r"uses:\s*([^@\s]+)@(\S+)(.*)$", line)
            if not match:
                continue
            action, ref, comment = match.groups()
            assert action in PINS, f"{path.name}: {action} is not among the pinned actions"
            sha, version = PINS[action]
            assert ref == sha, f"{path.name}: {action}@{ref} is not pinned to {sha}"
            assert comment.strip() == f"# {version}", f"{path.name}: {action} lacks '# {version}'"


def test_workflows_are_hardened(bakes):
    """Per-job permissions, no workflow-wide grant, no credentials kept, concurrency, artifact retention,
    and no ${{ }} inside a run: script."""
    for path in workflows(bakes):
        document = yaml.safe_load(path.read_text())
        assert document["permissions"] == {}, f"{path}: workflow-level permissions must be empty"
        # Deploy's groups are per job (per environment), so a merge cannot cancel another environment's
        # deployment waiting for reviewers; every other workflow has one group.
        concurrency = [job["concurrency"] for job in document["jobs"].values()] if path.name == "deploy.yml" \
            else [document["concurrency"]]
        assert all("group" in c for c in concurrency), path
        for name, job in document["jobs"].items():
            assert "permissions" in job, f"{path.name}: job {name} has no permissions"
            if "uses" in job:  # a reusable workflow's call: its own jobs carry the timeouts
                assert job["uses"].startswith("./.github/workflows/"), f"{path.name}: job {name}"
                continue
            assert "timeout-minutes" in job, f"{path.name}: job {name} has no timeout"
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), f"{path.name}: {step.get('name')}: ${{{{ }}}} in run:"
                uses = step.get("uses", "")
                if uses.startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, f"{path.name}: {name}"
                if uses.startswith("actions/upload-artifact@"):
                    assert step["with"]["retention-days"] > 0, f"{path.name}: {name}"
                # The jobs that publish (an image, an alias) take no cache another run could have poisoned.
                if uses.startswith("actions/setup-python@"):
                    publishes = name == "deploy" or (name == "promote" and "docker/build-push-action" in str(job))
                    assert step["with"].get("cache") == (None if publishes else "pip"), f"{path.name}: {name}"


def test_check_jsonschema_and_zizmor_find_nothing_offline(bakes):
    files = [str(p) for p in workflows(bakes)]
    schema = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    dependabot = [str(project / ".github" / "dependabot.yml") for _, project in all_bakes(bakes)]
    schema = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.dependabot", *dependabot], capture_output=True, text=True
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    for _, project in all_bakes(bakes):
        for persona in ("regular", "pedantic"):
            audit = subprocess.run(
                [BIN / "zizmor", "--offline", "--no-progress", "--persona", persona, str(project / ".github")],
                capture_output=True,
                text=True,
            )
            assert audit.returncode == 0, f"{project.name} ({persona}):\n{audit.stdout}{audit.stderr}"
            assert "No findings to report" in audit.stdout + audit.stderr


@pytest.mark.parametrize("config", MATRIX, ids=config_id)
def test_readme_lists_every_secret_and_states_githubs_behaviours(bakes, config):
    project = pick(bakes, **config)
    readme = (project / "README.md").read_text()
    used = {
        name
        for path in (project / ".github" / "workflows").glob("*.yml")
        for name in re.findall(r"secrets\.(\w+)", path.read_text())
    }
    assert bool(used) == (config["mlops_level"] != "0"), used  # level 0's CI needs no secret
    for name in used:
        assert f"`{name}`" in readme, f"README does not list the secret {name}"
    assert "GitHub starts no workflow for a pull request opened" in " ".join(readme.split())
    assert "PROMOTION_APP_ID" in readme and "PROMOTION_TOKEN" not in readme
    assert "only on the default branch" in readme and "60 days without activity" in readme
    if config["mlops_level"] == "2":
        for setting in ("`staging`, `production` | environments", "required status check", "code owners"):
            assert setting in readme, setting


def test_the_workflows_call_only_make_targets_that_exist(bakes):
    project = pick(bakes, mlops_level="2", task="classification")
    makefile = (project / "Makefile").read_text()
    defined = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))
    assert set(MAKE_TARGETS) <= defined
    for path in (project / ".github" / "workflows").glob("*.yml"):
        for step in (s for job in yaml.safe_load(path.read_text())["jobs"].values() for s in job.get("steps", [])):
            for target in re.findall(r"\bmake ([a-z][a-z-]*)", step.get("run", "")):
                assert target in defined, f"{path.name}: make {target} is not a target"


def test_make_help_lists_every_target(bakes):
    project = pick(bakes, mlops_level="0", task="classification")
    shown = subprocess.run(["make", "-s", "help"], cwd=project, capture_output=True, text=True, check=True).stdout
    listed = set(re.findall(r"^\s+([a-z][a-z-]*)\s", shown, flags=re.M))
    assert set(MAKE_TARGETS) <= listed


def test_make_with_empty_venv_uses_the_tools_on_path(bakes):
    """VENV= makes every target call the tools on PATH and never create a virtualenv."""
    project = pick(bakes, mlops_level="0", task="regression")
    dry = subprocess.run(
        ["make", "-n", "validate", "promote", "deploy", "VENV=", "VERSION=3", "ENV=production"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "gitops-ml validate\n" in dry
    assert "gitops-ml promote 3 --to production\n" in dry
    assert "gitops-ml deploy production\n" in dry
    assert "venv" not in dry
    default = subprocess.run(["make", "-n", "validate"], cwd=project, capture_output=True, text=True, check=True).stdout
    assert "-m venv .venv" in default and ".venv/bin/gitops-ml validate" in default


def test_changed_environments_follows_the_declared_order(bakes, tmp_path):
    project = shutil.copytree(pick(bakes, mlops_level="2", task="classification"), tmp_path / "repo")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=project, check=True)
    for env in ("production", "staging"):
        (project / "environments" / env / "release.yaml").write_text("version: 1\n")
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "release"], cwd=project, check=True)

    outputs = tmp_path / "github-output"

    def changed(**env: str) -> str:
        # As deploy.yml runs it: the engine writes $GITHUB_OUTPUT itself. Under a parent make
        # (MAKELEVEL set) make prints "Entering directory" lines on stdout; the output stays clean.
        outputs.write_text("")
        subprocess.run(
            ["make", "changed-environments", f"PYTHON={sys.executable}", "VENV="],
            cwd=project,
            capture_output=True,
            text=True,
            check=True,
            env={**_path_env(), "MAKELEVEL": "1", "GITHUB_OUTPUT": str(outputs), **env},
        )
        return read_commands_file(outputs)["environments"]

    assert changed() == '["staging", "production"]'
    assert changed(REQUESTED="production") == '["production"]'
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "nothing"], cwd=project, check=True)
    assert changed() == "[]"


def _path_env() -> dict[str, str]:
    import os

    return {"PATH": f"{BIN}:{os.environ['PATH']}", "HOME": os.environ.get("HOME", "/tmp")}


# -- the pre-generation hook ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"package_name": "2fast"}, "package_name '2fast' is not an importable Python package name"),
        ({"package_name": "class"}, "not an importable Python package name"),
        ({"project_slug": "My Project"}, "project_slug 'My Project' is not a repository name"),
        ({"author_email": "nobody"}, "author_email 'nobody' is not an email address; write it as name@example.com"),
        ({"drift_schedule": "0 25 * * *"}, "the hour field '25' is not valid"),
        ({"drift_schedule": "every day"}, "it needs five fields"),
        ({"drift_schedule": "*/0 * * * *"}, "the minute field '*/0' is not valid"),
        ({"github_owner": "-bad-"}, "github_owner '-bad-' is not a GitHub user or organisation name"),
        ({"container_registry": "GHCR.io/Acme"}, "container_registry 'GHCR.io/Acme' is not a registry"),
        ({"mlflow_tracking_uri": "localhost:5000"}, "mlflow_tracking_uri 'localhost:5000' is not a tracking URI"),
    ],
)
def test_pre_gen_hook_rejects_bad_answers_and_writes_nothing(tmp_path, capfd, answers, message):
    with pytest.raises(FailedHookException):
        bake(tmp_path, **answers)
    assert list(tmp_path.iterdir()) == []
    err = capfd.readouterr().err
    assert message in err, err
    assert "Nothing was generated" in err


@pytest.mark.parametrize("cron", ["17 6 * * 1", "0 */6 * * *", "30 2 1-15 jan,jul MON-FRI", "5,35 * * * 0,7"])
def test_pre_gen_hook_accepts_good_crons(tmp_path, cron):
    project = bake(tmp_path, drift_schedule=cron)
    assert f'cron: "{cron}"' in (project / ".github" / "workflows" / "drift.yml").read_text()


def test_answers_with_quotes_cannot_break_the_hooks(tmp_path, capfd):
    with pytest.raises(FailedHookException):
        bake(tmp_path, author_email='a"); import os; os.system("echo pwned") #@x.io')
    assert "pwned" not in capfd.readouterr().out


# -- gitops-ml new ---------------------------------------------------------------------------------------
def test_new_bakes_the_bundled_template(tmp_path):
    assert scaffold.template_dir().resolve() == TEMPLATE.resolve()
    result = CliRunner().invoke(
        main,
        [
            "new",
            "--no-input",
            "--output-dir",
            str(tmp_path),
            "--json",
            "project_name=Fraud Scores",
            "mlops_level=1",
            "task=regression",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["path"] == str(tmp_path / "fraud-scores")
    assert payload["level"] == 1
    assert payload["workflows"] == ["ci.yml", "drift.yml", "keepalive.yml", "promote.yml", "train.yml"]
    assert "data/charges.csv" in payload["files"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bogus=1"], "the template has no question 'bogus'"),
        (["mlops_level"], "expected KEY=VALUE"),
        (["task=forecast"], "forecast provided for choice variable task"),
        (["author_email=nope"], "the template refused the answers"),
    ],
)
def test_new_refuses_bad_answers_with_exit_2_and_writes_nothing(tmp_path, capfd, args, message):
    result = CliRunner().invoke(main, ["new", "--no-input", "-o", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.stderr + capfd.readouterr().err  # the hook's own words, no stack
    assert list(tmp_path.iterdir()) == []


def test_new_refuses_an_existing_folder(tmp_path):
    scaffold.new({}, tmp_path)
    result = CliRunner().invoke(main, ["new", "--no-input", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "already exists" in result.stderr


def test_the_command_line_entry_point_runs_new(tmp_path):
    done = subprocess.run(
        [BIN / "gitops-ml", "new", "--no-input", "-o", str(tmp_path), "mlops_level=0"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {tmp_path / 'customer-churn'}" in done.stdout and "workflows: ci.yml" in done.stdout


@pytest.mark.slow
def test_the_wheel_ships_the_template_and_new_bakes_from_it(tmp_path):
    """Build the wheel from a copy of the checkout (the build writes build/ folders), then bake from it."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "src", "template"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name, **({"symlinks": True} if copy is shutil.copytree else {}))
    for junk in source.glob("src/*.egg-info"):
        shutil.rmtree(junk)
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source), "-w", str(wheels)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("gitops_ml-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "unpacked")
    expected = {
        f"gitops_ml/template/{p.relative_to(TEMPLATE).as_posix()}"
        for p in TEMPLATE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert expected <= names
    baked = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); from gitops_ml import scaffold; "
            "r = scaffold.new({'mlops_level': '2'}, sys.argv[2]); print(scaffold.TEMPLATE_DIR); print(r.path)",
            str(tmp_path / "unpacked"),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert baked.returncode == 0, baked.stderr
    template_dir, project = baked.stdout.split()
    assert template_dir.startswith(str(tmp_path / "unpacked"))
    assert (Path(project) / ".github" / "workflows" / "deploy.yml").is_file()


# -- cruft ------------------------------------------------------------------------------------------------
def _git(cwd: Path, *args: str) -> str:  # the cruft test's identity (t@example.com), kept as it was
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.slow
def test_cruft_create_and_update_bring_a_template_change(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _path_env()["PATH"])
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    shutil.copytree(TEMPLATE, upstream / "template")
    _git(upstream, "init", "-q", "-b", "main")
    _git(upstream, "add", "-A")
    _git(upstream, "commit", "-qm", "template")

    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(
        [
            BIN / "cruft",
            "create",
            str(upstream),
            "--directory",
            "template",
            "--no-input",
            "--output-dir",
            str(work),
            "--extra-context",
            json.dumps({"mlops_level": "1"}),
        ],
        check=True,
        capture_output=True,
    )
    project = work / "customer-churn"
    assert json.loads((project / ".cruft.json").read_text())["directory"] == "template"
    assert not (project / ".github" / "workflows" / "deploy.yml").exists()
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "generated")

    makefile = upstream / "template" / "{{cookiecutter.project_slug}}" / "Makefile"
    added = "doctor: ## added upstream\n\t@echo healthy\n\n"
    makefile.write_text(makefile.read_text().replace("clean: ## remove", added + "clean: ## remove"))
    _git(upstream, "commit", "-qam", "add doctor")

    check = subprocess.run([BIN / "cruft", "check"], cwd=project, capture_output=True, text=True)
    assert check.returncode != 0  # the template moved on
    subprocess.run(
        [BIN / "cruft", "update", "--skip-apply-ask", "--allow-untracked-files"],
        cwd=project,
        check=True,
        capture_output=True,
        text=True,
    )
    assert "doctor: ## added upstream" in (project / "Makefile").read_text()
    assert not (project / ".github" / "workflows" / "deploy.yml").exists()  # the level stays what it was
    assert subprocess.run(["make", "-s", "doctor"], cwd=project, capture_output=True, text=True).stdout == "healthy\n"
    assert subprocess.run([BIN / "cruft", "check"], cwd=project).returncode == 0


def _load(path: Path, name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_classification_bake_keeps_the_bundled_examples_contract_and_model(bakes):
    """The template's sample code is the engine's example: a change to one must reach the other."""
    from sklearn.base import clone

    from gitops_ml.example.model import build_model
    from gitops_ml.example.schema import ChurnSchema

    project = pick(bakes, task="classification")
    package = next((project / "src").iterdir())
    baked_schema = _load(package / "schema.py", "baked_schema").ChurnSchema.to_schema()
    example = ChurnSchema.to_schema()
    assert list(baked_schema.columns) == list(example.columns)
    for name, column in example.columns.items():
        baked = baked_schema.columns[name]
        assert (str(baked.dtype), baked.nullable) == (str(column.dtype), column.nullable), name
        assert [repr(c) for c in baked.checks] == [repr(c) for c in column.checks], name
    baked_model = _load(package / "model.py", "baked_model").build_model()
    assert clone(baked_model).get_params(deep=False).keys() == build_model().get_params(deep=False).keys()
    assert repr(baked_model) == repr(build_model())


def test_release_strategy_reaches_the_settings_and_the_canary_workflow(bakes):
    """Both answers are baked at level 2 (CYCLED): the bake's settings say it, and only a level-2 canary bake
    has the Canary workflow (a status on a schedule, complete/abort by hand)."""
    import tomllib

    seen = set()
    for config, project in bakes:
        release = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["gitops-ml"]["release"]
        assert (release["strategy"], release["canary_weight"]) == (config["release_strategy"], 0.1)
        workflow = project / ".github/workflows/canary.yml"
        assert workflow.is_file() == (config["mlops_level"] == "2" and config["release_strategy"] == "canary")
        if workflow.is_file():
            triggers = yaml.safe_load(workflow.read_text())[True]  # PyYAML reads the key `on` as True
            assert "schedule" in triggers, project
            assert triggers["workflow_dispatch"]["inputs"]["action"]["options"] == ["status", "complete", "abort"]
        seen.add((config["mlops_level"], config["release_strategy"]))
    assert {("2", "direct"), ("2", "canary")} <= seen
