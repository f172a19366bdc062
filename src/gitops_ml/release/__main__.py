"""``python -m gitops_ml.release``: print the manifest's JSON schema, generated from the models."""

import sys

from .manifest import schema_text

sys.stdout.write(schema_text())
