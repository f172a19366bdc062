"""Releases as files: ``environments/<env>/release.yaml`` says which model version an environment runs.

Git is the source of truth. ``promote`` writes a manifest that pins a registered version (and the
pull request's title and body); ``verify`` is the pull request's required check; ``deploy`` makes
the registry alias and the bento follow the merged manifest; ``status`` shows git beside the
registry. Rolling back is reverting the release commit, then deploying again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import mlflow
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from . import cards, github, gitutil, tracking
from .config import Spec
from .errors import CheckFailed, ConfigError
from .metrics import higher_is_better

MANIFEST = "release.yaml"
SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).parent / "schemas" / "release.schema.json"
STATE_DIR = ".gitops-ml"  # git-ignored: promotion texts, deploy outputs, drift summaries
FIRST_SOURCE = "registry"  # ``promoted_from`` of a release to the first environment
# Files MLflow adds when it downloads a *registered* model; not part of what was logged.
UNHASHED = frozenset({"registered_model_meta"})
HEADER = (
    "# Release manifest, written by `gitops-ml promote`. Change it only by promoting (or by reverting\n"
    "# the commit that promoted it): `gitops-ml verify` checks every field against the registry.\n"
)


# -- environments and manifests ---------------------------------------------------------------
def check_environment(spec: Spec, env: str) -> str:
    """The environment's name, if the spec declares it."""
    if env not in spec.release.environments:
        known = ", ".join(spec.release.environments)
        raise ConfigError(f"unknown environment {env!r}: {spec.pyproject} declares {known}")
    return env


def manifest_path(spec: Spec, env: str) -> Path:
    return spec.environments_dir / check_environment(spec, env) / MANIFEST


def relative_manifest(spec: Spec, env: str) -> str:
    """``environments/<env>/release.yaml`` relative to the project root, as git names it."""
    return manifest_path(spec, env).relative_to(spec.root).as_posix()


@functools.cache
def manifest_schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def schema_problems(document: object) -> list[str]:
    """Every way ``document`` breaks the manifest schema, each naming the field."""
    validator = jsonschema.Draft202012Validator(manifest_schema())
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]):
        where = ".".join(str(part) for part in error.absolute_path)
        if error.validator == "required":
            missing = re.match(r"'([^']+)'", error.message)
            name = missing.group(1) if missing else ""
            name = f"{where}.{name}" if where and name else (name or where)
            problems.append(f"field '{name}': missing")
        elif error.validator == "additionalProperties":
            problems.append(f"field '{where or '(top level)'}': {error.message}")
        else:
            shown = json.dumps(error.instance, default=str)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            problems.append(f"field '{where or '(top level)'}': {_short(error)} (got {shown})")
    return problems


def _short(error: jsonschema.ValidationError) -> str:
    if error.validator == "pattern":
        return f"does not match {error.validator_value}"
    if error.validator == "type":
        return f"expected {error.validator_value}"
    if error.validator == "const":
        return f"must be {error.validator_value!r}"
    if error.validator == "oneOf":
        return "expected null or a mapping with version and artifact_sha256"
    return error.message.split(" is ", 1)[-1] if " is " in error.message else error.message


def parse_manifest(text: str, source: str) -> dict:
    """YAML text of a manifest, checked against the schema; ConfigError naming every bad field."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping of release fields, got {type(document).__name__}")
    problems = schema_problems(document)
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    return document


def read_manifest(spec: Spec, env: str) -> dict | None:
    """The environment's release manifest as a mapping, or None when nothing is released there."""
    path = manifest_path(spec, env)
    if not path.is_file():
        return None
    manifest = parse_manifest(path.read_text(encoding="utf-8"), spec.display(str(path)))
    if manifest["environment"] != env:
        raise ConfigError(f"{spec.display(str(path))}: field 'environment': says {manifest['environment']!r} "
                          f"but the file is in environments/{env}/")
    return manifest


def current_version(spec: Spec, env: str) -> int | None:
    """The registry version an environment runs, per git; None when it runs nothing yet."""
    manifest = read_manifest(spec, env)
    return None if manifest is None else manifest["version"]


def dump_manifest(manifest: dict) -> str:
    return HEADER + yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False, allow_unicode=True)


# -- what the registry says -------------------------------------------------------------------
def registered(spec: Spec, client: MlflowClient, version: int) -> tracking.Version:
    """A registered version; CheckFailed (exit 1) when the registry does not hold it."""
    try:
        return tracking.get_version(spec, client, version)
    except ConfigError as exc:
        raise CheckFailed(f"model '{spec.model_name}' has no version {version} at {spec.tracking}") from exc


