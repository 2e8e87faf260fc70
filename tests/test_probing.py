"""Word-order probes (hf_posenc.probing): construction invariants on real SNLI parses, bad input, and a
tiny end-to-end fine-tune-and-probe run."""

import argparse
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from hf_posenc import probing
from hf_posenc.probing import (
    PROBE_NAMES,
    build_probes,
    find_roles,
    parse_tree,
    role_swap,
    save_probes,
    shuffle_within_windows,
    split_words,
)

# Real hypotheses of the SNLI 1.0 test set (CC BY-SA 4.0) with their parses, chosen to cover each case.
SNLI_HYPOTHESES = {
    # (sentence2, sentence2_parse): (expected swap or None, subject, object)
    "vehicle": (
        "A vehicle is crossing a river.",
        "(ROOT (S (NP (DT A) (NN vehicle)) (VP (VBZ is) (VP (VBG crossing) (NP (DT a) (NN river)))) (. .)))",
        "A river is crossing a vehicle.",
    ),
    "lady": (
        "The lady has a garden",
        "(ROOT (S (NP (DT The) (NN lady)) (VP (VBZ has) (NP (DT a) (NN garden)))))",
        "A garden has the lady",
    ),
    "gymnast": (
        "A younger gymnast, wearing dark blue and white, has her right leg straight in the air.",
        "(ROOT (S (NP (NP (DT A) (JJR younger) (NN gymnast)) (, ,) (VP (VBG wearing) (ADJP (RB dark) (JJ blue) "
        "(CC and) (JJ white))) (, ,)) (VP (VBZ has) (NP (NP (PRP$ her) (JJ right) (NN leg)) (PP (RB straight) "
        "(IN in) (NP (DT the) (NN air))))) (. .)))",
        "Her right leg straight in the air, has a younger gymnast, wearing dark blue and white.",
    ),
    "female": (
        "the female is wearing her hair up",
        "(ROOT (S (NP (DT the) (NN female)) (VP (VBZ is) (VP (VBG wearing) (NP (PRP$ her) (NN hair)) (PRT (RP up))))))",
        "her hair is wearing the female up",
    ),
    "newspaper": (
        "He is reading the newspaper.",
        "(ROOT (S (NP (PRP He)) (VP (VBZ is) (VP (VBG reading) (NP (DT the) (NN newspaper)))) (. .)))",
        "The newspaper is reading him.",
    ),
    "tennis": (
        "Serina Williams plays tennis.",
        "(ROOT (S (NP (NNP Serina) (NNP Williams)) (VP (VBZ plays) (NP (NN tennis))) (. .)))",
        "Tennis plays Serina Williams.",
    ),
    "ocean": (
        "Men drive the bus into the ocean.",
        "(ROOT (S (NP (NNP Men)) (VP (VBP drive) (NP (DT the) (NN bus)) (PP (IN into) (NP (DT the) (NN ocean)))) "
        "(. .)))",
        "The bus drive Men into the ocean.",  # the parser tagged "Men" NNP, so it keeps its capital
    ),
    # No subject or no object of the main verb: skipped.
    "happy": (
        "The woman is very happy.",
        "(ROOT (S (NP (DT The) (NN woman)) (VP (VBZ is) (ADJP (RB very) (JJ happy))) (. .)))",
        None,
    ),
    "poses": (
        "A man poses in front of an ad.",
        "(ROOT (S (NP (DT A) (NN man)) (VP (VBZ poses) (PP (IN in) (NP (NP (NN front)) (PP (IN of) "
        "(NP (DT an) (NN ad)))))) (. .)))",
        None,
    ),
    "statue": (  # expletive subject
        "There is a statue that not many people seem to be interested in.",
        "(ROOT (S (NP (EX There)) (VP (VBZ is) (NP (DT a) (NN statue)) (SBAR (IN that) (S (NP (RB not) (JJ many) "
        "(NNS people)) (VP (VBP seem) (S (VP (TO to) (VP (VB be) (ADJP (JJ interested) (PP (IN in)))))))))) (. .)))",
        None,
    ),
    "stage": (  # a fragment: no S
        "A man playing guitar on stage.",
        "(ROOT (NP (NP (DT A) (NN man) (VBG playing) (NN guitar)) (PP (IN on) (NP (NN stage))) (. .)))",
        None,
    ),
    "singer": (  # copula: a predicate, not an object
        "Bruce Springsteen is a singer.",
        "(ROOT (S (NP (NNP Bruce) (NNP Springsteen)) (VP (VBZ is) (NP (DT a) (NN singer))) (. .)))",
        None,
    ),
}


