"""Releases as files: ``environments/<env>/release.yaml`` says which model version an environment runs."""

from __future__ import annotations

from pathlib import Path

import yaml

from .config import Spec
from .errors import ConfigError

MANIFEST = "release.yaml"


def check_environment(spec: Spec, env: str) -> str:
    """The environment's name, if the spec declares it."""
    if env not in spec.release.environments:
        known = ", ".join(spec.release.environments)
        raise ConfigError(f"unknown environment {env!r}: {spec.pyproject} declares {known}")
    return env


def manifest_path(spec: Spec, env: str) -> Path:
    return spec.environments_dir / check_environment(spec, env) / MANIFEST


def read_manifest(spec: Spec, env: str) -> dict | None:
    """The environment's release manifest as a mapping, or None when nothing is released there."""
    path = manifest_path(spec, env)
    if not path.is_file():
        return None
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping of release fields")
    return document


def current_version(spec: Spec, env: str) -> int | None:
    """The registry version an environment runs, per git; None when it runs nothing yet."""
    manifest = read_manifest(spec, env)
    if manifest is None:
        return None
    version = manifest.get("version")
    if not isinstance(version, int):
        raise ConfigError(f"{manifest_path(spec, env)}: field 'version': expected a whole number, got {version!r}")
    return version
