"""The release manifest ``environments/<env>/release.yaml`` as typed models, and its reading and writing.

The JSON schema shipped for users (``schemas/release.schema.json``, for check-jsonschema and
editors) is generated from these models: regenerate it with
``python -m gitops_ml.release > src/gitops_ml/schemas/release.schema.json`` (``make schema``).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Annotated, Literal

import jsonschema
import yaml
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).parent.parent / "schemas" / "release.schema.json"
SCHEMA_ID = "https://github.com/gitops-ml/gitops-ml/schemas/release.schema.json"
FIRST_SOURCE = "registry"  # ``promoted_from`` of a release to the first environment
HEADER = (
    "# Release manifest, written by `gitops-ml promote`. Change it only by promoting (or by reverting\n"
    "# the commit that promoted it): `gitops-ml verify` checks every field against the registry.\n"
)
SHA256 = r"^[0-9a-f]{64}$"
IMAGE_DIGEST = r"^sha256:[0-9a-f]{64}$"
# Optional fields: a manifest written before they existed stays valid, and they are left out when unset.
OPTIONAL = ("image_digest",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class GateResult(_Strict):
    name: str
    metric: str
    value: float | None
    threshold: float | None
    passed: bool
    kind: str = ""


class Gates(_Strict):
    """Gate results recorded by `gitops-ml evaluate`, at promotion."""

    passed: bool
    evaluated_against: str | None
    baseline_version: int | None
    results: list[GateResult]


class Replaces(_Strict):
    """The release this one replaces in the same environment."""

    version: Annotated[int, Field(ge=1)]
    artifact_sha256: Annotated[str, Field(pattern=SHA256)]


class ReleaseManifest(_Strict):
    """environments/<env>/release.yaml: the model version an environment runs, pinned so that it cannot
    change under the same name. Written by `gitops-ml promote`, checked by `gitops-ml verify`, applied by
    `gitops-ml deploy`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, title="gitops-ml release manifest")

    schema_version: Literal[1] = Field(description="Version of this manifest format.")
    environment: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="The environment this release is for; must match the folder the file is in.",
    )
    model_name: str = Field(min_length=1, description="Registered model name in MLflow.")
    version: int = Field(ge=1, description="Registered model version the environment runs.")
    model_uri: str = Field(pattern=r"^models:/[^/]+/[0-9]+$", description="models:/<name>/<version>")
    logged_model_uri: str = Field(
        pattern=r"^models:/m-[0-9a-f]+$",
        description="The MLflow LoggedModel the version was registered from: models:/m-<id>.",
    )
    artifact_sha256: str = Field(
        pattern=SHA256,
        description="sha256 over the logged model's files (sorted relative paths "
        "and their sha256s); verify and deploy recompute it from the "
        "registry.",
    )
    run_id: str = Field(min_length=1, description="MLflow run that trained the version.")
    git_commit: str = Field(
        description="Commit the training code was at ('-dirty' when the tree had changes; empty outside git)."
    )
    data_fingerprint: str = Field(description="sha256 of the canonical training data.")
    metrics: dict[str, float | None] = Field(
        description="Held-out metrics recorded by `gitops-ml evaluate`, at promotion."
    )
    gates: Gates
    model_card: str = Field(min_length=1, description="Path of the model card, relative to the project root.")
    bento_tag: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]*:[A-Za-z0-9_.-]+$",
        description="The bento `gitops-ml deploy` builds or reuses: <name>:<version>.",
    )
    image: str = Field(
        min_length=1, description="Container image reference the release deploys as: <release.image_repository>:<tag>."
    )
    image_digest: str | None = Field(
        default=None,
        pattern=IMAGE_DIGEST,
        description="Digest of the image pushed for the release (sha256:<64 hex>), which the environment's "
        "kustomization.yaml pins as <repository>@<digest>; absent until the image is built and pushed.",
    )
    promoted_from: str = Field(
        min_length=1, description="'registry' for the first environment, else the environment the version came from."
    )
    promoted_at: str = Field(
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
        description="UTC time of the promotion, ISO 8601.",
    )
    replaces: Replaces | None = Field(
        description="The release this one replaces in the same environment, or null for the first."
    )

    @property
    def replaced_version(self) -> int | None:
        return None if self.replaces is None else self.replaces.version

    @property
    def image_repository(self) -> str:
        """``image`` without its tag: what the digest is pinned on."""
        name, _, tag = self.image.rpartition(":")
        return name if name and "/" not in tag else self.image

    @property
    def pinned_image(self) -> str | None:
        """``<repository>@sha256:...``, the reference that cannot move; None without a digest."""
        return None if self.image_digest is None else f"{self.image_repository}@{self.image_digest}"


def generated_schema() -> dict:
    """The JSON schema of a manifest, from the models (what ``schemas/release.schema.json`` must hold)."""
    schema = ReleaseManifest.model_json_schema()
    schema["required"] = [name for name in ReleaseManifest.model_fields if name not in OPTIONAL]
    digest = ReleaseManifest.model_fields["image_digest"]
    # One type list, so that a tag in place of a digest is reported as a pattern, not as "string or null".
    schema["properties"]["image_digest"] = {"description": digest.description, "pattern": IMAGE_DIGEST,
                                            "title": "Image Digest", "type": ["string", "null"]}  # fmt: skip
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text() -> str:
    return json.dumps(generated_schema(), indent=2) + "\n"


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
            said = _short(error)
            if where == "image_digest" and error.validator == "pattern":
                said = "expected an image digest sha256:<64 hex digits>, not a tag"
            problems.append(f"field '{where or '(top level)'}': {said} (got {shown})")
    return problems


def _short(error: jsonschema.ValidationError) -> str:
    if error.validator == "pattern":
        return f"does not match {error.validator_value}"
    if error.validator == "type":
        return f"expected {error.validator_value}"
    if error.validator == "const":
        return f"must be {error.validator_value!r}"
    if error.validator in ("oneOf", "anyOf"):
        kinds = [option.get("type") or "a mapping" for option in error.validator_value]
        if "$ref" in json.dumps(error.validator_value):
            return "expected null or a mapping with version and artifact_sha256"
        return "expected " + " or ".join(str(kind) for kind in kinds)
    return error.message.split(" is ", 1)[-1] if " is " in error.message else error.message


def parse_manifest(text: str, source: str) -> ReleaseManifest:
    """YAML text of a manifest, checked against the schema; ConfigError naming the file and every bad field."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {' '.join(_without_source(str(exc)).split())}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping of release fields, got {type(document).__name__}")
    problems = schema_problems(document)
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    return ReleaseManifest.model_validate(document)


def _without_source(message: str) -> str:
    """PyYAML names the stream ``<unicode string>``; the caller names the file already."""
    return message.replace('in "<unicode string>", ', "").replace(' in "<unicode string>"', "")


def dump_manifest(manifest: ReleaseManifest | dict) -> str:
    document = manifest.model_dump(mode="json") if isinstance(manifest, ReleaseManifest) else manifest
    document = {k: v for k, v in document.items() if not (k in OPTIONAL and v is None)}
    return HEADER + yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True)
