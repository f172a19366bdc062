"""Releases as files: ``environments/<env>/release.yaml`` says which model version an environment runs.

Git is the source of truth. ``promote`` writes a manifest that pins a registered version (and the
pull request's title and body); ``verify`` is the pull request's required check; ``deploy`` makes
the registry alias and the bento follow the merged manifest; ``status`` shows git beside the
registry. Rolling back is reverting the release commit, then deploying again.

One module per job: ``manifest`` (the typed manifest and its schema), ``environments`` (where
manifests live, what git says), ``registry`` (what MLflow says), ``promote``, ``pr`` (the pull
request's text), ``verify``, ``image`` (the build context of a release's image), ``deploy``,
``reconcile`` (the schedule's re-assertion of every alias), ``status``.
"""

from .deploy import Deployment, deploy
from .environments import (
    changed_environments,
    check_environment,
    current_version,
    manifest_path,
    read_manifest,
    relative_manifest,
)
from .image import ImageContext, ImagePlan, image_context, promotion_image
from .manifest import ReleaseManifest, dump_manifest, parse_manifest, schema_problems
from .promote import Promotion, promote
from .reconcile import AliasCheck, Reconciliation, reconcile, require_reconciled
from .registry import alias_version
from .status import EnvironmentStatus, status
from .verify import ManifestCheck, Verification, manifest_problems, verify

__all__ = [
    "AliasCheck",
    "Deployment",
    "EnvironmentStatus",
    "ImageContext",
    "ImagePlan",
    "ManifestCheck",
    "Promotion",
    "Reconciliation",
    "ReleaseManifest",
    "Verification",
    "alias_version",
    "changed_environments",
    "check_environment",
    "current_version",
    "deploy",
    "image_context",
    "promotion_image",
    "dump_manifest",
    "manifest_path",
    "manifest_problems",
    "parse_manifest",
    "promote",
    "read_manifest",
    "reconcile",
    "relative_manifest",
    "require_reconciled",
    "schema_problems",
    "status",
    "verify",
]
