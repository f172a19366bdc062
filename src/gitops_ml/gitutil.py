"""The few git operations promotion needs, through the ``git`` command line.

Paths are relative to the project root (``--relative``), so a project that lives in a
sub-folder of its repository works the same as one at the top.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import CheckFailed, ConfigError


class GitError(CheckFailed):
    """A git command failed: exit 1, with git's own message."""


def git(root: Path, *args: str, check: bool = True) -> str:
    """Run ``git args`` in ``root``; its stdout, stripped. Raises GitError with stderr when ``check``."""
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise ConfigError("git is not installed or not on PATH") from exc
    if check and done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise GitError(f"git {' '.join(args)} failed in {root}: {' '.join(message)[:500]}")
    return done.stdout.strip() if done.returncode == 0 else ""


def is_repository(root: Path) -> bool:
    return git(root, "rev-parse", "--is-inside-work-tree", check=False) == "true"


def require_repository(root: Path) -> None:
    if not is_repository(root):
        raise ConfigError(f"{root} is not inside a git repository")


def ref_exists(root: Path, ref: str) -> bool:
    return bool(git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False))


def branch_exists(root: Path, branch: str) -> bool:
    return ref_exists(root, f"refs/heads/{branch}")


def current_branch(root: Path) -> str:
    return git(root, "rev-parse", "--abbrev-ref", "HEAD", check=False)


def changed_paths(root: Path, base: str, folder: str) -> list[str]:
    """Files under ``folder`` that differ from where the current branch left ``base``.

    Committed changes since the merge base, uncommitted ones and untracked files all count,
    so ``verify`` right after ``promote`` (before any commit) sees the new manifest.
    """
    merge_base = git(root, "merge-base", base, "HEAD")
    tracked = git(root, "diff", "--name-only", "--no-renames", "--relative", merge_base, "--", folder)
    untracked = git(root, "ls-files", "--others", "--exclude-standard", "--", folder)
    return sorted({line for line in (tracked + "\n" + untracked).splitlines() if line})


def show(root: Path, ref: str, path: str) -> str | None:
    """A file's text at ``ref`` (path relative to the project root), or None when it is not there."""
    done = subprocess.run(["git", "show", f"{ref}:./{path}"], cwd=root, capture_output=True, text=True,
                          check=False)
    return done.stdout if done.returncode == 0 else None


@dataclass(frozen=True)
class Commit:
    sha: str
    date: str
    subject: str


def last_commit(root: Path, path: str) -> Commit | None:
    """The commit that last changed ``path``, or None when git does not know it."""
    line = git(root, "log", "-1", "--format=%H%x09%cI%x09%s", "--", path, check=False)
    if not line:
        return None
    sha, date, subject = (line.split("\t", 2) + ["", ""])[:3]
    return Commit(sha, date, subject)


def switch_to_new_branch(root: Path, branch: str, start: str = "HEAD") -> str:
    """Create ``branch`` at ``start`` and switch to it (uncommitted changes come along).

    Returns where HEAD was: the branch name, or the commit when HEAD was detached (as in CI).
    """
    previous = current_branch(root)
    if previous in ("", "HEAD"):
        previous = git(root, "rev-parse", "HEAD")
    git(root, "switch", "--quiet", "-c", branch, start)
    return previous


def resolve_base(root: Path, base: str) -> str:
    """The ref a promotion branch starts from: ``base``, else ``origin/<base>``; ConfigError naming both."""
    for ref in (base, f"origin/{base}"):
        if ref_exists(root, ref):
            return ref
    raise ConfigError(f"--base {base!r}: neither {base!r} nor 'origin/{base}' is a git ref here "
                      "(fetch it first; in GitHub Actions: actions/checkout with fetch-depth: 0)")


def is_ancestor(root: Path, commit: str, ref: str) -> bool | None:
    """Whether ``commit`` is in the history of ``ref``; None when this clone does not know ``commit``."""
    done = subprocess.run(["git", "merge-base", "--is-ancestor", commit, ref], cwd=root, capture_output=True)
    return {0: True, 1: False}.get(done.returncode)


def uncommitted(root: Path, path: str) -> bool:
    """Whether ``path`` differs from HEAD (changed, staged, untracked or deleted)."""
    return bool(git(root, "status", "--porcelain", "--untracked-files=all", "--", path))


def on_branch(root: Path, base: str) -> bool:
    """HEAD is the branch ``base``, or (detached, as in CI) the very commit ``base`` or ``origin/<base>`` names."""
    if current_branch(root) == base:
        return True
    if current_branch(root) != "HEAD":
        return False
    head = git(root, "rev-parse", "HEAD")
    return any(ref_exists(root, ref) and git(root, "rev-parse", f"{ref}^{{commit}}") == head
               for ref in (base, f"origin/{base}"))


def commit_paths(root: Path, paths: list[str], message: str) -> str:
    """Commit exactly ``paths`` (other staged changes stay out: ``--only``); the new commit's sha."""
    git(root, "add", "--", *paths)
    git(root, "commit", "--quiet", "-m", message, "--", *paths)
    return git(root, "rev-parse", "HEAD")


def abandon_branch(root: Path, branch: str, previous: str, paths: list[str]) -> None:
    """Undo ``switch_to_new_branch`` and a failed ``commit_paths``: unstage, go back, delete ``branch``."""
    git(root, "reset", "--quiet", "--", *paths, check=False)
    git(root, "checkout", "--quiet", previous, check=False)
    git(root, "branch", "-D", branch, check=False)


def paths_changed_by_last_commit(root: Path, folder: str) -> list[str]:
    """Files under ``folder`` the commit at HEAD changed (against its first parent), relative to ``root``."""
    return [line for line in git(root, "diff", "--name-only", "--relative", "HEAD^", "HEAD", "--", folder).splitlines()
            if line]


# ``git push`` names the commit before a branch existed with forty zeros; git's empty tree stands in for it.
NO_COMMIT = "0" * 40
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def paths_changed_by_push(root: Path, before: str, after: str, folder: str) -> list[str]:
    """Files under ``folder`` that a push from ``before`` to ``after`` changed, added or removed, relative to
    ``root``: every commit of the push counts (a tree diff, so a change undone within the push nets out).
    ``before`` of forty zeros (the branch's first push) compares with the empty tree: every file is new."""
    start = EMPTY_TREE if before.strip("0") == "" else before
    if start != EMPTY_TREE and not _commit_exists(root, start):
        raise GitError(
            f"the push's previous commit {before[:12]} is not in this clone: check out the whole history "
            "(actions/checkout with fetch-depth: 0); after a force push that dropped it, deploy each "
            "environment by hand (the workflow's manual run)"
        )
    return [line for line in git(root, "diff", "--name-only", "--relative", start, after, "--", folder).splitlines()
            if line]


def _commit_exists(root: Path, ref: str) -> bool:
    done = subprocess.run(["git", "cat-file", "-e", f"{ref}^{{commit}}"], cwd=root, capture_output=True, check=False)
    return done.returncode == 0