def recorded_gates(model: tracking.Version) -> dict | None:
    """The outcome ``gitops-ml evaluate`` recorded on the version, or None when it never ran."""
    if tracking.TAG_GATES_PASSED not in model.tags:
        return None
    try:
        gates = json.loads(model.tags.get(tracking.TAG_GATES) or "{}")
    except json.JSONDecodeError:
        gates = {}
    gates["passed"] = model.tags[tracking.TAG_GATES_PASSED] == "true"
    return gates


def artifact_sha256(spec: Spec, model: tracking.Version) -> str:
    """sha256 over the logged model's files as the registry stores them.

    Hashes sorted relative paths with each file's sha256, so the value is the same on every
    download and changes when any file of the model does.
    """
    if not model.model_id:
        raise CheckFailed(f"version {model.version} of '{model.model_name}' has no logged model source "
                          f"(source {model.source!r}); it was not registered by `gitops-ml train`")
    with tempfile.TemporaryDirectory(prefix="gitops-ml-hash-") as scratch:
        uri = f"models:/{model.model_id}"
        local = tracking._call(
            lambda: mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=scratch), spec)
        return tree_sha256(Path(local))


def tree_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative in UNHASHED:
            continue
        digest.update(f"{relative}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def alias_version(spec: Spec, client: MlflowClient, env: str) -> int | None:
    """The version the registry alias named after ``env`` points at; None when unset."""
    model = tracking._find_registered_model(spec, client)
    if model is None or env not in (model.aliases or {}):
        return None
    return int(model.aliases[env])


def registry_disagreements(spec: Spec, client: MlflowClient, manifest: dict) -> list[str]:
    """Where the registry does not hold what the manifest pins (empty when it agrees): the version,
    its run and logged model, its gates, the bento it builds and the hash of its files.

    RegistryError (unreachable) propagates: no answer is not agreement.
    """
    try:
        model = tracking.get_version(spec, client, manifest["version"])
    except ConfigError:
        return [f"registry {spec.tracking} has no version {manifest['version']} of '{spec.model_name}'"]
    reasons = []
    if manifest["run_id"] != model.run_id:
        reasons.append(f"field 'run_id': manifest says {manifest['run_id']}, registry says {model.run_id}")
    if manifest["logged_model_uri"] != f"models:/{model.model_id}":
        reasons.append(f"field 'logged_model_uri': manifest says {manifest['logged_model_uri']}, "
                       f"registry says models:/{model.model_id}")
    gates = recorded_gates(model)
    if gates is None or not gates["passed"]:
        reasons.append(f"registry: version {model.version} has "
                       f"{'no recorded gates' if gates is None else 'failed its gates'}")
    expected = bento_tag(spec, model)
    if manifest["bento_tag"] != expected:
        reasons.append(f"field 'bento_tag': manifest pins {manifest['bento_tag']}, but this project and "
                       f"engine build {expected} (the data contract, serving settings or gitops-ml changed "
                       "since the promotion): promote the version again")
    elif manifest["image"] != image_ref(spec, expected):
        reasons.append(f"field 'image': expected {image_ref(spec, expected)} for release.image_repository "
                       f"{spec.release.image_repository!r}, got {manifest['image']}")
    actual = artifact_sha256(spec, model)
    if actual != manifest["artifact_sha256"]:
        reasons.append(f"field 'artifact_sha256': manifest says {manifest['artifact_sha256']}, the "
                       f"registry's model files hash to {actual}: the manifest was edited "
                       "or the model changed")
    return reasons


# -- bentos and images ------------------------------------------------------------------------
def bento_tag(spec: Spec, model: tracking.Version) -> str:
    """The bento a version deploys as, as the serving package names it.

    Its version label digests the model, the data contract, the serving settings and the service
    code, so the same tag means the same bento on every machine; computed without building.
    """
    from .serve import package as packaging  # bentoml itself is imported only by a build

    if not all(hasattr(packaging, name) for name in ("bento_config", "bento_version", "model_tag_of")):
        return packaging.package(spec, model.version).bento_tag  # build (or reuse) to learn the tag
    config = packaging.bento_config(spec, model, packaging.model_tag_of(spec, model))
    return f"{config['service_name']}:{packaging.bento_version(config)}"


def image_ref(spec: Spec, tag: str) -> str:
    """``<release.image_repository>:<bento version>``; the bento's own tag when no repository is set."""
    name, _, label = tag.partition(":")
    return f"{spec.release.image_repository or name}:{label}"


# -- promote ----------------------------------------------------------------------------------
@dataclass
class Promotion:
    env: str
    version: int
    manifest_path: Path
    title: str
    body: str
    title_file: Path
    body_file: Path
    branch: str | None
    commit: str | None = None
    replaces: int | None = None
    card_unfilled: int = 0

    def as_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def promotion_branch(env: str, version: int) -> str:
    return f"promote/{env}/v{version}"


def previous_environment(spec: Spec, env: str) -> str | None:
    """The environment a release must run in before ``env`` takes it; None for the first."""
    order = spec.release.environments
    index = order.index(env)
    return order[index - 1] if index else None


def promotion_refusals(spec: Spec, model: tracking.Version, env: str, current: dict | None) -> list[str]:
    """Every reason ``model`` may not go to ``env`` now (empty when it may)."""
    reasons = []
    gates = recorded_gates(model)
    if gates is None:
        reasons.append(f"v{model.version} has no recorded gates: "
                       f"run `gitops-ml evaluate {model.version}` first")
    elif not gates["passed"]:
        failed = [g.get("name", "?") for g in gates.get("gates", []) if not g.get("passed")]
        reasons.append(f"v{model.version} failed its gates ({'; '.join(failed) or 'see gitops-ml evaluate'})")
    card = cards.card_path(spec, model.version)
    if not card.is_file():
        reasons.append(f"v{model.version} has no model card at {spec.display(str(card))}: "
                       f"run `gitops-ml card {model.version}` first")
    if current is not None and current["version"] == model.version:
        reasons.append(f"{env} already runs v{model.version}")
    before = previous_environment(spec, env)
    if before is not None:
        runs = current_version(spec, before)
        if runs != model.version:
            now = f"runs v{runs}" if runs is not None else "runs nothing"
            reasons.append(f"{env} takes only what {before} runs now, and {before} {now}: "
                           f"promote v{model.version} to {before} first")
    return reasons


def build_manifest(spec: Spec, model: tracking.Version, env: str, current: dict | None, sha: str) -> dict:
    gates = recorded_gates(model) or {}
    tag = bento_tag(spec, model)
    before = previous_environment(spec, env)
    return {
        "schema_version": SCHEMA_VERSION,
        "environment": env,
        "model_name": spec.model_name,
        "version": model.version,
        "model_uri": model.model_uri,
        "logged_model_uri": f"models:/{model.model_id}",
        "artifact_sha256": sha,
        "run_id": model.run_id,
        "git_commit": model.git_commit,
        "data_fingerprint": model.data_fingerprint,
        "metrics": {k: _rounded(v) for k, v in sorted((gates.get("metrics") or {}).items())},
        "gates": {
            "passed": bool(gates.get("passed")),
            "evaluated_against": gates.get("against"),
            "baseline_version": gates.get("baseline_version"),
            "results": [
                {"name": g["name"], "metric": g["metric"], "value": _rounded(g["value"]),
                 "threshold": _rounded(g["threshold"]), "passed": bool(g["passed"]),
                 "kind": g.get("kind", "")}
                for g in gates.get("gates", [])
            ],
        },
        "model_card": cards.card_path(spec, model.version).relative_to(spec.root).as_posix(),
        "bento_tag": tag,
        "image": image_ref(spec, tag),
        "promoted_from": before or FIRST_SOURCE,
        "promoted_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "replaces": None if current is None else {"version": current["version"],
                                                  "artifact_sha256": current["artifact_sha256"]},
    }


