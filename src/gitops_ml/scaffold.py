"""``gitops-ml new``: stamp out a GitOps ML repository from the template bundled in the package.

The template is the same one ``cookiecutter <repo> --directory template`` renders; the package ships
it under ``gitops_ml/template`` (a symlink to the repository's ``template/`` in a checkout, a copy in
the wheel). Cookiecutter renders, the template's hooks check the answers and trim to the chosen level.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .engine_wheel import running_engine_wheel
from .errors import ConfigError

TEMPLATE_DIR = Path(__file__).resolve().parent / "template"

# Jinja's three openers. Cookiecutter renders answers given with no_input as templates before any hook
# runs, so an answer holding one must be refused here, before cookiecutter sees it.
TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\{#")
# Every answer is one line: a line break or control character would break the files it lands in.
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True)
class Scaffold:
    """What ``new`` wrote: the folder, the answers given (the rest took their defaults) and the files."""

    path: Path
    answers: dict[str, str]
    files: list[str] = field(default_factory=list)

    @property
    def level(self) -> int:
        """The MLOps level: the highest whose workflows (``_workflows_by_level``) the bake kept."""
        kept = set(self.files)
        added = workflows_by_level()
        return max(
            level for level in added if all(path in kept for lvl in added if lvl <= level for path in added[lvl])
        )

    @property
    def workflows(self) -> list[str]:
        return sorted(f.rsplit("/", 1)[-1] for f in self.files if f.startswith(".github/workflows/"))

    def as_dict(self) -> dict:
        return {
            "path": str(self.path),
            "answers": self.answers,
            "level": self.level,
            "workflows": self.workflows,
            "files": self.files,
        }


def template_dir() -> Path:
    """The bundled template; a clear error when an install lost it."""
    if not (TEMPLATE_DIR / "cookiecutter.json").is_file():
        raise ConfigError(
            f"{TEMPLATE_DIR}: the bundled template is missing (cookiecutter.json not found); reinstall gitops-ml"
        )
    return TEMPLATE_DIR


def template_facts(template: Path | None = None) -> dict[str, object]:
    """cookiecutter.json: the questions, their defaults and choices, and the template's own ``_`` facts."""
    path = (template or template_dir()) / "cookiecutter.json"
    return json.loads(path.read_text(encoding="utf-8"))


def questions(template: Path | None = None) -> dict[str, object]:
    """The template's questions and their defaults (private ``_`` keys left out)."""
    return {key: value for key, value in template_facts(template).items() if not key.startswith("_")}


def workflows_by_level(template: Path | None = None) -> dict[int, list[str]]:
    """What each MLOps level adds to the one below it, as the post-generation hook applies it."""
    added = template_facts(template)["_workflows_by_level"]
    return {int(level): list(paths) for level, paths in added.items()}


def check_answers(answers: dict[str, str], template: Path | None = None) -> None:
    """Refuse, before cookiecutter renders anything, what it would render as code or trip over: template
    syntax, line breaks and a value outside a choice question's list. The rest is the hook's to check."""
    known = questions(template)
    problems = []
    for name, value in answers.items():
        choices = known.get(name)
        if not value.strip():
            problems.append(f"answer {name}={value!r} is empty; leave the question out to take its default")
        elif TEMPLATE_SYNTAX.search(value):
            problems.append(
                f"answer {name}={value!r} contains template syntax ({{{{ }}}}, {{% %}} or {{# #}}); "
                "answers are plain text and are never rendered"
            )
        elif CONTROL.search(value):
            problems.append(
                f"answer {name}={value!r} contains a line break or control character; every answer is one line"
            )
        elif isinstance(choices, list) and value not in choices:
            # cookiecutter's own words for it, so both ways of baking say the same
            problems.append(
                f"answer {name}={value!r} refused: {value} provided for choice variable {name}; "
                f"the choices are {', '.join(map(repr, choices))}"
            )
    if problems:
        raise ConfigError("; ".join(problems) + "; nothing was written")


def parse_answers(pairs: list[str] | tuple[str, ...], template: Path | None = None) -> dict[str, str]:
    """``KEY=VALUE`` arguments as answers; an unknown key or a missing ``=`` is a usage error."""
    known = questions(template)
    answers: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"answer {pair!r}: expected KEY=VALUE, for example mlops_level=1")
        if key not in known:
            raise ConfigError(
                f"answer {pair!r}: the template has no question {key!r}; questions are {', '.join(known)}"
            )
        answers[key] = value
    return answers


def new(
    answers: dict[str, str] | None = None,
    output_dir: Path | str = ".",
    no_input: bool = True,
    template: Path | None = None,
) -> Scaffold:
    """Render the template into ``output_dir/<project_slug>``; refused answers leave nothing behind.

    ``engine_source=wheel`` keeps a wheel of the running engine in the repository (``engine/``).
    """
    source = template or template_dir()
    check_answers(dict(answers or {}), source)
    output = Path(output_dir).resolve()
    if not output.is_dir():
        raise ConfigError(f"output directory {output} does not exist")
    context = dict(answers or {})
    with tempfile.TemporaryDirectory() as scratch:
        if context.get("engine_source") == "wheel" and not context.get("_engine_wheel"):
            context["_engine_wheel"] = str(running_engine_wheel(Path(scratch)))
        written = _render(source, context, output, no_input)
    files = sorted(p.relative_to(written).as_posix() for p in written.rglob("*") if p.is_file())
    return Scaffold(path=written, answers=dict(answers or {}), files=files)


def _render(source: Path, context: dict[str, str], output: Path, no_input: bool) -> Path:
    from cookiecutter.exceptions import CookiecutterException, FailedHookException, OutputDirExistsException
    from cookiecutter.main import cookiecutter

    try:
        with _quiet_hook_tracebacks():
            return Path(cookiecutter(str(source), no_input=no_input, extra_context=context, output_dir=str(output)))
    except ValueError as exc:  # cookiecutter's word for an answer outside a question's choices
        raise ConfigError(f"answer refused: {exc}") from exc
    except FailedHookException as exc:
        # The hook has already said which answer is wrong, on stderr.
        raise ConfigError(
            f"the template refused the answers (see the messages above); nothing was written to {output}"
        ) from exc
    except OutputDirExistsException as exc:
        raise ConfigError(f"{str(exc).removeprefix('Error: ')}: choose another project_slug or --output-dir") from exc
    except CookiecutterException as exc:  # bad choice values and the like
        raise ConfigError(f"the template could not be rendered: {exc}") from exc


@contextlib.contextmanager
def _quiet_hook_tracebacks():
    """The hook's own message says what is wrong; cookiecutter's traceback of it says nothing more."""
    hooks_logger = logging.getLogger("cookiecutter.hooks")
    before = hooks_logger.disabled
    hooks_logger.disabled = True
    try:
        yield
    finally:
        hooks_logger.disabled = before
