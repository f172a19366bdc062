"""Which environments a project declares, where their manifests live, and what git says each runs."""

from __future__ import annotations

from pathlib import Path

from .. import layout
from ..config import Spec
from ..errors import ConfigError
from .manifest import ReleaseManifest, parse_manifest

CANARY_MANIFEST = "canary.yaml"  # a canary's release, beside release.yaml (strategy = "canary")


def check_environment(spec: Spec, env: str) -> str:
    """The environment's name, if the spec declares it."""
    if env not in spec.release.environments:
        known = ", ".join(spec.release.environments)
        raise ConfigError(f"unknown environment {env!r}: {spec.pyproject} declares {known}")
    return env


def manifest_path(spec: Spec, env: str) -> Path:
    return layout.manifest_file(spec.environments_dir, check_environment(spec, env))


def relative_manifest(spec: Spec, env: str) -> str:
    """``environments/<env>/release.yaml`` relative to the project root, as git names it."""
    return manifest_path(spec, env).relative_to(spec.root).as_posix()


def environment_mismatch(manifest: ReleaseManifest, env: str) -> str | None:
    """The reason when a manifest names another environment than the folder it is in."""
    if manifest.environment == env:
        return None
    return f"field 'environment': says {manifest.environment!r} but the file is in environments/{env}/"


def read_manifest(spec: Spec, env: str) -> ReleaseManifest | None:
    """The environment's release manifest, or None when nothing is released there."""
    return manifest_file_at(spec, env, manifest_path(spec, env), None)


def current_version(spec: Spec, env: str) -> int | None:
    """The registry version an environment runs, per git; None when it runs nothing yet."""
    manifest = read_manifest(spec, env)
    return None if manifest is None else manifest.version


def previous_environment(spec: Spec, env: str) -> str | None:
    """The environment a release must run in before ``env`` takes it; None for the first."""
    order = spec.release.environments
    index = order.index(env)
    return order[index - 1] if index else None


def changed_environments(spec: Spec, requested: str, changed_paths: list[str]) -> list[str]:
    """The environments a deploy run acts on, in declared order: ``requested`` when given (it must be
    declared), else those whose manifest is among ``changed_paths`` (paths relative to the project)."""
    if requested:
        return [check_environment(spec, requested)]
    folder = spec.environments_dir.relative_to(spec.root).as_posix()
    # release.yaml, or a canary's canary.yaml beside it (deploy moves the canary's alias too).
    names = {
        Path(p).parent.name
        for p in changed_paths
        if Path(p).name in (layout.MANIFEST, CANARY_MANIFEST) and Path(p).parent.parent.as_posix() == folder
    }
    return [env for env in spec.release.environments if env in names]


def manifest_at(spec: Spec, env: str, ref: str | None) -> ReleaseManifest | None:
    """The release of ``env`` as git ``ref`` holds it (the working tree when ``ref`` is None)."""
    return manifest_file_at(spec, env, manifest_path(spec, env), ref)


def manifest_file_at(spec: Spec, env: str, path: Path, ref: str | None) -> ReleaseManifest | None:
    """A manifest of ``env`` at ``path`` (its release.yaml, or a canary beside it) as git ``ref`` holds it,
    or the working tree when ``ref`` is None; None when there is no such file. A manifest that names
    another environment than its folder is refused."""
    if ref is None:
        if not path.is_file():
            return None
        text, source = path.read_text(encoding="utf-8"), spec.display(str(path))
    else:
        from .. import gitutil  # git is only needed when a ref is asked for

        relative = path.relative_to(spec.root).as_posix()
        text, source = gitutil.show(spec.root, ref, relative), f"{ref}:{relative}"
        if text is None:
            return None
    manifest = parse_manifest(text, source)
    mismatch = environment_mismatch(manifest, env)
    if mismatch:
        raise ConfigError(f"{source}: {mismatch}")
    return manifest