def _pair(key: str, label: str = "entailment", index: int = 0) -> dict:
    sentence, parse, _ = SNLI_HYPOTHESES[key]
    return {
        "pairID": f"{key}-{index}",
        "sentence1": "A premise sentence about the scene.",
        "sentence2": sentence,
        "sentence2_parse": parse,
        "gold_label": label,
    }


# --- parsing -------------------------------------------------------------------------------------------


def test_parse_tree_reads_words_labels_and_spans():
    sentence, parse, _ = SNLI_HYPOTHESES["vehicle"]
    tree = parse_tree(parse)
    assert tree.label == "ROOT"
    assert tree.words() == ["A", "vehicle", "is", "crossing", "a", "river", "."]
    clause = tree.children[0]
    assert [child.label for child in clause.children] == ["NP", "VP", "."]
    subject = clause.children[0]
    assert (subject.first, subject.last) == (0, 1)
    assert repr(subject) == "(NP (DT A) (NN vehicle))"


@pytest.mark.parametrize(
    "broken",
    [
        "(ROOT (S (NP (DT A) (NN man)) (VP (VBZ sleeps))",  # missing ')'
        "(ROOT (S (NP (DT A) (NN man))) (VP (VBZ sleeps))))",  # extra ')'
        "(ROOT (S (NP (DT A) (NN man)) (VP (VBZ sleeps)))) trailing",
        "( (DT A))",
        "",
    ],
)
def test_unbalanced_parse_is_an_error_naming_the_pair(broken):
    with pytest.raises(ValueError, match="pair 12345#r1e"):
        parse_tree(broken, where="pair 12345#r1e")


def test_build_probes_names_the_pair_with_an_unbalanced_parse():
    pair = _pair("vehicle")
    pair["sentence2_parse"] = pair["sentence2_parse"][:-2]
    with pytest.raises(ValueError, match=r"unbalanced parse.*pair vehicle-0"):
        build_probes([pair], seed=0)


# --- shuffles ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 50])
def test_shuffle_keeps_words_and_moves_them_only_inside_windows(n):
    words = "a man in a red shirt is playing the big brown guitar on the stage tonight".split()
    rng = random.Random(n)
    for _ in range(20):
        shuffled = shuffle_within_windows(words, n, rng)
        assert Counter(shuffled) == Counter(words)
        for start in range(0, len(words), n):
            assert Counter(shuffled[start : start + n]) == Counter(words[start : start + n])
    if n == 1:
        assert shuffle_within_windows(words, 1, rng) == words
    with pytest.raises(ValueError):
        shuffle_within_windows(words, 0, rng)


def test_split_words_holds_final_punctuation_apart():
    assert split_words("The church has cracks in the ceiling.") == (
        ["The", "church", "has", "cracks", "in", "the", "ceiling"],
        ".",
    )
    assert split_words("Is he here ?") == (["Is", "he", "here"], " ?")
    assert split_words("A dog runs") == (["A", "dog", "runs"], "")


