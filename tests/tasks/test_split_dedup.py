"""Splits that share no text as the model reads it (hf_posenc.tasks.dedup): the built-in sentence tasks drop a
train sentence that reads as a test sentence, SNLI drops train pairs of test premises and holds its development
split out by premise, and every draw is the same on every run."""

import json

import pytest

from hf_posenc.tasks.base import HeldOut
from hf_posenc.tasks.bigram_shift import BIGRAM_SHIFT
from hf_posenc.tasks.dedup import drop_seen, model_view
from hf_posenc.tasks.pos import POS
from hf_posenc.tasks.snli import SNLI
from hf_posenc.tasks.snli_sentences import _cached_sentences
from hf_posenc.tasks.tree_depth import TREE_DEPTH

LABELS = ("entailment", "neutral", "contradiction")


def _parse(sentence: str) -> str:
    """A flat parse of a sentence already split into words at spaces (the tags do not matter here)."""
    words = sentence.split()
    return "(ROOT (S " + " ".join(f"({'.' if word == '.' else 'NN'} {word})" for word in words) + "))"


def _pair(premise: str, hypothesis: str, label: str, pair_id: str) -> dict:
    return {
        "gold_label": label,
        "sentence1": premise,
        "sentence2": hypothesis,
        "sentence1_parse": _parse(premise),
        "sentence2_parse": _parse(hypothesis),
        "pairID": pair_id,
    }


def _write(file, pairs) -> None:
    file.write_text("".join(json.dumps(pair) + "\n" for pair in pairs), encoding="utf-8")


def test_model_view_is_what_an_uncased_wordpiece_tokenizer_reads(tiny_tokenizer):
    same = [
        "A man sleeps on a bench.",
        "a MAN  sleeps on a bench .",
        "A man sleeps on a bénch.",
        "A\tman sleeps on a bench.",
    ]
    assert {model_view(text) for text in same} == {"a man sleeps on a bench ."}
    assert model_view(["A", "Man", "sleeps", "on", "a", "bench", "."]) == "a man sleeps on a bench ."
    assert model_view("A man sleeps on the bench.") != model_view(same[0])
    # The same normaliser and pre-tokenizer as the tokenizers hf_posenc trains (uncased by default).
    backend = tiny_tokenizer.backend_tokenizer
    for text in [*same, "Ça va, CAFÉ's naïve déjà-vu!", "the  cat\u00a0sat"]:
        words = backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))
        assert model_view(text) == " ".join(word for word, _ in words)
    items = ["A dog.", "a  DOG .", "A cat.", "A bird.", "a dog"]
    assert drop_seen(items, str, {model_view("a bird .")}) == ["A dog.", "A cat.", "a dog"]
    assert drop_seen(items, str, distinct=False) == items


@pytest.fixture
def builtin_snli(tmp_path, monkeypatch):
    """Small SNLI files in place of the built-in copy (the cache that hf_posenc.data.snli.snli_file reads)."""
    folder = tmp_path / "cache" / "snli"
    folder.mkdir(parents=True)
    monkeypatch.setenv("HF_POSENC_CACHE", str(tmp_path / "cache"))
    test = [
        _pair("A man sleeps on a bench .", "A man is asleep .", "entailment", "t0"),
        _pair("A man sleeps on a bench .", "A man is awake .", "contradiction", "t1"),
    ]
    train = [
        # The test premise, cased, accented and spaced differently: its pairs and its sentence are test text.
        _pair("A MAN sleeps on a bénch .", f"Someone rests {index} .", label, f"d{index}")
        for index, label in enumerate(LABELS)
    ]
    train.append(_pair("Two dogs run .", "a man is ASLEEP .", "neutral", "h0"))  # a test hypothesis
    train += [
        _pair(f"Two dogs run in park {index} .", f"Dogs play {index} {label} .", label, f"p{index}{label[0]}")
        for index in range(20)
        for label in LABELS
    ]
    _write(folder / "snli_1.0_test.jsonl", test)
    _write(folder / "snli_1.0_train.jsonl", train)
    _cached_sentences.cache_clear()
    yield test
    _cached_sentences.cache_clear()


