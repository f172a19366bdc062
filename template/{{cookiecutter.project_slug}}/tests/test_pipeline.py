"""The pipeline gitops-ml runs, on the sample data: train, gates, model card."""

from gitops_ml.cards import UNFILLED_MARKER, write_card
from gitops_ml.config import load_spec
from gitops_ml.evaluate import evaluate
from gitops_ml.train import train


def test_train_evaluate_card_on_the_sample(scratch):
    spec = load_spec(scratch)
    trained = train(spec)
    assert trained.version == 1
    result = evaluate(spec, trained.version)
    failed = [gate.name for gate in result.gates if not gate.passed]
    assert result.passed, f"gates failed on the sample data: {failed}"
    card = write_card(spec, trained.version)
    assert card.path.is_file()
    assert UNFILLED_MARKER in card.path.read_text(encoding="utf-8")
