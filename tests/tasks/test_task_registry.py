"""The task registry and each built-in task's loader on real data (hf_posenc.tasks.registry and the task modules),
plus GLUE from local files in the Hub dataset's layout."""

import json
import random

import pytest

from hf_posenc.tasks import TASKS, HeldOut, TaskKind, get_task
from hf_posenc.tasks.bigram_shift import BIGRAM_SHIFT, invert_bigram
from hf_posenc.tasks.dedup import model_view
from hf_posenc.tasks.parse import parse_tree
from hf_posenc.tasks.pos import PENN_TREEBANK_TAGS, POS
from hf_posenc.tasks.sentiment import SENTIMENT
from hf_posenc.tasks.snli import SNLI
from hf_posenc.tasks.tree_depth import TREE_DEPTH, depth_class, tree_depth


def test_registry_holds_the_built_in_tasks_and_glue():
    assert {"snli", "sentiment", "pos", "bigram_shift", "tree_depth"} <= set(TASKS)
    assert {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli-m", "mnli-mm", "qnli", "rte", "wnli"} <= set(TASKS)
    assert get_task("pos").kind is TaskKind.TOKEN_CLASSIFICATION and get_task("stsb").kind is TaskKind.REGRESSION
    assert get_task("cola").main_metric == "matthews_correlation" and get_task("mrpc").main_metric == "f1"
    for task in TASKS.values():  # no task selects on the split it reports
        assert task.selection_split and task.selection_split != task.report_split


def test_sentiment_splits_are_fixed_disjoint_and_cover_the_snippets():
    splits = {split: SENTIMENT.load(split) for split in SENTIMENT.splits}
    assert {split: len(examples) for split, examples in splits.items()} == {
        "train": 10201,
        "validation": 1275,
        "test": 1275,
    }
    texts = [{model_view(example["text"]) for example in examples} for examples in splits.values()]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])  # as the model reads them
    assert {example["label"] for example in splits["test"]} == {"fresh", "rotten"}
    assert {"text": "A three-hour cinema master class.", "label": "fresh"} in splits["train"] + splits["test"] + splits[
        "validation"
    ]


def test_snli_development_split_is_held_out_of_train_by_premise():
    train, validation, test = SNLI.load("train"), SNLI.load("validation"), SNLI.load("test")
    assert (len(train), len(validation), len(test)) == (97886, 2001, 9824)
    premises = [{model_view(pair["sentence1"]) for pair in split} for split in (train, validation, test)]
    assert len(premises[1]) == 511 and not premises[0] & premises[1] and not premises[0] & premises[2]
    # The same pairs on every run and machine.
    assert [pair["pairID"] for pair in validation[:3]] == [
        "3637966641.jpg#1r1n",
        "3637966641.jpg#1r1e",
        "3637966641.jpg#1r1c",
    ]


def test_pos_reads_words_and_tags_from_the_parses():
    test = POS.load("test")
    assert len(test) == 12955 and len({model_view(example["words"]) for example in test}) == len(test)
    assert all(len(example["words"]) == len(example["tags"]) for example in test)
    assert {tag for example in test for tag in example["tags"]} <= set(PENN_TREEBANK_TAGS)
    assert POS.label_ids({"words": ["A", "man"], "tags": ["DT", "NN"]}) == [
        PENN_TREEBANK_TAGS.index("DT"),
        PENN_TREEBANK_TAGS.index("NN"),
    ]


def test_bigram_shift_inverts_two_adjacent_words_in_half_of_the_sentences():
    test = BIGRAM_SHIFT.load("test")
    assert len(test) == 12954 and sum(example["label"] == "inverted" for example in test) == len(test) // 2
    assert BIGRAM_SHIFT.load("test")[:50] == test[:50]  # deterministic
    originals = {tuple(example["words"]) for example in POS.load("test")}
    for example in test[:300]:
        words = example["sentence"].split(" ")
        assert (tuple(words) in originals) == (example["label"] == "original")
    words = ["A", "man", "sleeps", "on", "a", "bench", "."]
    inverted = invert_bigram(words, random.Random(3))
    assert inverted[-1] == "." and sorted(inverted) == sorted(words)
    changed = [index for index, (old, new) in enumerate(zip(words, inverted)) if old != new]
    assert len(changed) == 2 and changed[1] == changed[0] + 1
    assert invert_bigram(["Run", "."], random.Random(0)) is None  # the final punctuation never moves


