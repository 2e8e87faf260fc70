"""Building, saving and loading the probe sets (hf_posenc.tasks.probes)."""

from collections import Counter

import pytest
from snli_samples import SNLI_HYPOTHESES, snli_pair

from hf_posenc.tasks.probes import NOT_ENTAILMENT, PROBE_NAMES, build_probes, load_probes, save_probes
from hf_posenc.tasks.shuffle import split_words


def test_build_probes_names_the_pair_with_an_unbalanced_parse():
    pair = snli_pair("vehicle")
    pair["sentence2_parse"] = pair["sentence2_parse"][:-2]
    with pytest.raises(ValueError, match=r"unbalanced parse.*pair vehicle-0"):
        build_probes([pair], seed=0)


def test_shuffle_probes_keep_label_words_and_final_punctuation():
    pairs = [
        snli_pair(key, label)
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
        snli_pair("vehicle"),
        pairID="single",
        sentence2="Dancing.",
        sentence2_parse="(ROOT (S (VP (VBG Dancing)) (. .)))",
    )
    probes = build_probes([single, snli_pair("lady")], seed=0)
    for name in PROBE_NAMES[:-1]:
        assert [record["pairID"] for record in probes[name]] == ["lady-0"]


def test_role_swap_probe_uses_only_entailment_pairs_with_a_swap():
    pairs = [snli_pair(key, "entailment", i) for i, key in enumerate(SNLI_HYPOTHESES)]
    pairs.append(snli_pair("vehicle", "neutral", 99))  # swappable, but not an entailment pair
    records = build_probes(pairs, seed=0)["role-swap"]
    swappable = [key for key, (_, _, swap) in SNLI_HYPOTHESES.items() if swap is not None]
    assert [record["pairID"] for record in records] == [
        f"{key}-{i}" for i, key in enumerate(SNLI_HYPOTHESES) if key in swappable
    ]
    for record in records:
        key = record["pairID"].rsplit("-", 1)[0]
        assert record["sentence2"] == SNLI_HYPOTHESES[key][2]
        assert record["gold_label"] == NOT_ENTAILMENT
        assert record["original_label"] == "entailment"
    vehicle = records[0]
    assert (vehicle["subject"], vehicle["object"]) == ("A vehicle", "a river")


# --- reproducibility and files -------------------------------------------------------------------------


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    pairs = [
        snli_pair(key, label, i)
        for i, (key, label) in enumerate([(k, lab) for k in SNLI_HYPOTHESES for lab in ("entailment", "neutral")])
    ]
    first = save_probes(build_probes(pairs, seed=7), tmp_path / "a")
    second = save_probes(build_probes(pairs, seed=7), tmp_path / "b")
    other = save_probes(build_probes(pairs, seed=8), tmp_path / "c")
    assert sorted(first) == sorted(PROBE_NAMES)
    for name in PROBE_NAMES:
        assert first[name].read_bytes() == second[name].read_bytes()
    assert first["shuffle-3"].read_bytes() != other["shuffle-3"].read_bytes()
    loaded = load_probes(tmp_path / "a")
    assert loaded == build_probes(pairs, seed=7)
