"""``reconcile``: re-assert every registry alias from git, on a schedule.

Git is the source of truth and the registry's aliases follow it (OpenGitOps: continuously reconciled).
An alias moved by hand, or left behind by a failed deploy, is put back where the merged manifest says.
What cannot be put back (the manifest pins a version the registry no longer holds as released, or the
registry cannot be asked) is reported and fails the run: nothing is guessed. A canary's alias
(``<env>-canary``) follows ``canary.yaml`` the same way, and goes once no canary runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .. import tracking
from ..config import Spec
from ..errors import CheckFailed
from .canary import canary_alias, canary_at
from .deploy import merged_refusals
from .environments import read_manifest
from .registry import alias_version, registry_disagreements
from .verify import content_reasons


@dataclass(frozen=True)
class AliasCheck:
    env: str  # the alias: the environment's name, or <env>-canary
    git_version: int | None  # what environments/<env>/release.yaml (or canary.yaml) names; None: no release
    alias_before: int | None
    alias_after: int | None
    action: str  # "in sync", "moved", "removed" or "refused"
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return asdict(self) | {"reasons": list(self.reasons)}


@dataclass(frozen=True)
class Reconciliation:
    checks: tuple[AliasCheck, ...]

    @property
    def refused(self) -> tuple[AliasCheck, ...]:
        return tuple(check for check in self.checks if check.action == "refused")

    def as_dict(self) -> dict:
        return {"environments": [check.as_dict() for check in self.checks], "refused": len(self.refused)}


def reconcile(spec: Spec, base: str = "main") -> Reconciliation:
    """Make each environment's alias name the version its merged manifest names.

    Every environment is checked even when one is refused, so one run reports them all; CheckFailed
    (exit 1) is left to the caller (``require_reconciled``), which has the whole report to print first.
    """
    client = tracking.connect(spec)
    checks = []
    for env in spec.release.environments:
        checks.append(_reconcile_one(spec, client, env, env, read_manifest(spec, env), base))
        candidate, alias = canary_at(spec, env), canary_alias(env)
        if candidate is not None or alias_version(spec, client, alias) is not None:
            checks.append(_reconcile_one(spec, client, env, alias, candidate, base))
    return Reconciliation(tuple(checks))


def _reconcile_one(spec: Spec, client, env: str, alias: str, manifest, base: str) -> AliasCheck:
    """Put ``alias`` where ``manifest`` (env's release, or its canary) says, or say why not."""
    before = alias_version(spec, client, alias)
    target = None if manifest is None else manifest.version
    reasons = merged_refusals(spec, env, base)
    if manifest is not None:
        reasons += content_reasons(spec, env, manifest) + registry_disagreements(spec, client, manifest)
    if reasons:
        return AliasCheck(alias, target, before, before, "refused", tuple(reasons))
    if before == target:
        return AliasCheck(alias, target, before, before, "in sync")
    if target is None:
        tracking.call(lambda: client.delete_registered_model_alias(spec.model_name, alias), spec)
        return AliasCheck(alias, None, before, None, "removed")
    tracking.call(lambda: client.set_registered_model_alias(spec.model_name, alias, str(target)), spec)
    return AliasCheck(alias, target, before, target, "moved")


def require_reconciled(result: Reconciliation) -> None:
    """Fail loudly (exit 1) when an alias could not be put where git says."""
    if result.refused:
        lines = [f"{check.env}: " + "; ".join(check.reasons) for check in result.refused]
        raise CheckFailed("aliases not re-asserted from git: " + " | ".join(lines), result)