def test_shuffle_probes_keep_label_words_and_final_punctuation():
    pairs = [
        _pair(key, label)
        for key, label in [
            ("vehicle", "entailment"),
            ("gymnast", "neutral"),
            ("female", "contradiction"),
            ("statue", "neutral"),
        ]
    ]
    probes = build_probes(pairs, seed=3)
    for n in (3, 4, 5, 6):
        records = probes[f"shuffle-{n}"]
        assert [record["pairID"] for record in records] == [pair["pairID"] for pair in pairs]
        for record, pair in zip(records, pairs):
            assert record["gold_label"] == pair["gold_label"]
            original_words, original_final = split_words(pair["sentence2"])
            words, final = split_words(record["sentence2"])
            assert final == original_final
            assert record["sentence2"] != pair["sentence2"]  # an identity draw is redrawn
            for start in range(0, len(words), n):
                assert Counter(words[start : start + n]) == Counter(original_words[start : start + n])
    for record, pair in zip(probes["random"], pairs):
        assert Counter(split_words(record["sentence2"])[0]) == Counter(split_words(pair["sentence2"])[0])
        assert record["sentence2"] != pair["sentence2"]


def test_hypothesis_that_cannot_be_reordered_is_left_out_of_shuffles():
    single = dict(
        _pair("vehicle"), pairID="single", sentence2="Dancing.", sentence2_parse="(ROOT (S (VP (VBG Dancing)) (. .)))"
    )
    probes = build_probes([single, _pair("lady")], seed=0)
    for name in PROBE_NAMES[:-1]:
        assert [record["pairID"] for record in probes[name]] == ["lady-0"]


# --- role swap -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(SNLI_HYPOTHESES))
def test_role_swap_on_real_snli_parses(key):
    sentence, parse, expected = SNLI_HYPOTHESES[key]
    assert role_swap(parse, sentence) == expected


# The subject and object each swappable hypothesis above should give, as they appear in the sentence.
ROLES = {
    "vehicle": ("A vehicle", "a river"),
    "lady": ("The lady", "a garden"),
    "gymnast": ("A younger gymnast, wearing dark blue and white", "her right leg straight in the air"),
    "female": ("the female", "her hair"),
    "tennis": ("Serina Williams", "tennis"),
    "ocean": ("Men", "the bus"),
}


@pytest.mark.parametrize("key", sorted(ROLES))
def test_role_swap_exchanges_exactly_the_two_phrases(key):
    sentence, parse, _ = SNLI_HYPOTHESES[key]
    subject, object_ = ROLES[key]
    roles = find_roles(parse_tree(parse))
    words = parse_tree(parse).words()
    (s_first, s_last), (o_first, o_last) = roles.subject_span, roles.object_span
    assert "".join(words[s_first : s_last + 1]) == subject.replace(" ", "")
    assert "".join(words[o_first : o_last + 1]) == object_.replace(" ", "")

    s_at = sentence.index(subject)
    o_at = sentence.index(object_, s_at + len(subject))
    exchanged = (
        sentence[:s_at] + object_ + sentence[s_at + len(subject) : o_at] + subject + sentence[o_at + len(object_) :]
    )
    swapped = role_swap(parse, sentence)
    assert swapped.lower() == exchanged.lower()
    # Letter case changes only at the new first word and at the old first word, now moved.
    moved_at = s_at + len(object_) + (o_at - s_at - len(subject))
    assert {i for i, (a, b) in enumerate(zip(swapped, exchanged)) if a != b} <= {0, moved_at}


def test_role_swap_without_raw_sentence_uses_parse_words():
    _, parse, _ = SNLI_HYPOTHESES["gymnast"]
    assert role_swap(parse) == (
        "Her right leg straight in the air, has a younger gymnast, wearing dark blue and white."
    )


def test_role_swap_gives_pronouns_the_case_of_their_new_role():
    parse = "(ROOT (S (NP (DT The) (NN dog)) (VP (VBZ sees) (NP (PRP me))) (. .)))"
    assert role_swap(parse, "The dog sees me.") == "I sees the dog."
    parse = "(ROOT (S (NP (PRP I)) (VP (VBP see) (NP (PRP her))) (. .)))"
    assert role_swap(parse, "I see her.") == "She see me."