def _rounded(value: object) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 6)


def promote(spec: Spec, version: int, to: str, *, branch: bool = False, title: str | None = None,
            extra_body: str = "", output_dir: Path | None = None) -> Promotion:
    """Write ``environments/<to>/release.yaml`` for ``version`` and the pull request's title and body.

    Every check runs before anything is written; a refusal raises CheckFailed and leaves the
    tree, the branches and the registry as they were.
    """
    env = check_environment(spec, to)
    if branch:
        gitutil.require_repository(spec.root)
    client = tracking.connect(spec)
    model = registered(spec, client, version)
    current = read_manifest(spec, env)
    reasons = promotion_refusals(spec, model, env, current)
    branch_name = promotion_branch(env, model.version)
    if branch and gitutil.branch_exists(spec.root, branch_name):
        reasons.append(f"branch {branch_name} already exists: delete it or promote from it")
    if reasons:
        raise CheckFailed(f"cannot promote v{model.version} to {env}: " + "; ".join(reasons))

    manifest = build_manifest(spec, model, env, current, artifact_sha256(spec, model))
    card = cards.card_path(spec, model.version)
    unfilled = cards.count_unfilled(card)
    title = title or default_title(spec, manifest, current)
    body = promotion_body(spec, manifest, current, unfilled, extra_body, branch_name)
    out = Path(output_dir) if output_dir else spec.root / STATE_DIR / "promotion"
    path = manifest_path(spec, env)

    files = _release_files(spec, env, card)
    original = path.read_text(encoding="utf-8") if path.is_file() else None
    previous = gitutil.switch_to_new_branch(spec.root, branch_name) if branch else None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_manifest(manifest), encoding="utf-8")
        commit = gitutil.commit_paths(spec.root, files, title) if branch else None
    except BaseException:
        # Leave nothing half-done: the manifest as it was, nothing staged, the branch gone.
        _restore(path, original)
        if previous is not None:
            gitutil.abandon_branch(spec.root, branch_name, previous, files)
        raise
    out.mkdir(parents=True, exist_ok=True)
    title_file, body_file = out / f"{env}-v{model.version}.title.txt", out / f"{env}-v{model.version}.body.md"
    title_file.write_text(title + "\n", encoding="utf-8")
    body_file.write_text(body, encoding="utf-8")
    result = Promotion(env=env, version=model.version, manifest_path=path, title=title, body=body,
                       title_file=title_file, body_file=body_file, branch=branch_name if branch else None,
                       commit=commit, replaces=None if current is None else current["version"],
                       card_unfilled=unfilled)
    if github.in_actions():
        for name, value in (("title", title), ("body_file", str(body_file)), ("branch", branch_name),
                            ("manifest", str(path)), ("version", str(model.version)), ("environment", env)):
            github.set_output(name, value)
    return result


