"""The probe run end to end (hf_posenc.tasks.word_order and `hf-posenc probe`): a tiny BERT and a tiny hf_posenc
variant fine-tuned for a few steps on real SNLI pairs, then scored on the test pairs and every probe."""

import json

import pytest
from conftest import TINY, tiny_config

from hf_posenc.cli import main
from hf_posenc.hub import normalize_results
from hf_posenc.results import ProbeResult
from hf_posenc.tasks.probes import PROBE_NAMES
from hf_posenc.tasks.word_order import ProbeArguments, run_probe
from hf_posenc.training.finetune import FinetuneArguments

TRAIN_PAIRS, TEST_PAIRS = 64, 120
TRAINING = dict(max_steps=4, per_device_train_batch_size=16, max_seq_length=48, learning_rate=1e-3)


@pytest.fixture(scope="module")
def snli_files(tmp_path_factory):
    """Real SNLI pairs, written as the user's own SNLI files (--train_file/--test_file)."""
    from hf_posenc.data import load_snli

    folder = tmp_path_factory.mktemp("snli")
    for split, size in (("train", 300), ("test", TEST_PAIRS)):
        with (folder / f"snli_1.0_{split}.jsonl").open("w") as handle:
            for pair in load_snli(split)[:size]:
                handle.write(json.dumps(pair) + "\n")
    return folder


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, tiny_tokenizer):
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-bert")
    sizes = {key: TINY[key] for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")}
    config = BertConfig(vocab_size=len(tiny_tokenizer), max_position_embeddings=64, num_labels=3, **sizes)
    BertForSequenceClassification(config).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


def _check_results(result: ProbeResult, output_dir) -> None:
    written = ProbeResult.load(output_dir)
    assert written == result
    assert set(written.probes) == {"original", *PROBE_NAMES, "still_entailment"}
    assert set(written.deltas) == set(PROBE_NAMES)
    assert all(0 <= value <= 1 for value in written.probes.values())
    for name in PROBE_NAMES:
        assert written.deltas[name] == pytest.approx(100 * (written.probes[name] - written.probes["original"]))
    assert 0 <= written.locality <= 1 and 0 <= written.symmetry <= 1
    # The "probes" block is what a model card takes.
    assert normalize_results({"probes": written.probes})["probes"] == written.probes
    assert written.details["role-swap"]["pairs"] > 0
    assert (written.test_pairs, written.train_pairs) == (TEST_PAIRS, TRAIN_PAIRS)
    assert 0 < written.chance < 1 and written.verdict in ("above chance", "not above chance")
    assert written.deltas_meaningful == (written.verdict == "above chance")
    assert (output_dir / "probe_table.txt").read_text().startswith("Model")
    assert sorted(path.stem for path in (output_dir / "probes").glob("*.jsonl")) == sorted(PROBE_NAMES)


def test_end_to_end_probe_of_a_tiny_bert(tiny_bert, snli_files, tmp_path):
    arguments = ProbeArguments(
        model=tiny_bert,
        output_dir=tmp_path / "out",
        train_file=snli_files,
        test_file=snli_files,
        max_train_samples=TRAIN_PAIRS,
        metric_sentences=16,
        save_model=True,
        training=FinetuneArguments(**TRAINING),
    )
    result = run_probe(arguments)
    _check_results(result, tmp_path / "out")
    assert result.model == tiny_bert.name and result.model_type == "bert"
    # The saved classifier, probed again without training, gives the same predictions and numbers.
    again = run_probe(
        model=tmp_path / "out" / "model",
        skip_training=True,
        output_dir=tmp_path / "again",
        test_file=snli_files,
        metric_sentences=0,
        training={"max_seq_length": 48},
    )
    assert again.probes == pytest.approx(result.probes)
    assert again.locality is None and again.train_pairs == 0


def test_probe_command_on_a_tiny_posenc_variant(tiny_tokenizer, snli_files, tmp_path, capsys):
    """`hf-posenc probe` in-process; the variant loads through hf_posenc's registered classes, no remote code."""
    from transformers import AutoModelForMaskedLM

    folder = tmp_path / "tiny-rope"
    config = tiny_config("rope", vocab_size=len(tiny_tokenizer))
    AutoModelForMaskedLM.from_config(config).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    assert "auto_map" in json.loads((folder / "config.json").read_text())  # a Hub folder, loaded without its code
    argv = ["probe", str(folder), "--output_dir", str(tmp_path / "out"), "--train_file", str(snli_files)]
    argv += ["--test_file", str(snli_files), "--max_train_samples", str(TRAIN_PAIRS), "--metric_sentences", "16"]
    for key, value in TRAINING.items():
        argv += [f"--{key}", str(value)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    [header] = [line for line in printed.splitlines() if line.startswith("Model ")]
    for column in ("Original", "Shuffle-3", "Shuffle-6", "Random", "Role-swap", "Still-ent.", "Locality"):
        assert column in header
    assert "test entailment pairs gave a swap" in printed
    assert f"Results written to {tmp_path / 'out' / 'probe_results.json'}" in printed
    result = ProbeResult.load(tmp_path / "out")
    _check_results(result, tmp_path / "out")
    assert result.model_type == "posenc_rope" and result.model == "tiny-rope"


def test_a_model_that_cannot_learn_is_not_above_chance(tiny_bert, snli_files, tmp_path, capsys):
    """One step at a learning rate of 1e-9: the classifier keeps its random head. Its accuracy does not beat the
    majority label's share of the test pairs by twice the binomial noise, so its deltas are not deltas: the table
    says so, the JSON keeps the raw numbers but marks them, and the card shows chance and no delta."""
    from collections import Counter

    from hf_posenc.hub.card import _probe_rows

    argv = ["probe", str(tiny_bert), "--output_dir", str(tmp_path / "out"), "--train_file", str(snli_files)]
    argv += ["--test_file", str(snli_files), "--max_train_samples", "16", "--metric_sentences", "0"]
    argv += ["--max_steps", "1", "--learning_rate", "1e-9", "--per_device_train_batch_size", "16"]
    argv += ["--max_seq_length", "48"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    result = ProbeResult.load(tmp_path / "out")
    labels = [json.loads(line)["gold_label"] for line in (snli_files / "snli_1.0_test.jsonl").read_text().splitlines()]
    counts = Counter(label for label in labels if label in ("entailment", "neutral", "contradiction"))
    assert result.test_pairs == sum(counts.values())
    assert result.chance == pytest.approx(max(counts.values()) / sum(counts.values()))
    assert result.verdict == "not above chance" and result.deltas_meaningful is False
    assert result.details["chance"]["noise_from"] == "binomial"
    assert all(isinstance(value, float) for value in result.deltas.values())  # the raw numbers stay in the JSON
    [row] = [line for line in printed.splitlines() if line.startswith(tiny_bert.name)]
    assert row.count("n/a (model at chance)") == len(PROBE_NAMES)
    assert "WARNING: the model stayed at chance" in printed and f"{100 * result.chance:.1f}%" in printed
    assert "n/a (model at chance)" in (tmp_path / "out" / "probe_table.txt").read_text()
    card = normalize_results(result.card_results())
    assert card["probe_chance"] == result.chance and card["probe_verdict"] == "not above chance"
    assert {row["delta"] for row in _probe_rows(card["probes"], card["probe_verdict"])} == {"", "n/a (model at chance)"}
