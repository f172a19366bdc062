"""The bundled example: a customer-churn data set, its data contract and its model factory.

This is the reference project of this repository and the default sample of the template.
"""

from importlib.resources import files
from pathlib import Path

from .generate import drifted_batch, make_churn

DATA_FILE = "churn.csv"


def data_path() -> Path:
    """Where the bundled CSV lives inside the installed package."""
    return Path(str(files(__package__) / "data" / DATA_FILE))


__all__ = ["data_path", "drifted_batch", "make_churn"]
