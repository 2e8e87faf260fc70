"""The fine-tuning runner (hf_posenc.training.runner) and `hf-posenc finetune`: one tiny run per task kind, the
learning-rate grid choosing on the development split, mean and std over seeds, skipping finished cells, and each
score's chance level and verdict."""

import dataclasses
import json
import math

import pytest
import torch
from conftest import tiny_config
from test_finetune_tokens import TAGGING

from hf_posenc.cli import main
from hf_posenc.results import FinetuneResult
from hf_posenc.tasks import get_task
from hf_posenc.training.finetune import FinetuneArguments
from hf_posenc.training.runner import finetune_tasks, format_finetune_table, summarize_task

ROWS = [
    ("the cat sat on the mat", "a cat sat", 1),
    ("the dog slept by the door", "a bird flew", 0),
    ("a man is playing a guitar", "a man plays", 1),
    ("two women are walking along the beach", "the sun sets", 0),
    ("the children laughed", "children laugh", 1),
    ("the small dog chased the red ball", "a cat sat", 0),
] * 4
TINY_TRAINING = FinetuneArguments(max_steps=2, per_device_train_batch_size=4, max_seq_length=32, logging_steps=1)


@pytest.fixture()
def tiny_folder(tmp_path, tiny_tokenizer):
    from transformers import AutoModelForMaskedLM

    folder = tmp_path / "tiny-attenuated"
    AutoModelForMaskedLM.from_config(tiny_config("attenuated", vocab_size=len(tiny_tokenizer))).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture()
def glue_files(tmp_path):
    """Train and validation files that serve SST-2 (sentence), MRPC and STS-B (sentence1, sentence2)."""
    files = {}
    for split, rows in (("train", ROWS), ("validation", ROWS[:8])):
        lines = ["sentence\tsentence1\tsentence2\tlabel"] + [f"{a}\t{a}\t{b}\t{label}" for a, b, label in rows]
        files[split] = tmp_path / f"{split}.tsv"
        files[split].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return files


def test_one_run_per_task_kind_scores_the_selection_and_report_splits(tiny_folder, glue_files, tmp_path):
    output = tmp_path / "out"
    options = dict(training=TINY_TRAINING, log=lambda line: None)
    result = finetune_tasks(tiny_folder, ["mrpc", "stsb"], output_dir=output, data_files=glue_files, **options)
    assert result.complete and result.model == "tiny-attenuated" and result.model_type == "posenc_attenuated"
    assert set(result.tasks["mrpc"]["report"]) == {"f1", "accuracy"}
    assert set(result.tasks["stsb"]["report"]) == {"pearson", "spearmanr"}
    tagged = finetune_tasks(tiny_folder, [TAGGING], output_dir=tmp_path / "tagging", **options)
    assert set(tagged.tasks["animals"]["report"]) == {"accuracy"} and tagged.cells[0]["train_examples"] == 3
    # MRPC: train 24 rows (6 sentences 4 times) less a tenth held out as development by first sentence, so one
    # sentence's 4 rows; validation reported.
    assert result.tasks["mrpc"]["examples"] == {"train": 20, "development": 4, "validation": 8}
    for cell in result.cells:
        assert cell["selection"] is not None and cell["report"] is not None
    assert FinetuneResult.load(output).to_dict() == result.to_dict()
    assert "mrpc" in (output / "finetune_table.txt").read_text()
    # Chance on the 8 validation rows (labels 1, 0, 1, 0, ...: a tie, the first label seen, 1, is the majority):
    # accuracy 4/8, F1 of class 1 = 2 * 0.5 * 1 / (0.5 + 1). A constant's correlation is undefined: no verdict.
    assert result.tasks["mrpc"]["chance"] == pytest.approx({"f1": 2 / 3, "accuracy": 0.5})
    assert result.tasks["stsb"]["chance"] == {"pearson": None, "spearmanr": None}
    assert result.tasks["stsb"]["verdict"] == "unknown"


def test_the_grid_keeps_the_best_development_mean_and_reports_mean_and_std_over_seeds():
    task = get_task("sst2")

    def cell(rate, seed, development, reported):
        selection = {"accuracy": development}
        return {
            "task": "sst2",
            "learning_rate": rate,
            "seed": seed,
            "selection": selection,
            "report": {"accuracy": reported},
        }

    cells = [cell(1e-3, 1, 0.9, 0.8), cell(1e-3, 2, 0.3, 0.6), cell(1e-4, 1, 0.7, 0.5), cell(1e-4, 2, 0.7, 0.7)]
    summary = summarize_task(task, cells)
    assert summary["best_learning_rate"] == 1e-4  # mean 0.7 beats 0.6, though 1e-3 had the single best seed
    assert summary["report"]["accuracy"]["mean"] == pytest.approx(0.6)
    assert summary["report"]["accuracy"]["std"] == pytest.approx(0.1414213, rel=1e-5)  # sample std of 0.5, 0.7
    assert summary["seeds"] == [1, 2]


