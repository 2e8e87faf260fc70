"""The Task declaration (hf_posenc.tasks.base) and the SNLI task the probes fine-tune on (hf_posenc.tasks.snli)."""

import dataclasses
import json

import pytest

from hf_posenc.data import SNLI_LABELS
from hf_posenc.tasks import SNLI, Task, TaskKind
from hf_posenc.tasks.scoring import accuracy_scores


def _declaration(**changes) -> dict:
    fields = {field.name: getattr(SNLI, field.name) for field in dataclasses.fields(Task)}
    return {**fields, **changes}


def test_snli_task_declares_pairs_labels_and_splits(tmp_path):
    assert SNLI.kind is TaskKind.SENTENCE_PAIR
    assert SNLI.label_names == SNLI_LABELS and SNLI.num_labels == 3
    assert (SNLI.train_split, SNLI.report_split) == ("train", "test")
    record = {"gold_label": "neutral", "sentence1": "A man sleeps.", "sentence2": "A man dreams."}
    record["sentence2_parse"] = "(ROOT (S (NP (DT A) (NN man)) (VP (VBZ dreams)) (. .)))"
    file = tmp_path / "snli_1.0_test.jsonl"
    file.write_text(json.dumps(record) + "\n", encoding="utf-8")
    [loaded] = SNLI.load("test", file)
    assert SNLI.texts([loaded]) == [["A man sleeps."], ["A man dreams."]]
    assert SNLI.label_id(loaded) == SNLI_LABELS.index("neutral")
    assert SNLI.score([0, 1, 2, 2], [0, 1, 2, 0]) == {"accuracy": pytest.approx(0.75)}


def test_task_refuses_an_unknown_split_and_a_label_it_does_not_have():
    with pytest.raises(ValueError, match="splits train, validation, test, not 'dev'"):
        SNLI.load("dev")
    with pytest.raises(ValueError, match="label 'maybe'.*entailment, neutral, contradiction"):
        SNLI.label_id({"sentence1": "A man sleeps.", "gold_label": "maybe"})


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(text_columns=("sentence1",)), "sentence-pair classification task reads 2 text column"),
        (dict(kind=TaskKind.REGRESSION), "regression task has no label names"),
        (dict(kind=TaskKind.SINGLE_SENTENCE, text_columns=("sentence",), label_names=()), "needs label names"),
        (dict(report_split="dev"), "dev not in its splits train, validation, test"),
        (dict(selection_split="test"), "selecting on the reported split test"),
    ],
)
def test_inconsistent_task_declarations_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        Task(**_declaration(**changes))


def test_a_regression_task_has_one_output():
    task = Task(
        **_declaration(
            name="similarity", kind="regression", label_names=(), label_column="score", metric=accuracy_scores
        )
    )
    assert task.kind is TaskKind.REGRESSION and task.num_labels == 1
