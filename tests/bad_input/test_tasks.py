"""Bad input to the downstream tasks and `hf-posenc finetune`: each error names the problem and the fix."""

import gzip
import json

import pytest
from conftest import tiny_config
from snli_samples import snli_pair

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


def _stsb_rows(count: int, label=lambda index: f"{index % 5}.0"):
    return [(f"a sentence {index}", f"another sentence {index}", label(index)) for index in range(count)]


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity"])
def test_a_non_finite_regression_label_is_refused_before_training(tiny_folder, tmp_path, capsys, bad):
    header = ["sentence1", "sentence2", "label"]
    rows = _stsb_rows(20, label=lambda index: bad if index == 6 else f"{index % 5}.0")
    train = _tsv(tmp_path / "train.tsv", header, rows)
    validation = _tsv(tmp_path / "dev.tsv", header, _stsb_rows(4))
    with pytest.raises(ValueError, match=rf"train.tsv, example 7: label '{bad}' is not a finite number"):
        get_task("stsb").load("train", train)
    output = tmp_path / "out"
    arguments = ["--task", "stsb", "--train_file", train, "--validation_file", validation, "--output_dir", output]
    assert main(["finetune", str(tiny_folder), *map(str, arguments)]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message == (
        f"hf-posenc finetune: error: {train}, example 7: label '{bad}' is not a finite number; fix the score or drop "
        "the row."
    )
    assert not (output / "finetune_results.json").exists()
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text('{"sentence1": "a", "sentence2": "b", "label": NaN}\n', encoding="utf-8")  # Python's json reads it
    with pytest.raises(ValueError, match="example 1: label nan is not a finite number"):
        read_task_file(jsonl, ["sentence1", "sentence2"], "label", [])


def test_a_row_after_the_first_that_lacks_a_column_is_named(tmp_path):
    rows = [{"sentence1": f"a {index}", "sentence2": f"b {index}", "label": 1} for index in range(6)]
    del rows[3]["sentence2"]
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(ValueError, match=r"train.jsonl, example 4: no value in the column\(s\) sentence2; every"):
        get_task("rte").load("train", jsonl)
    del rows[1]["label"]
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(ValueError, match=r"example 2: no value in the column\(s\) label"):
        get_task("rte").load("train", jsonl)
    short_row = tmp_path / "train.tsv"
    short_row.write_text("sentence\tlabel\na cat\t1\na dog\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"train.tsv, example 2: no value in the column\(s\) label"):
        get_task("sst2").load("train", short_row)


def test_a_train_file_that_is_not_utf8_text_is_named(tiny_folder, tmp_path, capsys):
    latin1 = tmp_path / "train.tsv"
    latin1.write_bytes("sentence\tlabel\ncaf\u00e9 cr\u00e8me\t1\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"train.tsv is not UTF-8 text \(byte \d+: invalid continuation byte\)"):
        get_task("sst2").load("train", latin1)
    assert main(["finetune", str(tiny_folder), "--task", "sst2", "--train_file", str(latin1)]) == 2
    assert f"error: {latin1} is not UTF-8 text" in capsys.readouterr().err
    binary = tmp_path / "train.jsonl"
    binary.write_bytes(gzip.compress(b'{"sentence": "a", "label": 1}\n'))
    with pytest.raises(ValueError, match=r"train.jsonl is not UTF-8 text"):
        get_task("sst2").load("train", binary)
    snippets = tmp_path / "sentiment.csv"
    snippets.write_bytes(b"category,text\nfresh,\xff\xfe\n")
    with pytest.raises(ValueError, match=r"sentiment.csv is not UTF-8 text .* a sentiment file is a UTF-8 CSV"):
        get_task("sentiment").load("train", snippets)


@pytest.fixture(scope="module")
def t5_folder(tmp_path_factory, tiny_tokenizer):
    from transformers import T5Config, T5ForConditionalGeneration

    folder = tmp_path_factory.mktemp("tiny-t5")
    config = T5Config(vocab_size=len(tiny_tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1,
                      num_decoder_layers=1, num_heads=2, decoder_start_token_id=0, pad_token_id=0)  # fmt: skip
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


def test_an_encoder_decoder_folder_is_refused_for_fine_tuning_and_probing(t5_folder, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"model_type 't5'\) is an encoder-decoder model; fine-tuning and probing"):
        load_sequence_classifier(t5_folder, get_task("sst2"))
    rows = [(f"sentence {index}", str(index % 2)) for index in range(20)]
    train = _tsv(tmp_path / "train.tsv", ["sentence", "label"], rows)
    validation = _tsv(tmp_path / "dev.tsv", ["sentence", "label"], rows[:4])
    output = tmp_path / "out"
    arguments = ["--task", "sst2", "--train_file", train, "--validation_file", validation, "--output_dir", output]
    assert main(["finetune", str(t5_folder), *map(str, arguments)]) == 2
    assert "is an encoder-decoder model" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (output / "finetune_results.json").exists()
    snli = tmp_path / "snli_1.0_test.jsonl"
    snli.write_text("".join(json.dumps(snli_pair("vehicle", "entailment", index)) + "\n" for index in range(3)))
    probe = ["probe", str(t5_folder), "--train_file", str(snli), "--test_file", str(snli), "--output_dir", str(output)]
    assert main(probe) == 2
    assert "hf-posenc probe: error: the model in" in capsys.readouterr().err.strip().splitlines()[-1]
