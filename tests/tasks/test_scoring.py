"""Accuracy through evaluate, probe scores and the table (hf_posenc.tasks.scoring)."""

import pytest
from snli_samples import snli_pair

from hf_posenc.tasks.probes import PROBE_NAMES, build_probes
from hf_posenc.tasks.scoring import format_table, probe_accuracy_metric, score_probes


def test_score_probes_compares_each_probe_with_the_same_pairs():
    pairs = [
        dict(snli_pair("vehicle", "entailment", 0)),
        dict(snli_pair("lady", "entailment", 1)),
        dict(snli_pair("happy", "neutral", 2)),
        dict(snli_pair("poses", "contradiction", 3)),
    ]
    probes = build_probes(pairs, seed=0)
    assert [r["pairID"] for r in probes["role-swap"]] == ["vehicle-0", "lady-1"]
    # Original: 3 of 4 right (the contradiction pair is missed).
    original = [0, 0, 1, 1]
    predictions = {name: [0, 0, 1, 1] for name in PROBE_NAMES[:-1]}
    predictions["shuffle-3"] = [0, 2, 1, 1]  # one more mistake: 2/4 vs 3/4
    predictions["role-swap"] = [0, 1]  # one still "entailment", one "neutral"
    scored = score_probes(pairs, original, probes, predictions)
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
    table = format_table({"tiny": {**scored, "locality": 0.5, "symmetry": 0.25}})
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

    metric = probe_accuracy_metric()
    assert isinstance(metric, evaluate.Metric)
    metric.add_batch(predictions=[0, 1, 2], references=[0, 1, 1])
    assert metric.compute()["accuracy"] == pytest.approx(2 / 3)
