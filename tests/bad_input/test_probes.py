"""Bad input to the word-order probes (`hf-posenc probe`, hf_posenc.tasks, hf_posenc.training.finetune): each case
gives one clear error that says what to change, before any training, and runs no code the user did not trust."""

import json
import sys

import pytest
from conftest import tiny_config
from snli_samples import snli_pair

from hf_posenc.cli import main
from hf_posenc.results import ProbeResult
from hf_posenc.tasks.probes import build_probes
from hf_posenc.tasks.scoring import score_probes
from hf_posenc.tasks.word_order import ProbeArguments
from hf_posenc.training.finetune import FinetuneArguments, load_sequence_classifier, load_tokenizer


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tiny_tokenizer):
    from transformers import AutoModelForMaskedLM

    folder = tmp_path_factory.mktemp("tiny-alibi")
    AutoModelForMaskedLM.from_config(tiny_config("alibi", vocab_size=len(tiny_tokenizer))).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def test_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("snli")
    pairs = [snli_pair(key, label, index) for index, (key, label) in enumerate([("vehicle", "entailment")] * 3)]
    path = folder / "snli_1.0_test.jsonl"
    path.write_text("".join(json.dumps(pair) + "\n" for pair in pairs), encoding="utf-8")
    return path


def _probe(capsys, *argv) -> str:
    """Run `hf-posenc probe` in-process; assert it failed as a user error (status 2) and return its one line."""
    assert main(["probe", *map(str, argv)]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]  # after any progress bar of transformers
    assert message.startswith("hf-posenc probe: error: ")
    return message


@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("--max_train_samples", 0, "--max_train_samples must be at least 1 (got 0); leave it out"),
        ("--max_train_samples", -5, "--max_train_samples must be at least 1 (got -5)"),
        ("--max_eval_samples", 0, "--max_eval_samples must be at least 1 (got 0); leave it out"),
        ("--metric_sentences", -1, "--metric_sentences must be 0 (skip locality and symmetry) or more (got -1)"),
        ("--max_seq_length", 0, "max_seq_length must leave room for [CLS] and [SEP]"),
        ("--learning_rate", 0, "learning_rate must be a finite number above 0"),
        ("--learning_rate", "inf", "learning_rate must be a finite number above 0 (got inf)"),
        ("--max_steps", 0, "max_steps must be a positive number of steps, or -1"),
        ("--num_train_epochs", 0, "num_train_epochs must be above 0"),
        ("--per_device_train_batch_size", 0, "per_device_train_batch_size must be at least 1"),
        ("--warmup_ratio", 1.5, "warmup_ratio is a share of the training steps, in [0, 1)"),
        ("--weight_decay", -0.1, "weight_decay must be 0 or above"),
    ],
)
def test_counts_and_settings_out_of_range_are_refused(tmp_path, capsys, option, value, expected):
    message = _probe(capsys, tmp_path / "no-model", option, value, "--output_dir", tmp_path / "out")
    assert expected in message
    assert not (tmp_path / "out").exists()


def test_settings_are_checked_in_the_library_too():
    with pytest.raises(ValueError, match="--max_eval_samples must be at least 1"):
        ProbeArguments(model="m", max_eval_samples=-1)
    with pytest.raises(
        ValueError, match="learning_rate must be a finite number above 0.*max_seq_length must leave room"
    ):
        FinetuneArguments(learning_rate=-1, max_seq_length=1)  # every problem at once


def test_save_model_with_skip_training_is_a_contradiction(tmp_path, capsys):
    message = _probe(capsys, tmp_path, "--skip_training", "--save_model")
    assert "--skip_training fine-tunes nothing; drop one" in message