def test_a_restarted_run_skips_finished_cells(tiny_folder, glue_files, tmp_path):
    output = tmp_path / "out"
    options = dict(
        learning_rates=[1e-2, 1e-6],
        seeds=[1, 2],
        training=TINY_TRAINING,
        output_dir=output,
        data_files=glue_files,
    )
    lines = []
    result = finetune_tasks(tiny_folder, ["sst2"], log=lines.append, **options)
    assert len(result.cells) == 4 and not any("skipped" in line for line in lines)
    means = {
        rate: sum(cell["selection"]["accuracy"] for cell in result.cells if cell["learning_rate"] == rate) / 2
        for rate in (1e-2, 1e-6)
    }
    assert result.tasks["sst2"]["best_learning_rate"] == max(means, key=means.get)

    # Interrupted after three cells: the restart trains only the fourth.
    saved = json.loads(FinetuneResult.path_in(output).read_text())
    saved.update(cells=saved["cells"][:3], tasks={}, complete=False)
    FinetuneResult.path_in(output).write_text(json.dumps(saved))
    lines.clear()
    again = finetune_tasks(tiny_folder, ["sst2"], log=lines.append, **options)
    assert sum("skipped" in line for line in lines) == 3 and len(again.cells) == 4
    assert again.cells[:3] == result.cells[:3] and again.complete

    # Finished: the same command trains nothing.
    lines.clear()
    finetune_tasks(tiny_folder, ["sst2"], log=lines.append, **options)
    assert lines == ["sst2: all 4 cell(s) done before, skipped"]


def test_the_finetune_command_prints_the_table(tiny_folder, glue_files, tmp_path, capsys):
    status = main(
        [
            "finetune",
            str(tiny_folder),
            "--task",
            "rte",
            "--train_file",
            str(glue_files["train"]).replace("train.tsv", "rte-train.tsv"),
            "--validation_file",
            str(glue_files["validation"]),
            "--max_steps",
            "1",
            "--max_seq_length",
            "32",
            "--output_dir",
            str(tmp_path / "cli"),
        ]
    )
    assert status == 2  # the train file does not exist: one line, no traceback
    assert "rte-train.tsv" in capsys.readouterr().err
    rte_train = (
        glue_files["train"].read_text().replace("\t1\n", "\tentailment\n").replace("\t0\n", "\tnot_entailment\n")
    )
    (tmp_path / "rte-train.tsv").write_text(rte_train, encoding="utf-8")
    arguments = ["finetune", str(tiny_folder), "--task", "rte", "--train_file", str(tmp_path / "rte-train.tsv")]
    arguments += ["--validation_file", str(glue_files["validation"]), "--max_steps", "1", "--max_seq_length", "32"]
    assert main(arguments + ["--output_dir", str(tmp_path / "cli")]) == 0
    printed = capsys.readouterr().out
    assert "rte" in printed and "accuracy" in printed and "finetune_results.json" in printed
    assert format_finetune_table(FinetuneResult.load(tmp_path / "cli")) in printed
    assert "Verdict" in printed and "(chance 50.0)" in printed  # 4 of the 8 validation pairs are entailment


def test_the_chance_level_is_the_majority_share_and_a_model_that_cannot_learn_is_not_above_it(
    tiny_folder, glue_files, tmp_path
):
    # 6 of the 8 validation sentences are positive: always answering 1 scores 6/8.
    validation = tmp_path / "skewed.tsv"
    rows = [(a, 1) for a, _, _ in ROWS[:6]] + [(a, 0) for a, _, _ in ROWS[6:8]]
    validation.write_text("sentence\tlabel\n" + "".join(f"{a}\t{label}\n" for a, label in rows), encoding="utf-8")
    files = {"train": glue_files["train"], "validation": validation}
    output = tmp_path / "out"
    one_step = dataclasses.replace(TINY_TRAINING, max_steps=1)
    options = dict(learning_rates=[1e-9], training=one_step, output_dir=output, data_files=files)
    result = finetune_tasks(tiny_folder, ["sst2"], log=lambda line: None, **options)
    summary = result.tasks["sst2"]
    assert summary["chance"] == {"accuracy": 6 / 8}
    # One seed: the noise is the binomial standard error of 6/8 on 8 examples, and no accuracy beats it twice over.
    assert summary["reading"]["noise_from"] == "binomial"
    assert summary["reading"]["noise"] == pytest.approx(math.sqrt(0.75 * 0.25 / 8))
    assert summary["verdict"] == result.task_verdict("sst2") == "not above chance"
    table = format_finetune_table(result)
    assert "not above chance (accuracy)" in table and "(chance 75.0)" in table

    # A results file written before chance levels existed still loads, and reads as unknown.
    saved = json.loads(FinetuneResult.path_in(output).read_text())
    for key in ("chance", "verdict", "reading"):
        del saved["tasks"]["sst2"][key]
    FinetuneResult.path_in(output).write_text(json.dumps(saved))
    old = FinetuneResult.load(output)
    assert old.task_chance("sst2") == {"accuracy": None} and old.task_verdict("sst2") == "unknown"
    assert "unknown (accuracy)" in format_finetune_table(old) and "(chance n/a)" in format_finetune_table(old)
    assert old.card_results()["finetune"]["sst2"]["verdict"] == "unknown"
    # Run again, it trains nothing but measures the chance level it lacked.
    lines = []
    again = finetune_tasks(tiny_folder, ["sst2"], log=lines.append, **options)
    assert lines == ["sst2: all 1 cell(s) done before, skipped"]
    assert again.tasks["sst2"]["chance"] == {"accuracy": 0.75} and again.task_verdict("sst2") == "not above chance"


