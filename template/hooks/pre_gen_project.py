"""Check the answers before anything is written: a bad one stops the bake with a message that names
the answer the user gave and says what a good one looks like, and cookiecutter leaves no folder behind.

Choice questions (python_version, mlops_level, task, license, engine_source, object_store) are not checked here:
cookiecutter refuses a value outside a choice list itself, before any hook runs.

Runs with the Python that runs cookiecutter: standard library only.
"""

import json
import keyword
import re
import sys
from pathlib import Path

# The answers as rendered, and as given before rendering (``_cookiecutter``: cookiecutter keeps the
# unrendered context there; cruft does not, and then only the rendered answers are checked).
# JSON inside a JSON string: null and true survive, and no quote in an answer can end the literal.
RENDERED = json.loads({{ cookiecutter | tojson | tojson }})
GIVEN = json.loads({{ _cookiecutter | default({}) | tojson | tojson }})
TEMPLATE_DIR = {{ cookiecutter._repo_dir | default("") | tojson }}
{% raw %}

# Jinja's three openers: an answer holding one was (or would have been) rendered as a template.
TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\{#")
# One-line answers: a line break or other control character would break the TOML, YAML and Markdown
# the answer lands in (tab is allowed: TOML strings and Markdown take it).
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def template_defaults(template_dir: str) -> dict:
    """cookiecutter.json's defaults: what the template itself may spell with Jinja."""
    path = Path(template_dir) / "cookiecutter.json"
    return json.loads(path.read_text(encoding="utf-8")) if template_dir and path.is_file() else {}


def questions(rendered: dict) -> dict[str, str]:
    """The answers to the template's questions (private ``_`` keys are the template's, not the user's)."""
    return {key: str(value) for key, value in rendered.items() if not key.startswith("_")}


def given_by_user(name: str, given: dict, defaults: dict) -> bool:
    """True when the answer was typed or passed, not left to the template's default (or derivation)."""
    return name in given and name in defaults and given[name] != defaults[name]


def check_template_syntax(given: dict, rendered: dict[str, str], defaults: dict) -> list[str]:
    """Answers that carry Jinja: ``{{ 7*7 }}`` has already been evaluated by cookiecutter (which renders
    answers before hooks run), so look at what was given as well as at what came out."""
    found = []
    for name, value in rendered.items():
        raw = given.get(name, value) if given_by_user(name, given, defaults) else value
        if (isinstance(raw, str) and TEMPLATE_SYNTAX.search(raw)) or TEMPLATE_SYNTAX.search(value):
            shown = raw if isinstance(raw, str) else value
            found.append(f"{name} {shown!r} contains template syntax ({{{{ }}}}, {{% %}} or {{# #}}); answers "
                         "are plain text. Cookiecutter renders an answer given with --no-input or in a config "
                         "file as Jinja before any check runs: see docs/template.md, 'Answers are rendered'")
    return found


def check_control_characters(given: dict, rendered: dict[str, str]) -> list[str]:
    """Shown as given: rendering has already turned a carriage return into a line feed."""
    return [f"{name} {given.get(name, value) if isinstance(given.get(name), str) else value!r} contains a line "
            "break or control character; every answer is one line"
            for name, value in rendered.items() if CONTROL.search(value)]


SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
# host[:port] then lowercase path segments: what `docker push` accepts.
REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
# (lowest, highest, names) per cron field, as GitHub's scheduler reads them.
CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


def derived_from(name: str, given: dict, defaults: dict) -> str:
    """The answer the user gave that ``name`` was derived from: itself, or the question it defaults from
    (project_slug from project_name, package_name from project_slug)."""
    chain = {"package_name": "project_slug", "project_slug": "project_name"}
    while name in chain and not given_by_user(name, given, defaults) and defaults:
        name = chain[name]
    return name


def check_slug(value: str, source: str, answers: dict[str, str]) -> str | None:
    if SLUG.match(value) and len(value) <= 64:
        return None
    rule = ("lowercase letters and digits in words joined by single hyphens, starting with a letter, "
            "for example 'customer-churn'")
    if source != "project_slug":
        return (f"{source} {answers[source]!r} gives the repository name {value!r}, which this template cannot "
                f"use: the name needs ASCII letters, digits and spaces only (starting with a letter), or answer "
                f"project_slug yourself ({rule})")
    return f"project_slug {value!r} is not a repository name this template can use: {rule}"


def check_package(value: str, source: str, answers: dict[str, str]) -> str | None:
    if value.isidentifier() and not keyword.iskeyword(value) and value.islower() and value.isascii():
        return None
    rule = ("lowercase letters, digits and underscores, not starting with a digit and not a keyword, "
            "for example 'customer_churn'")
    if source != "package_name":
        return (f"{source} {answers[source]!r} gives the Python package name {value!r}, which cannot be "
                f"imported; change the {source}, or answer package_name yourself ({rule})")
    return f"package_name {value!r} is not an importable Python package name: {rule}"


def check_email(value: str) -> str | None:
    if EMAIL.match(value):
        return None
    return f"author_email {value!r} is not an email address; write it as name@example.com"


def check_owner(value: str) -> str | None:
    if OWNER.match(value):
        return None
    return (f"github_owner {value!r} is not a GitHub user or organisation name: up to 39 letters, digits "
            "and single hyphens, not starting or ending with a hyphen, for example 'acme-data'")


def check_registry(value: str) -> str | None:
    if REGISTRY.match(value):
        return None
    return (f"container_registry {value!r} is not a registry and namespace images can be pushed to: "
            "a host and lowercase path, for example 'ghcr.io/acme-data' or 'registry.example.com:5000/ml'")


def check_tracking(value: str) -> str | None:
    if value == "embedded" or re.match(r"^(https?|sqlite|postgresql|mysql|file)://\S+$", value) \
            or value == "databricks" or value.startswith("databricks://"):
        return None
    return (f"mlflow_tracking_uri {value!r} is not a tracking URI: 'embedded' for a sqlite store inside "
            "the project, or a URI such as 'https://mlflow.example.com' or 'databricks'")


def _cron_value(token: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if token.lower() in names:
        return names.index(token.lower()) + low
    if token.isdigit():
        number = int(token)
        # Day of week 7 is Sunday too, as in most crons.
        if low <= number <= high or (names and names[0] == "sun" and number == 7):
            return number
    return None


def _cron_field_ok(field: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    for part in field.split(","):
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return False
        if base == "*":
            continue
        start, dash, end = base.partition("-")
        first = _cron_value(start, low, high, names)
        if first is None:
            return False
        if dash:
            last = _cron_value(end, low, high, names)
            if last is None or last < first:
                return False
        elif step:
            return False  # "5/10" is not portable; write "5-59/10"
    return True


def check_cron(value: str) -> str | None:
    fields = value.split()
    example = "for example '17 6 * * 1' (Mondays at 06:17 UTC) or '0 */6 * * *' (every six hours)"
    if len(fields) != 5:
        return (f"drift_schedule {value!r} is not a cron expression: it needs five fields "
                f"(minute hour day-of-month month day-of-week), {example}")
    for field, (name, low, high, names) in zip(fields, CRON_FIELDS, strict=True):
        if not _cron_field_ok(field, low, high, names):
            return (f"drift_schedule {value!r}: the {name} field {field!r} is not valid; it takes *, numbers "
                    f"from {low} to {high}, ranges a-b, lists a,b and steps */n, {example}")
    return None


# S3 and GCS bucket names (3-63 lowercase letters, digits, hyphens and dots, a letter or digit at each end);
# an Azure container takes no dots. The stricter rules (no "..", no IP address) are checked too.
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
STORE_SCHEMES = {"s3": "s3", "gcs": "gs", "azure": "az"}


def check_bucket(value: str, store: str) -> str | None:
    if store == "none":
        return None  # not used: the log stays in a local directory
    rule = (f"3 to 63 lowercase letters, digits{'' if store == 'azure' else ', dots'} and hyphens, starting and "
            f"ending with a letter or digit, for example 'acme-churn-mlops'")
    bad = (not BUCKET.match(value) or ".." in value or ".-" in value or "-." in value
           or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", value) or (store == "azure" and ("." in value or "--" in value)))
    if not bad:
        return None
    label = {"s3": "an S3 bucket", "gcs": "a GCS bucket", "azure": "an Azure container"}[store]
    return (f"object_store_bucket {value!r} is not {label} name the inference log can go to "
            f"({STORE_SCHEMES[store]}://{value}/...): {rule}")


def problems(rendered: dict, given: dict, defaults: dict) -> list[str]:
    answers = questions(rendered)
    # Answers carrying Jinja or line breaks are reported alone: what was derived from them says nothing more.
    early = check_template_syntax(given, answers, defaults) + check_control_characters(given, answers)
    if early:
        return early
    slug_source = derived_from("project_slug", given, defaults)
    package_source = derived_from("package_name", given, defaults)
    found = [
        check_slug(answers["project_slug"], slug_source, answers),
        # A package derived from a slug already refused says nothing more.
        None if package_source != "package_name" and check_slug(answers["project_slug"], slug_source, answers)
        else check_package(answers["package_name"], package_source, answers),
        check_email(answers["author_email"]),
        check_owner(answers["github_owner"]),
        check_registry(answers["container_registry"]),
        check_tracking(answers["mlflow_tracking_uri"]),
        check_cron(answers["drift_schedule"]),
        check_bucket(answers.get("object_store_bucket", ""), answers.get("object_store", "none")),
    ]
    return [message for message in found if message]


def main() -> int:
    found = problems(RENDERED, GIVEN, template_defaults(TEMPLATE_DIR))
    for message in found:
        print(f"error: {message}", file=sys.stderr)
    if found:
        print("Nothing was generated; answer again with the values fixed.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
{% endraw %}