def _release_files(spec: Spec, env: str, card: Path) -> list[str]:
    """What a promotion commit holds: the manifest, the card and the card's plots."""
    files = [relative_manifest(spec, env), card.relative_to(spec.root).as_posix()]
    plots = card.with_suffix("")
    if plots.is_dir():
        files.append(plots.relative_to(spec.root).as_posix())
    return files


def _restore(path: Path, original: str | None) -> None:
    """Put the manifest back exactly as it was before a failed promotion."""
    if original is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(original, encoding="utf-8")


def default_title(spec: Spec, manifest: dict, current: dict | None) -> str:
    change = f" (replaces v{current['version']})" if current else ""
    return f"Promote {spec.model_name} v{manifest['version']} to {manifest['environment']}{change}"


def promotion_body(spec: Spec, manifest: dict, current: dict | None, unfilled: int, extra_body: str,
                   branch: str) -> str:
    env, version = manifest["environment"], manifest["version"]
    was = f"v{current['version']}" if current else "nothing"
    parts = [
        f"## Promote `{spec.model_name}` v{version} to {env}\n",
        extra_body.strip() + "\n" if extra_body.strip() else "",
        f"**What changes:** `{env}` goes from {was} to **v{version}** "
        f"(from {_source(manifest['promoted_from'])}). Merging this pull request deploys it: "
        f"the MLflow alias `{env}` moves to v{version} and image `{manifest['image']}` is built. "
        "Rolling back is reverting the merge commit.\n",
        "### Metrics\n",
        _metrics_table(spec, manifest, current),
        _gates_section(manifest),
        "### Lineage\n",
        github.markdown_table(["", "release"], [
            ("model card", _link(spec, manifest["model_card"], branch)),
            ("MLflow run", _run_link(spec, manifest["run_id"])),
            ("model", f"`{manifest['model_uri']}` (`{manifest['logged_model_uri']}`)"),
            ("artifact sha256", f"`{manifest['artifact_sha256']}`"),
            ("trained from commit", f"`{manifest['git_commit'] or 'unknown'}`"),
            ("data fingerprint", f"`{manifest['data_fingerprint'][:16]}`"),
            ("bento / image", f"`{manifest['bento_tag']}` / `{manifest['image']}`"),
        ]),
        _drift_section(spec),
        _card_note(spec, env, unfilled),
    ]
    return "\n".join(part for part in parts if part)


