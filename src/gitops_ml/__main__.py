"""``python -m gitops_ml`` is the ``gitops-ml`` command."""

from .cli import run

run()