def test_tree_depth_counts_constituents_above_the_tags():
    tree = parse_tree("(ROOT (S (NP (DT A) (NN man)) (VP (VBZ sleeps) (PP (IN on) (NP (DT a) (NN bench)))) (. .)))")
    assert tree_depth(tree) == 5  # ROOT, S, VP, PP, NP
    assert [depth_class(depth) for depth in (2, 4, 5, 8, 9, 15)] == ["<=4", "<=4", "5", "8", ">=9", ">=9"]
    test = TREE_DEPTH.load("test")
    assert len(test) == 12955 and {example["label"] for example in test} == set(TREE_DEPTH.label_names)


def test_a_held_out_split_comes_from_the_given_train_file(tmp_path):
    record = {"sentence2_parse": "(ROOT (S (NP (DT A) (NN man)) (VP (VBZ naps))))"}
    labels = ["entailment", "neutral", "contradiction"]
    rows = [
        {**record, "sentence1": f"A man sleeps {index}.", "sentence2": f"A man naps {index}.", "gold_label": label}
        for index, label in enumerate(labels * 10)
    ]
    file = tmp_path / "snli_1.0_train.jsonl"
    file.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    held = HeldOut("validation", 0.2, seed=1)
    assert len(held.chosen(30)) == 6 and held.chosen(30) == HeldOut("validation", 0.2, seed=1).chosen(30)
    assert len(HeldOut("validation", 0.5, most=4).chosen(30)) == 4
    train, validation = SNLI.load("train", file), SNLI.load("validation", file)
    assert (len(train), len(validation)) == (27, 3)  # a tenth of a small train file (at most 2,000 pairs)
    assert {pair["sentence2"] for pair in train}.isdisjoint(pair["sentence2"] for pair in validation)
    assert SNLI.file_split("validation") == "train" and SNLI.file_split("test") == "test"


@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".jsonl"])
def test_glue_reads_local_files_in_the_hub_layout(tmp_path, suffix):
    rows = [("The cat sat.", "A cat sat.", "1"), ("The dog ran.", "A bird flew.", "0"), ("It rained.", "Rain.", "1")]
    file = tmp_path / f"train{suffix}"
    if suffix == ".jsonl":
        lines = [json.dumps({"sentence1": a, "sentence2": b, "label": int(label)}) for a, b, label in rows]
    else:
        separator = "\t" if suffix == ".tsv" else ","
        lines = [separator.join(["sentence1", "sentence2", "label"])] + [separator.join(row) for row in rows]
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    mrpc = get_task("mrpc")
    loaded = mrpc.load("validation", file)
    assert loaded[0] == {"sentence1": "The cat sat.", "sentence2": "A cat sat.", "label": "equivalent"}
    assert [mrpc.label_id(example) for example in loaded] == [1, 0, 1]
    stsb = get_task("stsb")
    assert [example["label"] for example in stsb.load("validation", file)] == [1.0, 0.0, 1.0]


def test_glue_development_split_holds_whole_premises(tmp_path):
    # MNLI pairs three hypotheses with each premise: a cut by example would train on the development premises.
    rows = [
        {"premise": f"A man sleeps {index}.", "hypothesis": f"He {kind} {index}.", "label": label}
        for index in range(40)
        for kind, label in (("sleeps", 0), ("dreams", 1), ("runs", 2))
    ]
    file = tmp_path / "train.jsonl"
    file.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    mnli = get_task("mnli-m")
    train, development = mnli.load("train", file), mnli.load("development", file)
    assert len(train) + len(development) == 120 and len(development) >= 12
    assert {pair["premise"] for pair in train}.isdisjoint(pair["premise"] for pair in development)
