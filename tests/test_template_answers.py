"""Bad template answers, as a hostile or careless user gives them: one table, both ways of baking.

For every case: ``cookiecutter --no-input`` (its own command line, in-process) exits 1 with a message
that names the answer the user gave, and ``gitops-ml new`` exits 2 with a message naming it and no
traceback; neither leaves a folder behind. ``caught_by`` says who refuses it under plain cookiecutter:
the template's pre-generation hook, or cookiecutter itself before any hook runs (choice questions, and
Jinja it cannot parse: those end in cookiecutter's own traceback, which a hook cannot prevent).
Then: every free-text answer with quotes, backslashes and non-ASCII bakes valid TOML, YAML, Markdown
and importable Python.
"""

from __future__ import annotations

import ast
import tomllib

import pytest
import yaml
from click.testing import CliRunner
from cookiecutter.cli import main as cookiecutter_cli

from gitops_ml.cli import main

from .support.bake import TEMPLATE, bake, files_of

HOOK, COOKIECUTTER = "hook", "cookiecutter"

# (id, answers, caught_by under plain cookiecutter, text naming the answer in cookiecutter's output,
#  text naming the answer in gitops-ml new's output)
CASES = [
    # template syntax (issue 15 item 3): never rendered by `new`; refused by the hook from the given text
    (
        "jinja-expression-in-name",
        {"project_name": "Churn {{ 7*7 }}"},
        HOOK,
        "project_name 'Churn {{ 7*7 }}' contains template syntax",
        "answer project_name='Churn {{ 7*7 }}' contains",
    ),
    (
        "jinja-globals-in-description",
        {"description": "{{ lipsum.__globals__['os'].getcwd() }}"},
        HOOK,
        "description \"{{ lipsum.__globals__['os'].getcwd() }}\" contains template syntax",
        "answer description=\"{{ lipsum.__globals__['os'].getcwd() }}\" contains template syntax",
    ),
    (
        "jinja-comment-in-author",
        {"author_name": "Ada {# hidden #}"},
        HOOK,
        "author_name 'Ada {# hidden #}' contains template syntax",
        "answer author_name='Ada {# hidden #}' contains",
    ),
    (
        "jinja-reference-in-owner",
        {"github_owner": "{{ cookiecutter.project_slug }}"},
        HOOK,
        "github_owner '{{ cookiecutter.project_slug }}' contains template syntax",
        "answer github_owner='{{ cookiecutter.project_slug }}' contains",
    ),
    (
        "jinja-in-registry",
        {"container_registry": "ghcr.io/{{ 'acme' }}"},
        HOOK,
        "container_registry \"ghcr.io/{{ 'acme' }}\" contains template syntax",
        "answer container_registry=\"ghcr.io/{{ 'acme' }}\" contains",
    ),
    (
        "jinja-raw-block-in-description",
        {"description": "{% raw %}{{ x }}{% endraw %}"},
        HOOK,
        "description '{% raw %}{{ x }}{% endraw %}' contains template syntax",
        "answer description='{% raw %}",
    ),
    (
        "jinja-statement-in-slug",
        {"project_slug": "churn{% if true %}-x{% endif %}"},
        HOOK,
        "project_slug 'churn{% if true %}-x{% endif %}' contains template syntax",
        "answer project_slug='churn{% if",
    ),
    # issue 15 item 14: Jinja cookiecutter cannot parse ends in its traceback before hooks; `new` refuses it
    (
        "unclosed-raw-in-description",
        {"description": "a {% raw %} b"},
        COOKIECUTTER,
        "Missing end of raw directive",
        "answer description='a {% raw %} b' contains template syntax",
    ),
    # one-line answers
    (
        "newline-in-description",
        {"description": "first\nsecond"},
        HOOK,
        "description 'first\\nsecond' contains a line break",
        "answer description='first\\nsecond' contains a line",
    ),
    (
        "carriage-return-in-author",
        {"author_name": "Ada\rLovelace"},
        HOOK,
        "author_name 'Ada\\rLovelace' contains a line break",
        "answer author_name='Ada\\rLovelace' contains a line",
    ),
    (
        "newline-in-name",
        {"project_name": "Churn\nModel"},
        HOOK,
        "project_name 'Churn\\nModel' contains a line break",
        "answer project_name='Churn\\nModel' contains a line",
    ),
    (
        "nul-in-email",
        {"author_email": "a\x00@example.com"},
        HOOK,
        "author_email 'a\\x00@example.com' contains a line break",
        "answer author_email='a\\x00@example.com'",
    ),
    # choice questions (issue 15 item 14): cookiecutter refuses them itself, before any hook
    (
        "level-3",
        {"mlops_level": "3"},
        COOKIECUTTER,
        "3 provided for choice variable mlops_level",
        "answer mlops_level='3' refused",
    ),
    (
        "python-2.7",
        {"python_version": "2.7"},
        COOKIECUTTER,
        "2.7 provided for choice variable python_version",
        "answer python_version='2.7' refused",
    ),
    (
        "task-forecast",
        {"task": "forecast"},
        COOKIECUTTER,
        "forecast provided for choice variable task",
        "answer task='forecast' refused",
    ),
    (
        "licence-gpl",
        {"license": "GPL-3.0"},
        COOKIECUTTER,
        "GPL-3.0 provided for choice variable license",
        "answer license='GPL-3.0' refused",
    ),
    (
        "engine-source-pypi",
        {"engine_source": "pypi"},
        COOKIECUTTER,
        "pypi provided for choice variable engine_source",
        "answer engine_source='pypi' refused",
    ),
    (
        "release-strategy-blue-green",
        {"release_strategy": "blue-green"},
        COOKIECUTTER,
        "blue-green provided for choice variable release_strategy",
        "answer release_strategy='blue-green' refused",
    ),
    (
        "object-store-ftp",
        {"object_store": "ftp"},
        COOKIECUTTER,
        "ftp provided for choice variable object_store",
        "answer object_store='ftp' refused",
    ),
    # the inference log's bucket (issue 13 item 2): checked only when an object store is chosen
    (
        "bucket-with-capitals",
        {"object_store": "s3", "object_store_bucket": "Acme-Logs"},
        HOOK,
        "object_store_bucket 'Acme-Logs' is not an S3 bucket name the inference log can go to (s3://Acme-Logs/...)",
        "object_store_bucket 'Acme-Logs' is not an S3 bucket name",
    ),
    (
        "bucket-with-underscore",
        {"object_store": "gcs", "object_store_bucket": "acme_logs"},
        HOOK,
        "object_store_bucket 'acme_logs' is not a GCS bucket name the inference log can go to (gs://acme_logs/...)",
        "object_store_bucket 'acme_logs' is not a GCS bucket name",
    ),
    (
        "bucket-too-short",
        {"object_store": "s3", "object_store_bucket": "ab"},
        HOOK,
        "object_store_bucket 'ab' is not an S3 bucket name",
        "object_store_bucket 'ab' is not an S3 bucket name",
    ),
    (
        "bucket-like-an-ip-address",
        {"object_store": "s3", "object_store_bucket": "192.168.1.10"},
        HOOK,
        "object_store_bucket '192.168.1.10' is not an S3 bucket name",
        "object_store_bucket '192.168.1.10' is not an S3 bucket name",
    ),
    (
        "azure-container-with-a-dot",
        {"object_store": "azure", "object_store_bucket": "acme.logs"},
        HOOK,
        "object_store_bucket 'acme.logs' is not an Azure container name the inference log can go to (az://acme.logs/...)",
        "object_store_bucket 'acme.logs' is not an Azure container name",
    ),
    # issue 14 item 2: the GitOps controller is a choice too
    (
        "controller-kubectl",
        {"gitops_controller": "kubectl"},
        COOKIECUTTER,
        "kubectl provided for choice variable gitops_controller",
        "answer gitops_controller='kubectl' refused",
    ),
    (
        "controller-capitalised",
        {"gitops_controller": "ArgoCD"},
        COOKIECUTTER,
        "ArgoCD provided for choice variable gitops_controller",
        "answer gitops_controller='ArgoCD' refused",
    ),
    (
        "controller-empty",
        {"gitops_controller": ""},
        COOKIECUTTER,
        "provided for choice variable gitops_controller",
        "answer gitops_controller='' is empty",
    ),
    # names derived from the one given (issue 15 item 16): the message names the answer typed
    (
        "quotes-in-name",
        {"project_name": 'Bob "Quoted" Churn'},
        HOOK,
        "project_name 'Bob \"Quoted\" Churn' gives the repository name",
        "project_name 'Bob \"Quoted\" Churn' gives",
    ),
    (
        "apostrophe-in-name",
        {"project_name": "Bob's Churn"},
        HOOK,
        'project_name "Bob\'s Churn" gives the repository name',
        'project_name "Bob\'s Churn" gives',
    ),
    (
        "non-ascii-name",
        {"project_name": "Ünïcode Churn"},
        HOOK,
        "project_name 'Ünïcode Churn' gives the repository name",
        "project_name 'Ünïcode Churn' gives",
    ),
    (
        "name-starting-with-a-digit",
        {"project_name": "2 Fast"},
        HOOK,
        "project_name '2 Fast' gives the repository name '2-fast'",
        "project_name '2 Fast' gives",
    ),
    # an empty name gives an empty slug: cookiecutter stops on the output folder before any hook runs
    ("empty-name", {"project_name": ""}, COOKIECUTTER, "directory already exists", "answer project_name='' is empty"),
    (
        "empty-email",
        {"author_email": ""},
        HOOK,
        "author_email '' is not an email address",
        "answer author_email='' is empty",
    ),
    (
        "keyword-name",
        {"project_name": "Class"},
        HOOK,
        "project_name 'Class' gives the Python package name 'class'",
        "project_name 'Class' gives the Python package",
    ),
    (
        "keyword-slug",
        {"project_slug": "import"},
        HOOK,
        "project_slug 'import' gives the Python package name 'import'",
        "project_slug 'import' gives",
    ),
    (
        "slug-with-spaces",
        {"project_slug": "My Project"},
        HOOK,
        "project_slug 'My Project' is not a repository name",
        "project_slug 'My Project' is not",
    ),
    (
        "package-starting-with-a-digit",
        {"package_name": "2fast"},
        HOOK,
        "package_name '2fast' is not an importable Python package name",
        "package_name '2fast' is not",
    ),
    # the rest of the hook's checks, through both ways
    (
        "email-without-at",
        {"author_email": "nobody"},
        HOOK,
        "author_email 'nobody' is not an email address",
        "author_email 'nobody' is not",
    ),
    (
        "email-with-code",
        {"author_email": 'a"); import os; os.system("echo pwned") #@x.io'},
        HOOK,
        "author_email 'a\"); import os",
        "author_email 'a\"); import os",
    ),
    (
        "owner-with-hyphens",
        {"github_owner": "-bad-"},
        HOOK,
        "github_owner '-bad-' is not a GitHub user",
        "github_owner '-bad-' is not",
    ),
    (
        "registry-uppercase",
        {"container_registry": "GHCR.io/Acme"},
        HOOK,
        "container_registry 'GHCR.io/Acme' is not a registry",
        "container_registry 'GHCR.io/Acme' is not",
    ),
    (
        "tracking-uri-without-scheme",
        {"mlflow_tracking_uri": "localhost:5000"},
        HOOK,
        "mlflow_tracking_uri 'localhost:5000' is not a tracking URI",
        "mlflow_tracking_uri 'localhost:5000' is not",
    ),
    (
        "cron-hour-25",
        {"drift_schedule": "0 25 * * *"},
        HOOK,
        "drift_schedule '0 25 * * *': the hour field '25' is not valid",
        "the hour field '25' is not valid",
    ),
    (
        "cron-words",
        {"drift_schedule": "every day"},
        HOOK,
        "drift_schedule 'every day' is not a cron expression",
        "drift_schedule 'every day' is not",
    ),
]