def _metrics_table(spec: Spec, manifest: dict, current: dict | None) -> str:
    now = (current or {}).get("metrics", {})
    header = f"v{current['version']} ({manifest['environment']} now)" if current else "current"
    rows = []
    for metric, value in manifest["metrics"].items():
        before = now.get(metric)
        delta = ""
        if value is not None and before is not None:
            change = value - before
            better = change > 0 if higher_is_better(metric) else change < 0
            delta = f"{change:+.4f}" + (" (better)" if better and change else " (worse)" if change else "")
        mark = " **(primary)**" if metric == spec.metric else ""
        rows.append((metric + mark, _number(value), _number(before) if current else "—", delta or "—"))
    note = ("\nEach version's metrics are on its own held-out rows, as `gitops-ml evaluate` recorded "
            "them; no-regression gates, when there are any, score both on the same rows.\n") if current else ""
    return github.markdown_table(["metric", f"v{manifest['version']}", header, "delta"], rows) + note


def _source(promoted_from: str) -> str:
    return "the registry" if promoted_from == FIRST_SOURCE else promoted_from


def _gates_section(manifest: dict) -> str:
    gates = manifest["gates"]
    against = gates["evaluated_against"]
    baseline = gates["baseline_version"]
    where = f", evaluated against {against} v{baseline}" if against and baseline else ""
    rows = [(g["name"], _number(g["value"]), _number(g["threshold"]), "pass" if g["passed"] else "FAIL")
            for g in gates["results"]]
    return (f"### Gates: {'all pass' if gates['passed'] else 'FAILED'}{where}\n\n"
            + github.markdown_table(["gate", "value", "threshold", "outcome"], rows))