def test_role_swap_that_changes_nothing_is_dropped():
    parse = "(ROOT (S (NP (DT A) (NN man)) (VP (VBZ sees) (NP (DT a) (NN man))) (. .)))"
    assert role_swap(parse, "A man sees a man.") is None


def test_reciprocal_object_is_skipped():
    parse = "(ROOT (S (NP (CD Two) (NNS dogs)) (VP (VBP chase) (NP (DT each) (JJ other))) (. .)))"
    assert find_roles(parse_tree(parse)) is None


def test_role_swap_probe_uses_only_entailment_pairs_with_a_swap():
    pairs = [_pair(key, "entailment", i) for i, key in enumerate(SNLI_HYPOTHESES)]
    pairs.append(_pair("vehicle", "neutral", 99))  # swappable, but not an entailment pair
    records = build_probes(pairs, seed=0)["role-swap"]
    swappable = [key for key, (_, _, swap) in SNLI_HYPOTHESES.items() if swap is not None]
    assert [record["pairID"] for record in records] == [
        f"{key}-{i}" for i, key in enumerate(SNLI_HYPOTHESES) if key in swappable
    ]
    for record in records:
        key = record["pairID"].rsplit("-", 1)[0]
        assert record["sentence2"] == SNLI_HYPOTHESES[key][2]
        assert record["gold_label"] == probing.NOT_ENTAILMENT
        assert record["original_label"] == "entailment"
    vehicle = records[0]
    assert (vehicle["subject"], vehicle["object"]) == ("A vehicle", "a river")


# --- reproducibility and files -------------------------------------------------------------------------


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    pairs = [
        _pair(key, label, i)
        for i, (key, label) in enumerate([(k, lab) for k in SNLI_HYPOTHESES for lab in ("entailment", "neutral")])
    ]
    first = save_probes(build_probes(pairs, seed=7), tmp_path / "a")
    second = save_probes(build_probes(pairs, seed=7), tmp_path / "b")
    other = save_probes(build_probes(pairs, seed=8), tmp_path / "c")
    assert sorted(first) == sorted(PROBE_NAMES)
    for name in PROBE_NAMES:
        assert first[name].read_bytes() == second[name].read_bytes()
    assert first["shuffle-3"].read_bytes() != other["shuffle-3"].read_bytes()
    loaded = probing.load_probes(tmp_path / "a")
    assert loaded == build_probes(pairs, seed=7)


# --- data files (hf_posenc.data.load_snli) ---------------------------------------------------------------


def test_malformed_snli_file_names_file_and_line(tmp_path):
    from hf_posenc.data import load_snli

    good = {
        "gold_label": "entailment",
        "sentence1": "A man sleeps.",
        "sentence2": "A man rests.",
        "sentence1_parse": "(ROOT (S (NP (DT A) (NN man)) (VP (VBZ sleeps)) (. .)))",
        "sentence2_parse": "(ROOT (S (NP (DT A) (NN man)) (VP (VBZ rests)) (. .)))",
        "pairID": "1",
    }
    path = tmp_path / "snli_1.0_test.jsonl"
    path.write_text(json.dumps(good) + "\n" + '{"gold_label": "entailment", "sentence1": \n')
    with pytest.raises(ValueError) as error:
        load_snli("test", path=path)
    assert str(path) in str(error.value) or path.name in str(error.value)
    assert "line 2" in str(error.value)
    with pytest.raises(FileNotFoundError):
        load_snli("test", path=tmp_path / "missing.jsonl")


# --- scoring -------------------------------------------------------------------------------------------


