"""The project spec: good fields load typed; every bad field is named with its file, exit 2."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from gitops_ml.cli import main
from gitops_ml.config import load_spec
from gitops_ml.errors import ConfigError

from .conftest import make_project


def rewrite(root: Path, old: str, new: str) -> None:
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    assert old in text
    pyproject.write_text(text.replace(old, new))


def test_spec_loads_typed_settings(tmp_path):
    root = make_project(tmp_path / "p")
    spec = load_spec(root)
    assert spec.model_name == "churn-classifier"
    assert spec.task == "classification"
    assert spec.time_column == "snapshot_date"
    assert spec.gates.thresholds == {"roc_auc": 0.75, "f1": 0.5}
    assert spec.release.environments == ["staging", "production"]
    assert spec.data_uri == str(root / "data" / "churn.csv")
    assert spec.tracking == f"sqlite:///{root / '.mlflow' / 'mlflow.db'}"


def test_tracking_uri_env_overrides_spec(tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", extra='tracking_uri = "sqlite:///elsewhere.db"')
    assert load_spec(root).tracking == "sqlite:///elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert load_spec(root).tracking == "http://127.0.0.1:5999"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('task = "classification"', 'task = "clasification"', "'task'"),
        ('target = "churned"\n', "", "'target'"),
        ('schema = "gitops_ml.example.schema:ChurnSchema"', 'schema = "no colon here"', "'schema'"),
        ("max_regression = 0.02", "max_regression = -1", "'gates.max_regression'"),
        ("max_regression = 0.02", "max_regresion = 0.02", "'gates.max_regresion'"),
    ],
)
def test_bad_field_is_named_with_the_file(tmp_path, old, new, field):
    root = make_project(tmp_path / "p")
    rewrite(root, old, new)
    with pytest.raises(ConfigError) as caught:
        load_spec(root)
    message = str(caught.value)
    assert str(root / "pyproject.toml") in message
    assert f"[tool.gitops-ml] field {field}" in message


def test_cli_exits_2_on_bad_config(tmp_path):
    root = make_project(tmp_path / "p")
    rewrite(root, 'task = "classification"', "task = 3")
    result = CliRunner().invoke(main, ["--project", str(root), "validate"])
    assert result.exit_code == 2
    assert "field 'task'" in result.output


def test_missing_section_and_bad_toml(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    with pytest.raises(ConfigError, match=r"no \[tool.gitops-ml\] section"):
        load_spec(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.gitops-ml\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_spec(tmp_path)


def test_unimportable_factory_names_the_field(tmp_path):
    root = make_project(tmp_path / "p")
    rewrite(root, "gitops_ml.example.model:build_model", "gitops_ml.example.model:missing")
    with pytest.raises(ConfigError, match="field 'model_factory': cannot import"):
        load_spec(root).load_object("model_factory")


@pytest.mark.parametrize(("setting", "message"), [
    ('log_rotate_age = "0s"', "field 'serving.log_rotate_age': Value error, expected a positive duration"),
    ('log_rotate_age = "60"', "field 'serving.log_rotate_age': Value error, expected a positive duration"),
    ('log_rotate_age = "2d"', "field 'serving.log_rotate_age': Value error, at most 24h"),
    ('log_flush_timeout = "soon"', "field 'serving.log_flush_timeout': Value error, expected a positive duration"),
    ("log_rotate_age = 60", "field 'serving.log_rotate_age': Input should be a valid string"),
    ("log_rotate_minutes = 60", "field 'serving.log_rotate_minutes': Extra inputs are not permitted"),
])
def test_log_rotation_and_flush_settings_are_checked_naming_field_and_file(tmp_path, setting, message):
    root = make_project(tmp_path / "p", extra=f"\n[tool.gitops-ml.serving]\n{setting}\n")
    with pytest.raises(ConfigError) as raised:
        load_spec(root)
    assert str(raised.value).startswith(f"{root / 'pyproject.toml'}: ") and message in str(raised.value)


def test_log_rotation_defaults_ship_a_quiet_service_s_rows_within_a_minute(tmp_path):
    serving = load_spec(make_project(tmp_path / "p")).serving
    assert (serving.log_rotate_seconds, serving.log_flush_seconds, serving.log_rotate_mb) == (60.0, 20.0, 16.0)
    custom = load_spec(make_project(tmp_path / "q", extra='\n[tool.gitops-ml.serving]\nlog_rotate_age = "5m"\n'))
    assert custom.serving.log_rotate_seconds == 300.0


def test_slices_load_typed_and_a_parity_gate_needs_a_classifier(tmp_path):
    root = make_project(tmp_path / "p")
    with (root / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.gitops-ml.slices]\ncolumns = ["region", "age"]\nbins = { age = [30, 60] }\n'
                     "max_parity_difference = 0.2\n")  # fmt: skip
    slices = load_spec(root).slices
    assert slices.columns == ["region", "age"] and slices.bins == {"age": [30.0, 60.0]}
    assert (slices.min_rows, slices.share_shift, slices.max_gap) == (100, 0.1, None)
    # A regression has no positive predictions: the parity gate is refused, naming the field.
    rewrite(root, 'task = "classification"', 'task = "regression"')
    rewrite(root, "thresholds = { roc_auc = 0.75, f1 = 0.5 }", "thresholds = { rmse = 20.0 }")
    with pytest.raises(ConfigError) as caught:
        load_spec(root)
    assert "[tool.gitops-ml] field 'slices.max_parity_difference'" in str(caught.value)
    assert str(root / "pyproject.toml") in str(caught.value)


def test_inference_log_off_switches_logging_off_and_a_near_miss_is_named(tmp_path):
    off = load_spec(make_project(tmp_path / "off", extra='\n[tool.gitops-ml.serving]\ninference_log = "off"\n'))
    assert off.serving.logging_off
    assert not load_spec(make_project(tmp_path / "on")).serving.logging_off
    directory = make_project(tmp_path / "dir", extra='\n[tool.gitops-ml.serving]\ninference_log = "./off"\n')
    assert not load_spec(directory).serving.logging_off  # a directory named off is still a directory
    for value, message in (("", "empty: give a directory"), ("  ", "empty: give a directory"),
                           ("OFF", "'OFF': write \"off\" to log nothing, or \"./OFF\" for a directory")):
        root = make_project(tmp_path / f"bad{len(value)}{value.strip()}",
                            extra=f'\n[tool.gitops-ml.serving]\ninference_log = "{value}"\n')
        with pytest.raises(ConfigError) as raised:
            load_spec(root)
        assert f"{root / 'pyproject.toml'}: " in str(raised.value)
        assert "field 'serving.inference_log'" in str(raised.value) and message in str(raised.value)