def test_finetune_takes_the_training_arguments_flags_of_pretraining(tiny_folder, glue_files, tmp_path, capsys):
    """--report_to, --gradient_accumulation_steps, --logging_steps... are read by pretraining's HfArgumentParser;
    each cell logs to its own TensorBoard run; a flag nobody knows exits like argparse."""
    arguments = ["finetune", str(tiny_folder), "--task", "sst2", "--train_file", str(glue_files["train"])]
    arguments += ["--validation_file", str(glue_files["validation"]), "--max_steps", "2", "--max_seq_length", "32"]
    output = tmp_path / "flags"
    with pytest.raises(SystemExit):
        main([*arguments, "--gradeint_accumulation_steps", "2", "--output_dir", str(output)])  # misspelt
    assert "unrecognized arguments: --gradeint_accumulation_steps" in capsys.readouterr().err

    flags = ["--report_to", "tensorboard", "--gradient_accumulation_steps", "2", "--logging_steps", "1"]
    assert main([*arguments, *flags, "--seeds", "1", "2", "--output_dir", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "sst2 lr=0.0003 seed=2 (cell 2/2): fine-tuning on 20 examples" in printed
    runs = sorted(path.parent.parent.parent.name for path in output.glob("trainer/*/runs/*/events.out.tfevents.*"))
    assert runs == ["sst2-lr0.0003-seed1", "sst2-lr0.0003-seed2"]  # the default rate of a 32-wide model
    settings = FinetuneResult.load(output).settings
    # report_to and logging_steps change no score, so a rerun without them continues the same cells.
    assert settings["trainer_options"] == {"gradient_accumulation_steps": 2} and settings["logging_steps"] == 1


def test_results_follow_the_weights_not_the_folder(tiny_folder, glue_files, tmp_path):
    """A model retrained into the same folder is not credited with the earlier model's cells."""
    from transformers import AutoModelForMaskedLM

    options = dict(training=TINY_TRAINING, output_dir=tmp_path / "out", data_files=glue_files, log=lambda line: None)
    first = finetune_tasks(tiny_folder, ["sst2"], **options)
    assert first.settings["model_weights"].startswith("sha256:")
    model = AutoModelForMaskedLM.from_pretrained(tiny_folder)
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    model.save_pretrained(tiny_folder)
    with pytest.raises(FileExistsError, match="other weights than those now in"):
        finetune_tasks(tiny_folder, ["sst2"], **options)
    again = finetune_tasks(tiny_folder, ["sst2"], overwrite=True, **options)
    assert again.settings["model_weights"] != first.settings["model_weights"]


def test_the_default_learning_rate_follows_the_models_width(tiny_folder, glue_files, tmp_path):
    from types import SimpleNamespace

    from hf_posenc.training.finetune import default_epochs, default_learning_rate

    widths = {128: 3e-4, 256: 3e-4, 512: 1e-4, 768: 3e-5, None: 3e-5}
    assert {width: default_learning_rate(SimpleNamespace(hidden_size=width)) for width in widths} == widths
    epochs = {128: 5.0, 256: 5.0, 512: 1.0, 768: 1.0, None: 1.0}
    assert {width: default_epochs(SimpleNamespace(hidden_size=width)) for width in epochs} == epochs
    lines = []
    options = dict(training=TINY_TRAINING, output_dir=tmp_path / "out", data_files=glue_files, log=lines.append)
    result = finetune_tasks(tiny_folder, ["sst2"], **options)  # hidden size 32
    assert [cell["learning_rate"] for cell in result.cells] == [3e-4]
    assert lines[0] == "learning rate 0.0003: the default for this model's width (pass --learning_rates to choose)"