def test_score_probes_compares_each_probe_with_the_same_pairs():
    pairs = [
        dict(_pair("vehicle", "entailment", 0)),
        dict(_pair("lady", "entailment", 1)),
        dict(_pair("happy", "neutral", 2)),
        dict(_pair("poses", "contradiction", 3)),
    ]
    probes = build_probes(pairs, seed=0)
    assert [r["pairID"] for r in probes["role-swap"]] == ["vehicle-0", "lady-1"]
    # Original: 3 of 4 right (the contradiction pair is missed).
    original = [0, 0, 1, 1]
    predictions = {name: [0, 0, 1, 1] for name in PROBE_NAMES[:-1]}
    predictions["shuffle-3"] = [0, 2, 1, 1]  # one more mistake: 2/4 vs 3/4
    predictions["role-swap"] = [0, 1]  # one still "entailment", one "neutral"
    scored = probing.score_probes(pairs, original, probes, predictions)
    fractions, deltas, details = scored["probes"], scored["deltas"], scored["details"]
    assert fractions["original"] == pytest.approx(0.75)
    assert fractions["shuffle-3"] == pytest.approx(0.5) and deltas["shuffle-3"] == pytest.approx(-25.0)
    assert fractions["shuffle-4"] == pytest.approx(0.75) and deltas["shuffle-4"] == pytest.approx(0.0)
    # One swapped pair is still called "entailment", the other "neutral" (right: not entailed).
    assert fractions["role-swap"] == pytest.approx(0.5)
    assert fractions["still_entailment"] == pytest.approx(0.5)
    assert deltas["role-swap"] == pytest.approx(50.0 - 75.0)
    # Before the swap both entailment pairs were answered "entailment"; 2 of 2 entailment pairs gave a swap.
    assert details["role-swap"]["accuracy_before"] == pytest.approx(1.0)
    assert details["role-swap"]["coverage"] == pytest.approx(1.0)
    table = probing.format_table({"tiny": {**scored, "locality": 0.5, "symmetry": 0.25}})
    header, rule, row = table.splitlines()
    assert header.split() == [
        "Model",
        "Original",
        "Shuffle-3",
        "Shuffle-4",
        "Shuffle-5",
        "Shuffle-6",
        "Random",
        "Role-swap",
        "Still-ent.",
        "Locality",
        "Symmetry",
    ]
    assert row.split() == ["tiny", "75.0", "-25.0", "+0.0", "+0.0", "+0.0", "+0.0", "-25.0", "50.0", "0.500", "0.250"]


def test_accuracy_goes_through_evaluate():
    import evaluate

    metric = probing.probe_accuracy_metric()
    assert isinstance(metric, evaluate.Metric)
    metric.add_batch(predictions=[0, 1, 2], references=[0, 1, 1])
    assert metric.compute()["accuracy"] == pytest.approx(2 / 3)


# --- models --------------------------------------------------------------------------------------------


def _train_tokenizer(sentences, folder: Path):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.train_from_iterator(sentences, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    backend.decoder = decoders.WordPiece()
    tokenizer = BertTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    tokenizer.save_pretrained(folder)
    return tokenizer


TINY_SIZES = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=64
)


@pytest.fixture(scope="module")
def snli_files(tmp_path_factory):
    """A few hundred real SNLI pairs, written as the user's own SNLI files (--train_file/--test_file)."""
    from hf_posenc.data import load_snli

    folder = tmp_path_factory.mktemp("snli")
    train = load_snli("train")[:300]
    test = load_snli("test")[:120]
    for name, pairs in (("train", train), ("test", test)):
        with (folder / f"snli_1.0_{name}.jsonl").open("w") as handle:
            for pair in pairs:
                handle.write(json.dumps(pair) + "\n")
    sentences = [p[key] for p in train + test for key in ("sentence1", "sentence2")]
    return folder, sentences


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, snli_files):
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = _train_tokenizer(snli_files[1], folder)
    config = BertConfig(vocab_size=len(tokenizer), num_labels=3, **TINY_SIZES)
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def _probe_args(model: Path, output_dir: Path, snli_folder: Path, **overrides) -> argparse.Namespace:
    parser = probing.add_probe_arguments(argparse.ArgumentParser())
    argv = [
        str(model),
        "--output_dir",
        str(output_dir),
        "--train_file",
        str(snli_folder / "snli_1.0_train.jsonl"),
        "--test_file",
        str(snli_folder / "snli_1.0_test.jsonl"),
        "--max_train_samples",
        "200",
        "--max_steps",
        "4",
        "--per_device_train_batch_size",
        "16",
        "--max_seq_length",
        "48",
        "--metric_sentences",
        "16",
        "--learning_rate",
        "1e-3",
    ]
    for key, value in overrides.items():
        argv += [f"--{key}", str(value)]
    return parser.parse_args(argv)