def as_args(answers: dict[str, str]) -> list[str]:
    return [f"{key}={value}" for key, value in answers.items()]


@pytest.mark.parametrize(
    ("answers", "caught_by", "cookiecutter_says", "new_says"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_cookiecutter_refuses_a_bad_answer_naming_it_and_writes_nothing(
    tmp_path, capfd, answers, caught_by, cookiecutter_says, new_says
):
    result = CliRunner().invoke(cookiecutter_cli, ["--no-input", str(TEMPLATE), "-o", str(tmp_path), *as_args(answers)])
    said = result.output + capfd.readouterr().err
    if not isinstance(result.exception, SystemExit | None):
        said += f"{type(result.exception).__name__}: {result.exception}"  # what the command line's traceback ends in
    assert result.exit_code == 1, said
    assert cookiecutter_says in said, said
    if caught_by == HOOK:
        assert "Nothing was generated; answer again with the values fixed." in said
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("answers", "new_says"), [(case[1], case[4]) for case in CASES], ids=[case[0] for case in CASES]
)
def test_gitops_ml_new_refuses_a_bad_answer_naming_it_and_writes_nothing(tmp_path, capfd, answers, new_says):
    result = CliRunner().invoke(main, ["new", "--no-input", "-o", str(tmp_path), *as_args(answers)])
    said = result.output + result.stderr + capfd.readouterr().err
    assert result.exit_code == 2, said
    assert new_says in said, said
    assert "Traceback" not in said
    assert list(tmp_path.iterdir()) == []


def test_gitops_ml_new_never_renders_an_answer(tmp_path, capfd):
    """The lipsum route to os.popen: `new` refuses it before rendering, so the command never runs."""
    marker = tmp_path / "ran"
    answer = f"{{{{ lipsum.__globals__['os'].popen('touch {marker}').read() }}}}"
    result = CliRunner().invoke(main, ["new", "--no-input", "-o", str(tmp_path), f"description={answer}"])
    assert result.exit_code == 2
    assert not marker.exists()
    assert list(tmp_path.iterdir()) == []


# -- answers that are fine, escaped for the file each lands in (issue 15 item 4) ---------------------
AWKWARD = "Back\\slash \"double\" 'single' Ünïcødé 😀 <b>*_[x]|#`"


@pytest.mark.parametrize("field", ["project_name", "description", "author_name"])
def test_a_free_text_answer_bakes_valid_toml_yaml_markdown_and_python(tmp_path, field):
    answers = {field: AWKWARD, "license": "MIT"}  # the MIT text carries the author's name
    if field == "project_name":
        answers["project_slug"] = "awkward"  # the name's characters are refused in a derived slug
    project = bake(tmp_path, **answers, mlops_level="2")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    if field == "description":
        assert pyproject["project"]["description"] == AWKWARD
    if field == "author_name":
        assert pyproject["project"]["authors"][0]["name"] == AWKWARD
        assert AWKWARD in (project / "LICENSE").read_text(encoding="utf-8")
    for name in files_of(project):
        if name.endswith((".yml", ".yaml")):
            yaml.safe_load((project / name).read_text(encoding="utf-8"))
    package = next((project / "src").iterdir())
    tree = ast.parse((package / "__init__.py").read_text(encoding="utf-8"))
    if field == "project_name":
        assert ast.get_docstring(tree).startswith(AWKWARD + ":")
        readme = (project / "README.md").read_text(encoding="utf-8")
        # Markdown shows the name as typed: every markup character is escaped
        assert readme.splitlines()[0] == "# " + markdown_escaped(AWKWARD)


def markdown_escaped(text: str) -> str:
    return "".join("\\" + c if c in "\\`*_[]<>|#" else c for c in text)


def test_a_quote_in_an_email_or_tracking_uri_still_bakes_valid_toml(tmp_path):
    project = bake(tmp_path, author_email='o"brien@example.com', mlflow_tracking_uri='https://mlflow.example.com/a"b')
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["authors"][0]["email"] == 'o"brien@example.com'
    assert pyproject["tool"]["gitops-ml"]["tracking_uri"] == 'https://mlflow.example.com/a"b'


def test_the_answers_table_is_at_least_25_cases():
    assert len(CASES) >= 25 and len({case[0] for case in CASES}) == len(CASES)


def test_the_escaping_macros_live_in_one_file_the_wheel_ships():
    assert (TEMPLATE / "templates" / "escape.j2").is_file()
    users = [
        p
        for p in (TEMPLATE / "{{cookiecutter.project_slug}}").rglob("*")
        if p.is_file() and 'from "escape.j2" import' in p.read_text(encoding="utf-8", errors="replace")
    ]
    assert {p.name for p in users} == {"pyproject.toml", "README.md", "__init__.py"}
