"""Bad input to the downstream tasks and `hf-posenc finetune`: each error names the problem and the fix."""

import pytest
from conftest import tiny_config

from hf_posenc.cli import main
from hf_posenc.results import FinetuneResult
from hf_posenc.tasks import get_task
from hf_posenc.tasks.glue import read_task_file
from hf_posenc.training.finetune import load_classifier, load_sequence_classifier
from hf_posenc.training.runner import finetune_tasks, load_task_splits


@pytest.fixture()
def tiny_folder(tmp_path, tiny_tokenizer):
    from transformers import AutoModelForMaskedLM

    folder = tmp_path / "tiny-rope"
    AutoModelForMaskedLM.from_config(tiny_config("rope", vocab_size=len(tiny_tokenizer))).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


def _tsv(path, header, rows):
    path.write_text("\n".join(["\t".join(header)] + ["\t".join(row) for row in rows]) + "\n", encoding="utf-8")
    return path


def test_an_unknown_task_lists_the_known_ones(tiny_folder, capsys):
    with pytest.raises(ValueError, match=r"unknown task 'glue'; the known tasks are snli, sentiment, pos.*cola, sst2"):
        get_task("glue")
    assert main(["finetune", str(tiny_folder), "--task", "sentimnet"]) == 2
    assert "unknown task 'sentimnet'" in capsys.readouterr().err


def test_a_model_type_without_a_token_classification_head_is_refused(tmp_path):
    from transformers import BartConfig, BartModel

    folder = tmp_path / "bart"
    config = BartConfig(vocab_size=64, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32)  # fmt: skip
    BartModel(config).save_pretrained(folder)
    with pytest.raises(ValueError, match=r"model_type 'bart'\) is not a token classifier.*ForTokenClassification"):
        load_classifier(folder, get_task("pos"))


def test_local_files_without_the_columns_say_which_are_missing(tmp_path):
    file = _tsv(tmp_path / "train.tsv", ["text", "label"], [("a cat", "1")])
    with pytest.raises(ValueError, match=r"train.tsv lacks the column\(s\) sentence1, sentence2; .*found: text, label"):
        get_task("mrpc").load("train", file)
    with pytest.raises(ValueError, match="unknown file type '.txt'"):
        read_task_file(_tsv(tmp_path / "train.txt", ["sentence", "label"], [("a", "1")]), ["sentence"], "label", ["a"])


def test_a_label_outside_the_task_or_hidden_is_refused(tmp_path):
    file = _tsv(tmp_path / "dev.tsv", ["sentence", "label"], [("a cat", "maybe")])
    with pytest.raises(ValueError, match=r"dev.tsv, example 1: label 'maybe' is not one of negative, positive"):
        get_task("sst2").load("validation", file)
    hidden = _tsv(tmp_path / "test.tsv", ["sentence", "label"], [("a cat", "-1")])
    with pytest.raises(ValueError, match="GLUE hides its test labels"):
        get_task("sst2").load("validation", hidden)


def test_a_development_label_that_train_never_has_is_refused(tmp_path):
    rows = [(f"sentence {index}", f"other {index}", "entailment") for index in range(10)]
    train = _tsv(tmp_path / "train.tsv", ["sentence1", "sentence2", "label"], rows)
    validation = _tsv(tmp_path / "dev.tsv", ["sentence1", "sentence2", "label"], rows[:2] + [("a", "b", "1")])
    with pytest.raises(ValueError, match="validation split has the label\\(s\\) not_entailment, which the train split"):
        load_task_splits(get_task("rte"), {"train": train, "validation": validation})


def test_a_file_for_a_split_the_task_holds_out_is_refused(tmp_path):
    with pytest.raises(ValueError, match="task snli reads no validation file .*held out of train.*--validation_file"):
        load_task_splits(get_task("snli"), {"validation": tmp_path / "dev.jsonl"})


def test_a_kept_classifier_with_the_wrong_number_of_outputs_is_refused_for_regression(tiny_folder, tmp_path):
    classifier = load_sequence_classifier(tiny_folder)  # SNLI's three labels
    classifier.save_pretrained(tmp_path / "snli-classifier")
    with pytest.raises(ValueError, match="has 3 outputs but a regression task needs 1 output.*fresh head"):
        load_sequence_classifier(tmp_path / "snli-classifier", get_task("stsb"), keep_head=True)
    assert load_sequence_classifier(tmp_path / "snli-classifier", get_task("stsb")).config.num_labels == 1


def test_an_output_folder_with_another_models_results_is_refused(tiny_folder, tmp_path, capsys):
    output = tmp_path / "out"
    FinetuneResult(model="other", model_type="bert", settings={"model_path": "/models/other"}, complete=True).save(
        output
    )
    with pytest.raises(FileExistsError, match="holds the finished fine-tuning results of '/models/other'"):
        finetune_tasks(tiny_folder, ["sentiment"], output_dir=output)
    code = main(["finetune", str(tiny_folder), "--task", "sentiment", "--output_dir", str(output)])
    assert code == 2 and "--overwrite_output_dir" in capsys.readouterr().err


def test_bad_grid_options_are_refused(tiny_folder, tmp_path):
    for rates in ([0.0], [float("inf")], [float("nan")]):
        with pytest.raises(ValueError, match="--learning_rates must be one or more finite numbers above 0"):
            finetune_tasks(tiny_folder, ["sentiment"], learning_rates=rates, output_dir=tmp_path)
    with pytest.raises(ValueError, match=r"--seeds repeats a value \(\[1, 1\]\); give each one once"):
        finetune_tasks(tiny_folder, ["sentiment"], seeds=[1, 1], output_dir=tmp_path)
    with pytest.raises(ValueError, match="--learning_rates repeats a value"):
        finetune_tasks(tiny_folder, ["sentiment"], learning_rates=[1e-3, 1e-3], output_dir=tmp_path)
    with pytest.raises(ValueError, match="--max_train_samples must be at least 1"):
        finetune_tasks(tiny_folder, ["sentiment"], max_train_samples=0, output_dir=tmp_path)