def _number(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "—"


def _link(spec: Spec, path: str, branch: str) -> str:
    """A link GitHub renders in a pull request body when the workflow says where the repository is."""
    server, repository = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    if server and repository:
        return f"[`{path}`]({server}/{repository}/blob/{branch}/{path})"
    return f"`{path}`"


def _run_link(spec: Spec, run_id: str) -> str:
    uri = spec.tracking
    if uri.startswith(("http://", "https://")):
        return f"[{run_id}]({uri.rstrip('/')}/#/runs/{run_id})"
    return f"`{run_id}` (open with `mlflow ui --backend-store-uri {uri}`)"


def drift_summary(spec: Spec) -> dict | None:
    """The latest drift summary `gitops-ml drift` left behind, if any."""
    path = spec.root / STATE_DIR / "drift" / "summary.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _drift_section(spec: Spec) -> str:
    summary = drift_summary(spec)
    if not isinstance(summary, dict):
        return ""
    facts = [f"decision **{summary.get('decision', 'unknown')}**"]
    for key in ("env", "environment", "window", "generated_at", "created"):
        if summary.get(key):
            facts.append(f"{key.replace('_', ' ')} {summary[key]}")
    reasons = summary.get("reasons") or []
    lines = "".join(f"- {reason}\n" for reason in reasons[:10] if isinstance(reason, str))
    return f"### Latest drift check\n\n{', '.join(facts)}\n\n{lines}"


def _card_note(spec: Spec, env: str, unfilled: int) -> str:
    if not unfilled:
        return ""
    last = spec.release.environments[-1]
    consequence = ("`gitops-ml verify` fails until they are filled in" if env == last
                   else f"fill them in before promoting to {last}")
    return (f"### Model card to complete\n\nThe card still has {unfilled} `{cards.UNFILLED_MARKER}` "
            f"section(s): {consequence}.\n")


# -- verify -----------------------------------------------------------------------------------
@dataclass
class ManifestCheck:
    env: str
    path: str
    change: str  # "promotion", "rollback", "removal" or "invalid"
    version: int | None
    base_version: int | None
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons


@dataclass
class Verification:
    base: str
    checks: list[ManifestCheck]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def reasons(self) -> list[str]:
        return [f"{check.path}: {reason}" for check in self.checks for reason in check.reasons]

    def as_dict(self) -> dict:
        return {"base": self.base, "passed": self.passed, "reasons": self.reasons,
                "checks": [{**asdict(c), "passed": c.passed} for c in self.checks]}


def verify(spec: Spec, base: str = "origin/main") -> Verification:
    """Re-check every manifest this branch changes against ``base``, each reason listed.

    From the manifest alone: schema, environment, gates, card, order and that it replaces what
    ``base`` runs (so a second promotion to one environment fails after the first merges);
    then that the registry agrees (version, run, artifact hash).
    """
    gitutil.require_repository(spec.root)
    if not gitutil.ref_exists(spec.root, base):
        raise ConfigError(f"unknown git ref {base!r}: fetch it first (in GitHub Actions: actions/checkout "
                          "with fetch-depth: 0)")
    folder = spec.environments_dir.relative_to(spec.root).as_posix()
    paths = [p for p in gitutil.changed_paths(spec.root, base, folder) if p.endswith("/" + MANIFEST)]
    rank = {env: index for index, env in enumerate(spec.release.environments)}
    paths.sort(key=lambda p: (rank.get(Path(p).parent.name, len(rank)), p))  # declared order, unknown last
    client: MlflowClient | None = None
    registry_down: str | None = None
    checks = []
    for path in paths:
        check, manifest = _check_manifest_file(spec, base, path)
        if manifest is not None:  # parsed: the registry must agree too, whatever else is wrong
            if registry_down is None:
                try:
                    client = client or tracking.connect(spec)
                    check.reasons += registry_disagreements(spec, client, manifest)
                except tracking.RegistryError as exc:
                    registry_down = str(exc)
            if registry_down is not None:
                check.reasons.append(f"registry cannot confirm the release: {registry_down}")
        checks.append(check)
    return Verification(base=base, checks=checks)


def _check_manifest_file(spec: Spec, base: str, path: str) -> tuple[ManifestCheck, dict | None]:
    """Checks that need only git and the files; the manifest when it parsed."""
    env = Path(path).parent.name
    base_text = gitutil.show(spec.root, base, path)
    base_manifest, base_problem = _parse_or_reason(base_text, f"{base}:{path}")
    check = ManifestCheck(env=env, path=path, change="promotion", version=None,
                          base_version=base_manifest["version"] if base_manifest else None)
    if base_problem:
        check.reasons.append(f"on {base}: {base_problem}")
    if env not in spec.release.environments:
        check.change = "invalid"
        check.reasons.append(f"unknown environment {env!r}: {spec.pyproject.name} declares "
                             f"{', '.join(spec.release.environments)}")
        return check, None
    file = spec.root / path
    if not file.is_file():
        check.change = "removal"
        if base_manifest is not None and base_manifest["replaces"] is not None:
            replaced = base_manifest["replaces"]["version"]
            check.reasons.append(f"deletes the release of {env}, which replaced v{replaced}: "
                                 "to roll back, revert the commit that promoted it")
        return check, None
    manifest, problem = _parse_or_reason(file.read_text(encoding="utf-8"), path)
    if manifest is None:
        check.change = "invalid"
        check.reasons.append(problem)
        return check, None
    check.version = manifest["version"]
    check.reasons += _content_reasons(spec, env, manifest)
    rollback = base_manifest is not None and base_manifest["replaces"] is not None \
        and manifest["version"] == base_manifest["replaces"]["version"]
    check.change = "rollback" if rollback else "promotion"
    check.reasons += _sequence_reasons(spec, base, env, manifest, base_manifest, rollback)
    return check, manifest


def _parse_or_reason(text: str | None, source: str) -> tuple[dict | None, str | None]:
    if text is None:
        return None, None
    try:
        return parse_manifest(text, source), None
    except ConfigError as exc:
        return None, str(exc)


def manifest_problems(spec: Spec, env: str) -> list[str]:
    """What is wrong with the committed release of ``env`` from the files alone (no git, no registry):
    schema, environment, model, gates, and the card it names (for the last environment, completed)."""
    try:
        manifest = read_manifest(spec, env)
    except ConfigError as exc:
        return [str(exc)]
    return [] if manifest is None else _content_reasons(spec, env, manifest)


def _content_reasons(spec: Spec, env: str, manifest: dict) -> list[str]:
    """What the manifest says about itself: environment, model, gates, card."""
    reasons = []
    if manifest["environment"] != env:
        reasons.append(f"field 'environment': says {manifest['environment']!r} "
                       f"but the file is in environments/{env}/")
    if manifest["model_name"] != spec.model_name:
        reasons.append(f"field 'model_name': {manifest['model_name']!r} is not this project's model "
                       f"{spec.model_name!r}")
    if manifest["model_uri"] != f"models:/{spec.model_name}/{manifest['version']}":
        reasons.append(f"field 'model_uri': {manifest['model_uri']!r} "
                       f"does not name version {manifest['version']}")
    if not manifest["gates"]["passed"] or not all(g["passed"] for g in manifest["gates"]["results"]):
        reasons.append(f"field 'gates': v{manifest['version']} did not pass its gates")
    reasons += _card_reasons(spec, env, manifest)
    return reasons


def _card_reasons(spec: Spec, env: str, manifest: dict) -> list[str]:
    card = spec.root / manifest["model_card"]
    if not card.is_file():
        return [f"field 'model_card': {manifest['model_card']} does not exist"]
    front = cards.read_front_matter(card)
    reasons = []
    if front.get("version") != manifest["version"] or front.get("model") != manifest["model_name"]:
        reasons.append(f"field 'model_card': {manifest['model_card']} is the card of "
                       f"{front.get('model')} v{front.get('version')}, not v{manifest['version']}")
    unfilled = cards.count_unfilled(card)
    if env == spec.release.environments[-1] and unfilled:
        reasons.append(f"{manifest['model_card']} still has {unfilled} '{cards.UNFILLED_MARKER}' marker(s): "
                       f"{env} needs a completed model card")
    return reasons


def _sequence_reasons(spec: Spec, base: str, env: str, manifest: dict, base_manifest: dict | None,
                      rollback: bool) -> list[str]:
    """That the manifest follows what ``base`` runs: no silent overwrite, no skipped stage."""
    version = manifest["version"]
    replaced = (manifest["replaces"] or {}).get("version")
    runs = base_manifest["version"] if base_manifest else None
    if runs == version:
        return [f"{env} already runs v{version} on {base}"]
    if rollback:
        return []  # back to the release the current one replaced: it passed these checks when first released
    reasons = []
    if replaced != runs:
        said = f"v{replaced}" if replaced is not None else "nothing"
        now = f"v{runs}" if runs is not None else "nothing"
        reasons.append(f"field 'replaces': says {env} runs {said}, but on {base} it runs {now}: "
                       "another release was merged meanwhile; update the branch and promote again")
    if base_manifest is not None and replaced == runs \
            and manifest["replaces"]["artifact_sha256"] != base_manifest["artifact_sha256"]:
        reasons.append(f"field 'replaces.artifact_sha256': does not match the release of {env} on {base}")
    before = previous_environment(spec, env)
    if before is not None:
        text = gitutil.show(spec.root, base, relative_manifest(spec, before))
        upstream, _ = _parse_or_reason(text, f"{base}:{relative_manifest(spec, before)}")
        upstream_version = upstream["version"] if upstream else None
        if upstream_version != version:
            now = f"v{upstream_version}" if upstream_version is not None else "nothing"
            reasons.append(f"{env} takes only what {before} runs now, and on {base} {before} runs {now}")
        if manifest["promoted_from"] != before:
            reasons.append(f"field 'promoted_from': expected {before!r}, got {manifest['promoted_from']!r}")
    return reasons


# -- deploy -----------------------------------------------------------------------------------
@dataclass
class Deployment:
    env: str
    version: int | None
    previous_version: int | None
    alias_changed: bool
    bento_tag: str | None
    image: str | None
    image_file: Path
    model_uri: str | None

    def as_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def deploy(spec: Spec, env: str) -> Deployment:
    """Make the registry alias and the bento follow ``environments/<env>/release.yaml``.

    Checks the registry agrees with the manifest before changing anything; running it again
    changes nothing. With no manifest (the first release was reverted) the alias is removed.
    """
    env = check_environment(spec, env)
    manifest = read_manifest(spec, env)
    client = tracking.connect(spec)
    before = alias_version(spec, client, env)
    if manifest is None:
        if before is not None:
            tracking._call(lambda: client.delete_registered_model_alias(spec.model_name, env), spec)
        return _deployed(spec, Deployment(env, None, before, before is not None, None, None,
                                          _image_file(spec, env), None))
    packaged = packaged_release(spec, env, manifest, client)
    changed = before != manifest["version"]
    if changed:
        target = str(manifest["version"])
        tracking._call(lambda: client.set_registered_model_alias(spec.model_name, env, target), spec)
    return _deployed(spec, Deployment(env, manifest["version"], before, changed, packaged.bento_tag,
                                      manifest["image"], _image_file(spec, env), manifest["model_uri"]))


def packaged_release(spec: Spec, env: str, manifest: dict, client, export_dir: Path | None = None):
    """The bento ``manifest`` pins, built (and exported to ``export_dir``) after the registry is checked
    to agree with the manifest; refuses a bento that differs from the pinned one."""
    reasons = registry_disagreements(spec, client, manifest)
    if reasons:
        raise CheckFailed(f"not deploying {relative_manifest(spec, env)}: " + "; ".join(reasons))
    from .serve.package import package  # serving is heavy to import; only deploy needs it

    packaged = package(spec, manifest["version"], export_dir)
    if packaged.bento_tag != manifest["bento_tag"]:
        raise CheckFailed(f"not deploying {relative_manifest(spec, env)}: packaging v{manifest['version']} "
                          f"gave bento {packaged.bento_tag}, the manifest pins {manifest['bento_tag']}")
    return packaged


@dataclass
class ImageContext:
    """The build context of the image an environment's release runs, and how to name and label it."""

    env: str
    version: int
    bento_tag: str
    image: str
    folder: Path
    dockerfile: Path

    @property
    def labels(self) -> dict[str, str]:
        return {"org.opencontainers.image.version": f"v{self.version}", "ai.gitops-ml.bento-tag": self.bento_tag,
                "ai.gitops-ml.model-version": str(self.version), "ai.gitops-ml.environment": self.env}

    def as_dict(self) -> dict:
        return {"environment": self.env, "version": self.version, "bento_tag": self.bento_tag, "image": self.image,
                "context": str(self.folder), "dockerfile": str(self.dockerfile), "labels": self.labels}


def image_context(spec: Spec, env: str, folder: Path | None = None) -> ImageContext:
    """Write the container build context of ``environments/<env>/release.yaml``'s bento; moves no alias.

    The image is built from it and pushed before ``deploy`` points the alias at the version, so the
    alias never names a version whose image does not exist.
    """
    from .serve.package import DOCKERFILE, unpack_build_context

    env = check_environment(spec, env)
    manifest = read_manifest(spec, env)
    if manifest is None:
        raise CheckFailed(f"{relative_manifest(spec, env)} does not exist: {env} runs no release, no image to build")
    folder = Path(folder or spec.root / STATE_DIR / "image" / env)
    with tempfile.TemporaryDirectory() as scratch:
        packaged = packaged_release(spec, env, manifest, tracking.connect(spec), Path(scratch))
        unpack_build_context(packaged.archive, folder)
    result = ImageContext(env, manifest["version"], packaged.bento_tag, manifest["image"], folder.resolve(),
                          folder.resolve() / DOCKERFILE)
    if github.in_actions():
        for name, value in (("image", result.image), ("bento_tag", result.bento_tag), ("context", str(result.folder)),
                            ("dockerfile", str(result.dockerfile)), ("version", str(result.version)),
                            ("labels", "\n".join(f"{k}={v}" for k, v in result.labels.items()))):
            github.set_output(name, value)
    return result


def _image_file(spec: Spec, env: str) -> Path:
    return spec.root / STATE_DIR / "deploy" / f"{env}.json"


def _deployed(spec: Spec, result: Deployment) -> Deployment:
    """Leave the image reference for the workflow's containerize-and-push step."""
    text = json.dumps({"environment": result.env, "version": result.version, "bento_tag": result.bento_tag,
                       "image": result.image, "model_uri": result.model_uri}, indent=2) + "\n"
    result.image_file.parent.mkdir(parents=True, exist_ok=True)
    if not result.image_file.is_file() or result.image_file.read_text(encoding="utf-8") != text:
        result.image_file.write_text(text, encoding="utf-8")
    if github.in_actions():
        for name, value in (("image", result.image or ""), ("bento_tag", result.bento_tag or ""),
                            ("version", "" if result.version is None else str(result.version)),
                            ("changed", str(result.alias_changed).lower())):
            github.set_output(name, value)
    return result


# -- status -----------------------------------------------------------------------------------
@dataclass
class EnvironmentStatus:
    env: str
    version: int | None
    metrics: dict[str, float]
    since_commit: str | None
    since: str | None
    alias_version: int | None
    in_sync: bool | None  # None when the registry could not be asked
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def status(spec: Spec) -> list[EnvironmentStatus]:
    """What each environment runs per git, beside what the registry alias says."""
    client: MlflowClient | None = None
    registry_error = ""
    result = []
    for env in spec.release.environments:
        manifest = read_manifest(spec, env)
        version = manifest["version"] if manifest else None
        commit = gitutil.last_commit(spec.root, relative_manifest(spec, env)) \
            if manifest and gitutil.is_repository(spec.root) else None
        alias, in_sync, note = None, None, ""
        if not registry_error:
            try:
                client = client or tracking.connect(spec)
                alias = alias_version(spec, client, env)
                in_sync = alias == version
            except (tracking.RegistryError, MlflowException) as exc:
                registry_error = str(exc)
        if registry_error:
            note = f"registry unreachable: {registry_error}"
        elif not in_sync:
            note = f"DIVERGED: run `gitops-ml deploy {env}`"
        if manifest is not None and commit is None:
            note = (note + "; " if note else "") + "manifest not committed"
        result.append(EnvironmentStatus(env, version, (manifest or {}).get("metrics", {}),
                                        commit.sha if commit else None, commit.date if commit else None,
                                        alias, in_sync, note))
    return result