def _check_run(results: dict, output_dir: Path, capsys) -> None:
    printed = capsys.readouterr().out
    for column in ("Original", "Shuffle-3", "Shuffle-6", "Random", "Role-swap", "Still-ent.", "Locality"):
        assert column in printed
    written = json.loads((output_dir / "probe_results.json").read_text())
    assert set(written["probes"]) == {"original", *PROBE_NAMES, "still_entailment"}
    assert set(written["deltas"]) == set(PROBE_NAMES)
    for name, value in written["probes"].items():
        assert 0 <= value <= 1
    for name in PROBE_NAMES:
        assert written["deltas"][name] == pytest.approx(100 * (written["probes"][name] - written["probes"]["original"]))
    assert 0 <= written["locality"] <= 1 and 0 <= written["symmetry"] <= 1
    # The "probes" block is what a model card takes.
    from hf_posenc.hub import normalize_results

    assert normalize_results({"probes": written["probes"]})["probes"] == written["probes"]
    assert written["details"]["role-swap"]["pairs"] > 0
    assert written["test_pairs"] == 120 and written["train_pairs"] == 200
    assert (output_dir / "probe_table.txt").read_text().startswith("Model")
    assert sorted(path.stem for path in (output_dir / "probes").glob("*.jsonl")) == sorted(PROBE_NAMES)
    assert results["probes"]["original"] == pytest.approx(written["probes"]["original"])


def test_end_to_end_probe_of_a_tiny_bert(tiny_bert, snli_files, tmp_path, capsys):
    parser = probing.add_probe_arguments(argparse.ArgumentParser())
    args = _probe_args(tiny_bert, tmp_path / "out", snli_files[0])
    args.save_model = True
    results = probing.run_probe(args)
    _check_run(results, tmp_path / "out", capsys)
    # The saved classifier, probed again without training, gives the same predictions and numbers.
    again = probing.run_probe(
        parser.parse_args(
            [
                str(tmp_path / "out" / "model"),
                "--skip_training",
                "--output_dir",
                str(tmp_path / "again"),
                "--test_file",
                str(snli_files[0] / "snli_1.0_test.jsonl"),
                "--metric_sentences",
                "0",
            ]
        )
    )
    assert again["probes"] == pytest.approx(results["probes"])
    assert again["locality"] is None and again["train_pairs"] == 0


def test_end_to_end_probe_of_a_tiny_posenc_variant(snli_files, tmp_path, capsys):
    from transformers import AutoModelForMaskedLM

    import hf_posenc

    folder = tmp_path / "tiny-rope"
    tokenizer = _train_tokenizer(snli_files[1], folder)
    config = hf_posenc.create_config("rope", vocab_size=len(tokenizer), **TINY_SIZES)
    AutoModelForMaskedLM.from_config(config).save_pretrained(folder)
    results = probing.run_probe(_probe_args(folder, tmp_path / "out", snli_files[0]))
    _check_run(results, tmp_path / "out", capsys)
    assert results["model_type"] == "posenc_rope"


def test_folder_that_is_not_a_classifier_is_an_error(tmp_path):
    from transformers import ViTConfig

    folder = tmp_path / "vision-model"
    ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(folder)
    with pytest.raises(ValueError, match="vision-model.*not a sequence classifier"):
        probing.load_sequence_classifier(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty.*config.json"):
        probing.load_sequence_classifier(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        probing.load_sequence_classifier(tmp_path / "nowhere")