def test_model_folder_that_is_missing_or_has_no_config(tmp_path, capsys):
    assert "is not a folder" in _probe(capsys, tmp_path / "nowhere", "--output_dir", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    message = _probe(capsys, tmp_path / "empty", "--output_dir", tmp_path / "out")
    assert "it has no config.json" in message and "save_pretrained" in message


def test_test_file_without_the_expected_fields(tiny_model, tmp_path, capsys):
    record = {"sentence1": "A man sleeps.", "sentence2": "A man rests.", "gold_label": "entailment"}
    bad = tmp_path / "snli_1.0_test.jsonl"
    bad.write_text(json.dumps(record) + "\n", encoding="utf-8")
    message = _probe(capsys, tiny_model, "--test_file", bad, "--output_dir", tmp_path / "out")
    assert "line 1" in message and "sentence2_parse" in message


def test_pairs_the_probes_cannot_score_are_named():
    with pytest.raises(ValueError, match="pair vehicle-0 lacks the text field.*sentence2_parse"):
        build_probes([{key: value for key, value in snli_pair("vehicle").items() if key != "sentence2_parse"}])
    with pytest.raises(ValueError, match="pair vehicle-0 has gold_label '-'.*drop unlabelled pairs"):
        build_probes([dict(snli_pair("vehicle"), gold_label="-")])
    with pytest.raises(ValueError, match="pair vehicle-0 appears twice"):
        build_probes([snli_pair("vehicle"), snli_pair("vehicle")])
    with pytest.raises(ValueError, match="pair 1 is a str"):
        build_probes([snli_pair("vehicle"), "A man sleeps."])


def test_pairs_without_pair_ids_are_scored_by_position():
    pairs = [{key: value for key, value in snli_pair(key).items() if key != "pairID"} for key in ("vehicle", "lady")]
    probes = build_probes(pairs)
    assert [record["pairID"] for record in probes["role-swap"]] == ["0", "1"]
    predictions = {name: [0] * len(records) for name, records in probes.items()}
    scored = score_probes(pairs, [0, 0], probes, predictions)
    assert scored["details"]["role-swap"]["accuracy_before"] == 1.0


def test_probes_of_other_test_pairs_are_refused():
    probes = build_probes([snli_pair("vehicle")])
    with pytest.raises(ValueError, match="probe shuffle-3 holds pair.*vehicle-0.*not among the test pairs"):
        score_probes([snli_pair("lady")], [0], probes, {name: [0] * len(r) for name, r in probes.items()})


def test_output_folder_with_another_models_results(tiny_model, test_file, tmp_path, capsys):
    output = tmp_path / "out"
    ProbeResult(probes={}, deltas={}, model="bert-base", model_type="bert", train_pairs=1, test_pairs=1, seed=0).save(
        output
    )
    message = _probe(capsys, tiny_model, "--output_dir", output, "--test_file", test_file)
    assert "holds the probe results of 'bert-base'" in message and "--overwrite_output_dir" in message
    # Allowed with --overwrite_output_dir: the run goes on to the next check (here: a tokenizer folder that is missing).
    message = _probe(
        capsys, tiny_model, "--output_dir", output, "--test_file", test_file, "--overwrite_output_dir",
        "--tokenizer", tmp_path / "no-tokenizer",
    )  # fmt: skip
    assert "tokenizer folder" in message and "does not exist" in message
    assert ProbeResult.load(output).model == "bert-base"  # nothing replaced by a failed run


def test_output_folder_with_results_of_other_weights_under_the_same_name(tiny_model, test_file, tmp_path, capsys):
    """A retrained model keeps its folder name: results are matched by the weights' SHA-256, not by the name."""
    from hf_posenc.results import weights_fingerprint

    output = tmp_path / "out"
    fields = dict(probes={}, deltas={}, model=tiny_model.name, model_type="posenc_alibi", train_pairs=1, test_pairs=1)
    for weights, what in (("sha256:earlier", "other weights"), (None, "weights not recorded")):
        ProbeResult(**fields, seed=0, weights=weights).save(output)
        message = _probe(capsys, tiny_model, "--output_dir", output, "--test_file", test_file)
        assert f"a model named '{tiny_model.name}' with {what}" in message and "--overwrite_output_dir" in message
    # The same weights: the run goes on to the next check (here: a tokenizer folder that is missing).
    ProbeResult(**fields, seed=0, weights=weights_fingerprint(tiny_model)).save(output)
    message = _probe(
        capsys, tiny_model, "--output_dir", output, "--test_file", test_file, "--tokenizer", tmp_path / "x"
    )
    assert "tokenizer folder" in message


def test_output_folder_with_unreadable_results_or_a_file_in_its_place(tiny_model, test_file, tmp_path, capsys):
    output = tmp_path / "out"
    output.mkdir()
    (output / "probe_results.json").write_text('{"probes": ', encoding="utf-8")
    message = _probe(capsys, tiny_model, "--output_dir", output, "--test_file", test_file)
    assert "probe_results.json is not valid JSON" in message and "--overwrite_output_dir" in message
    (output / "probe_results.json").write_text('{"probes": {}, "accuracy": 1}', encoding="utf-8")
    assert "unknown key(s) accuracy" in _probe(capsys, tiny_model, "--output_dir", output, "--test_file", test_file)
    (tmp_path / "a-file").write_text("")
    message = _probe(capsys, tiny_model, "--output_dir", tmp_path / "a-file", "--test_file", test_file)
    assert "a-file is a file; give a folder" in message


def test_save_model_into_a_folder_holding_a_model(tiny_model, test_file, tmp_path, capsys):
    (tmp_path / "out" / "model").mkdir(parents=True)
    (tmp_path / "out" / "model" / "config.json").write_text("{}")
    message = _probe(capsys, tiny_model, "--output_dir", tmp_path / "out", "--save_model", "--test_file", test_file)
    assert "already holds a fine-tuned model" in message


def test_tokenizer_folder_without_a_tokenizer(tmp_path):
    (tmp_path / "weights-only").mkdir()
    with pytest.raises(ValueError, match="no usable tokenizer in .*weights-only.*pass --tokenizer"):
        load_tokenizer(tmp_path / "weights-only")


def _folder_with_its_own_code(folder, marker):
    """A model folder whose config.json points at a .py of its own; importing that file writes `marker`."""
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps({"model_type": "not_a_known_type", "auto_map": {"AutoConfig": "custom.CustomConfig"}})
    )
    (folder / "custom.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n\n"
        "from transformers import PretrainedConfig\n\n\n"
        "class CustomConfig(PretrainedConfig):\n    model_type = 'not_a_known_type'\n"
    )
    return folder


