"""`gitops-ml schema infer` writes a DataFrameModel that accepts the data it was inferred from."""

import importlib.util

import pandas as pd
from click.testing import CliRunner

from gitops_ml.cli import main

from .conftest import EXAMPLE_DATA


def load_module(path):
    spec = importlib.util.spec_from_file_location("inferred_schema", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_inferred_schema_validates_its_source_and_catches_an_unseen_category(tmp_path):
    output = tmp_path / "schema.py"
    result = CliRunner().invoke(
        main, ["schema", "infer", str(EXAMPLE_DATA), "--target", "churned", "--output", str(output), "--json"]
    )
    assert result.exit_code == 0, result.output
    schema = load_module(output).DataSchema
    frame = pd.read_csv(EXAMPLE_DATA)
    schema.validate(frame, lazy=True)
    text = output.read_text()
    assert "'month-to-month'" in text and "nullable=True" in text
    frame.loc[0, "contract"] = "weekly"
    try:
        schema.validate(frame, lazy=True)
    except Exception as exc:  # pandera's SchemaErrors
        assert "weekly" in str(exc)
    else:
        raise AssertionError("an unseen category passed the inferred schema")


def test_unknown_target_is_bad_usage(tmp_path):
    result = CliRunner().invoke(main, ["schema", "infer", str(EXAMPLE_DATA), "--target", "nope"])
    assert result.exit_code == 2
    assert "no column 'nope'" in result.output
