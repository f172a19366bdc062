"""Check the answers before anything is written: a bad one stops the bake with a message that says
what a good one looks like, and cookiecutter leaves no folder behind.

Runs with the Python that runs cookiecutter: standard library only.
"""

import keyword
import re
import sys

ANSWERS = {
    "project_slug": {{ cookiecutter.project_slug | tojson }},
    "package_name": {{ cookiecutter.package_name | tojson }},
    "author_email": {{ cookiecutter.author_email | tojson }},
    "github_owner": {{ cookiecutter.github_owner | tojson }},
    "python_version": {{ cookiecutter.python_version | tojson }},
    "mlops_level": {{ cookiecutter.mlops_level | tojson }},
    "task": {{ cookiecutter.task | tojson }},
    "mlflow_tracking_uri": {{ cookiecutter.mlflow_tracking_uri | tojson }},
    "container_registry": {{ cookiecutter.container_registry | tojson }},
    "drift_schedule": {{ cookiecutter.drift_schedule | tojson }},
    "license": {{ cookiecutter.license | tojson }},
    "engine_source": {{ cookiecutter.engine_source | tojson }},
}

SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
# host[:port] then lowercase path segments: what `docker push` accepts.
REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
CHOICES = {
    "python_version": ("3.11", "3.12"),
    "mlops_level": ("0", "1", "2"),
    "task": ("classification", "regression"),
    "license": ("Apache-2.0", "MIT", "Proprietary"),
    "engine_source": ("package index", "git", "wheel"),
}
# (lowest, highest, names) per cron field, as GitHub's scheduler reads them.
CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


def check_slug(value: str) -> str | None:
    if SLUG.match(value) and len(value) <= 64:
        return None
    return (f"project_slug {value!r} is not a repository name this template can use: "
            "lowercase letters and digits in words joined by single hyphens, starting with a letter, "
            "for example 'customer-churn'")


def check_package(value: str) -> str | None:
    if value.isidentifier() and not keyword.iskeyword(value) and value.islower() and value.isascii():
        return None
    return (f"package_name {value!r} is not an importable Python package name: lowercase letters, digits "
            "and underscores, not starting with a digit and not a keyword, for example 'customer_churn'")


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


def check_choice(name: str, value: str) -> str | None:
    allowed = CHOICES[name]
    if value in allowed:
        return None
    return f"{name} {value!r} is not one of: {', '.join(repr(a) for a in allowed)}"


def problems(answers: dict[str, str]) -> list[str]:
    found = [
        check_slug(answers["project_slug"]),
        check_package(answers["package_name"]),
        check_email(answers["author_email"]),
        check_owner(answers["github_owner"]),
        check_registry(answers["container_registry"]),
        check_tracking(answers["mlflow_tracking_uri"]),
        check_cron(answers["drift_schedule"]),
        *(check_choice(name, answers[name]) for name in CHOICES),
    ]
    return [message for message in found if message]


def main() -> int:
    found = problems(ANSWERS)
    for message in found:
        print(f"error: {message}", file=sys.stderr)
    if found:
        print("Nothing was generated; answer again with the values fixed.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