def test_code_in_a_model_folder_runs_only_with_trust_remote_code(tmp_path, capsys, monkeypatch):
    marker = tmp_path / "code-ran"
    folder = _folder_with_its_own_code(tmp_path / "custom-model", marker)
    message = _probe(capsys, folder, "--output_dir", tmp_path / "out")
    assert "custom-model loads through its own code (custom.py" in message
    assert "pass --trust_remote_code (trust_remote_code=True) only if you trust it" in message
    with pytest.raises(ValueError, match="only if you trust it"):
        load_sequence_classifier(folder)
    with pytest.raises(ValueError, match="only if you trust it"):
        load_tokenizer(folder)
    assert not marker.exists()

    # With consent the folder's code runs (here it defines a config but no classifier, so loading then stops).
    import transformers.dynamic_module_utils as dynamic_modules

    monkeypatch.setattr(dynamic_modules, "HF_MODULES_CACHE", str(tmp_path / "modules"))  # keep ~/.cache clean
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(ValueError, match="not a sequence classifier"):
        load_sequence_classifier(folder, trust_remote_code=True)
    assert marker.read_text() == "ran"


def test_probe_results_written_before_the_chance_level_still_load(tmp_path):
    """A probe_results.json without chance, verdict and deltas_meaningful: unknown, and the deltas still print."""
    from hf_posenc.tasks.scoring import format_table
    from hf_posenc.tasks.word_order import chance_note

    old = {
        "probes": {"original": 0.6, "role-swap": 0.9, "still_entailment": 0.1},
        "deltas": {"role-swap": 30.0},
        "model": "old",
        "model_type": "bert",
        "train_pairs": 10,
        "test_pairs": 10,
        "seed": 0,
        "locality": None,
        "symmetry": None,
        "details": {},
    }
    (tmp_path / "probe_results.json").write_text(json.dumps(old), encoding="utf-8")
    result = ProbeResult.load(tmp_path)
    assert (result.chance, result.verdict, result.deltas_meaningful) == (None, "unknown", None)
    assert result.card_results() == {
        "probes": old["probes"],
        **{"probe_train_pairs": 10, "probe_test_pairs": 10, "probe_seed": 0},  # no chance level or verdict
    }
    assert "+30.0" in format_table({"old": result})
    assert "unknown" in chance_note(result)