@pytest.mark.parametrize("task", [POS, TREE_DEPTH, BIGRAM_SHIFT], ids=lambda task: task.name)
def test_train_drops_a_test_sentence_the_model_reads_the_same(builtin_snli, task):
    column = task.text_columns[0]
    views = {split: [model_view(example[column]) for example in task.load(split)] for split in task.splits}
    test = {model_view(pair[side]) for pair in builtin_snli for side in ("sentence1", "sentence2")}
    if task is not BIGRAM_SHIFT:  # bigram_shift inverts words of half of the test sentences
        assert set(views["test"]) == test
    trained = set(views["train"])
    assert not trained & test and not set(views["validation"]) & test
    assert not trained & set(views["validation"])
    assert len(trained) == len(views["train"])  # no sentence twice
    kept = {model_view(f"Someone rests {index} .") for index in range(3)} | {model_view("Two dogs run .")}
    if task is not BIGRAM_SHIFT:
        assert kept <= trained | set(views["validation"])  # the other sentences of those pairs stay


def test_snli_train_drops_the_pairs_of_test_premises(builtin_snli):
    test_premises = {model_view(pair["sentence1"]) for pair in builtin_snli}
    train, validation = SNLI.load("train"), SNLI.load("validation")
    assert len(train) + len(validation) == 61  # 64 train pairs less the 3 of the test premise
    assert not {model_view(pair["sentence1"]) for pair in train + validation} & test_premises


def _pairs_with_spelled_premises(count: int) -> list[dict]:
    """Three pairs per premise, the premise spelled three ways that the model reads the same."""
    pairs = []
    for index in range(count):
        spellings = (
            f"Two dogs run in park {index}.",
            f"two DOGS run in  park {index} .",
            f"Two dögs run in park {index}.",
        )
        for label, premise in zip(LABELS, spellings):
            pairs.append(_pair(premise, f"Dogs play {index} {label}.", label, f"{index}{label[0]}"))
    return pairs


def test_snli_development_split_holds_whole_premises(tmp_path):
    file = tmp_path / "snli_1.0_train.jsonl"
    _write(file, _pairs_with_spelled_premises(40))
    train, validation = SNLI.load("train", file), SNLI.load("validation", file)
    assert len(train) + len(validation) == 120 and 12 <= len(validation) < 15  # 10%, premises whole
    held = {model_view(pair["sentence1"]) for pair in validation}
    assert len(validation) == 3 * len(held)
    assert not held & {model_view(pair["sentence1"]) for pair in train}


def test_held_out_splits_are_the_same_on_every_run(tmp_path):
    file = tmp_path / "snli_1.0_train.jsonl"
    _write(file, _pairs_with_spelled_premises(40))
    validation = [pair["pairID"] for pair in SNLI.load("validation", file)]
    assert validation == [pair["pairID"] for pair in SNLI.load("validation", file)]
    # Pinned: the draw depends on the seed and the file alone (not on the process, its hash seed or set order).
    assert validation == ["2e", "2n", "2c", "10e", "10n", "10c", "16e", "16n", "16c", "28e", "28n", "28c"]
    examples = SNLI.load("train", file) + SNLI.load("validation", file)
    held = HeldOut("validation", 0.25, seed=3, group_by="sentence1")
    assert held.choose(examples) == HeldOut("validation", 0.25, seed=3, group_by="sentence1").choose(examples)
    assert held.choose(examples) != HeldOut("validation", 0.25, seed=4, group_by="sentence1").choose(examples)
    with pytest.raises(ValueError, match="at least 2 different sentence1s"):
        held.choose(examples[:3])  # one premise cannot be split
