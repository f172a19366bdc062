"""The manifest's JSON schema is generated from the pydantic models, and the committed file says so."""

from __future__ import annotations

import json

from gitops_ml.release.manifest import SCHEMA_FILE, ReleaseManifest, generated_schema, schema_text


def test_committed_schema_is_the_models_schema():
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == generated_schema(), "regenerate it: make schema (python -m gitops_ml.release)"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text()


def test_the_schema_requires_every_field_and_forbids_others():
    schema = generated_schema()
    # every field but image_digest, which a release has once its image is pushed (issue 14)
    assert schema["required"] == [name for name in ReleaseManifest.model_fields if name != "image_digest"]
    assert schema["properties"]["image_digest"]["type"] == ["string", "null"]
    assert schema["additionalProperties"] is False
    assert all(part.get("additionalProperties") is False for part in schema["$defs"].values())
