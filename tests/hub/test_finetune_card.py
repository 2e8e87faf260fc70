"""Downstream scores on the model card: the `FinetuneResult` of the fine-tuning runner, through `export_run` and
`hf-posenc export --finetune_results`, into the card's "Downstream evaluation" table and its model-index."""

import math

from hub_helpers import tiny_model
from huggingface_hub import ModelCard

from hf_posenc import cli
from hf_posenc.hub import finetune_card_results, normalize_results, render_card
from hf_posenc.results import FinetuneResult
from hf_posenc.training.finetune import FinetuneArguments
from hf_posenc.training.runner import finetune_tasks

ROWS = [
    ("the cat sat on the mat", 1),
    ("the dog slept by the door", 0),
    ("a man is playing a guitar", 1),
    ("two women are walking along the beach", 0),
] * 4


def _index(card: ModelCard) -> dict:
    """(dataset type, config, split, metric) -> (task type, value) of the card's model-index."""
    return {
        (entry.dataset_type, entry.dataset_config, entry.dataset_split, entry.metric_type): (
            entry.task_type,
            entry.metric_value,
        )
        for entry in card.data.eval_results
    }


def test_a_real_finetune_run_goes_into_the_card_and_its_model_index(tiny_tokenizer, tmp_path, capsys):
    run = tmp_path / "run"
    tiny_model("alibi", tiny_tokenizer).save_pretrained(run)
    tiny_tokenizer.save_pretrained(run)
    files = {}
    for split, rows in (("train", ROWS), ("validation", ROWS[:6])):
        files[split] = tmp_path / f"{split}.tsv"
        files[split].write_text("sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows))
    training = FinetuneArguments(max_steps=1, per_device_train_batch_size=4, max_seq_length=16, logging_steps=1)
    finetune_folder = tmp_path / "finetune"
    result = finetune_tasks(
        run, ["sst2"], seeds=[1, 2], training=training, output_dir=finetune_folder, data_files=files, log=lambda _: None
    )
    report = result.tasks["sst2"]["report"]["accuracy"]

    hub = tmp_path / "hub"
    assert cli.main(["export", str(run), str(hub), "--finetune_results", str(finetune_folder)]) == 0
    capsys.readouterr()
    card = ModelCard.load(hub / "README.md")
    verdict = result.tasks["sst2"]["verdict"]
    # A score that is not above chance is not a result: the model-index leaves it out (the prose keeps it).
    listed = _index(card) if card.data.eval_results else {}
    if verdict == "not above chance":
        assert ("nyu-mll/glue", "sst2", "validation", "accuracy") not in listed
    else:
        task_type, value = listed[("nyu-mll/glue", "sst2", "validation", "accuracy")]
        assert task_type == "text-classification" and value == report["mean"]
    assert "nyu-mll/glue" in card.data.datasets
    assert "## Downstream evaluation" in card.text
    row = next(line for line in card.text.splitlines() if line.startswith("| sst2 |"))
    assert f"{report['mean']:.4f} ± {report['std']:.4f} (2 seeds)" in row and "(6 examples)" in row
    assert row.endswith(f"| {result.tasks['sst2']['best_learning_rate']:g} |") and "accuracy (selects)" in row
    # The 6 validation sentences are 3 positive, 3 negative: chance is 0.5; the verdict is the results file's.
    assert verdict in ("above chance", "not above chance")
    assert f"| 0.5000 | {verdict} |" in row
    assert ("**Not above chance: sst2.**" in card.text) == (verdict == "not above chance")


def test_hand_written_scores_give_one_eval_result_per_task_and_metric(tiny_tokenizer):
    results = {
        "finetune": {
            "pos": {"split": "test", "metrics": {"accuracy": 0.91}, "kind": "token classification", "seeds": 1},
            "mnli-m": {"split": "validation", "metrics": {"accuracy": 0.7}, "std": {"accuracy": 0.01}, "seeds": 3},
            "stsb": {"split": "validation", "metrics": {"pearson": 0.8, "spearmanr": None}, "main_metric": "pearson"},
            "mrpc": {
                "split": "validation",
                "metrics": {"f1": 0.81, "accuracy": 0.68},
                "main_metric": "f1",
                "chance": {"f1": 0.81, "accuracy": 0.68},
                "verdict": "not above chance",
            },
            "my *task* | x": {"split": "held-out", "metrics": {"f1": 0.5}, "learning_rate": 5e-5},
        }
    }
    card = ModelCard(str(render_card(tiny_model("rope", tiny_tokenizer).config, results)))
    index = _index(card)
    assert index[("pos", None, "test", "accuracy")] == ("token-classification", 0.91)
    # MNLI matched is the validation_matched split of the Hub dataset; a kind left out comes from the registry.
    assert index[("nyu-mll/glue", "mnli", "validation_matched", "accuracy")] == ("text-classification", 0.7)
    assert index[("nyu-mll/glue", "stsb", "validation", "pearson")] == ("text-classification", 0.8)
    assert not any(key[3] == "spearmanr" for key in index)  # undefined: on the card, not in the model-index
    assert index[("my *task* | x", None, "held-out", "f1")] == ("text-classification", 0.5)
    assert "| my \\*task\\* \\| x | held-out | f1 | 0.5000 | – | unknown | 5e-05 |" in card.text
    assert "| stsb | validation | spearmanr | undefined (NaN) | – | unknown (by pearson) | – |" in card.text
    assert "| mnli-m | validation | accuracy | 0.7000 ± 0.0100 (3 seeds) | – | unknown | – |" in card.text
    # A score at chance is marked on each of its rows and named under the table.
    assert (
        "| mrpc | validation | f1 (selects) | 0.8100 – not above chance | 0.8100 | not above chance | – |" in card.text
    )
    assert "| accuracy | 0.6800 – not above chance | 0.6800 | not above chance (by f1) |" in card.text
    assert "**Not above chance: mrpc.**" in card.text
    # ...and, not being a result, it is not listed in the model-index metadata; the other tasks are.
    names = {(entry.dataset_config, entry.metric_type): entry.metric_name for entry in card.data.eval_results}
    assert not any(config == "mrpc" for config, _ in names) and names[("mnli", "accuracy")] == "accuracy"
    assert len(card.data.eval_results) == 4  # pos, mnli-m, stsb's pearson, my task


def test_finetune_results_convert_to_the_documented_card_schema():
    result = FinetuneResult(
        model="m",
        model_type="posenc_rope",
        tasks={
            "sentiment": {
                "kind": "single-sentence classification",
                "main_metric": "accuracy",
                "report_split": "test",
                "best_learning_rate": 1e-4,
                "seeds": [1, 2],
                "report": {"accuracy": {"mean": 0.75, "std": 0.05, "values": [0.7, 0.8]}},
                "examples": {"train": 10, "validation": 4, "test": 8},
                "chance": {"accuracy": 0.5},
                "verdict": "above chance",
            }
        },
        complete=True,
    )
    entry = normalize_results(finetune_card_results(result))["finetune"]["sentiment"]
    assert entry == {
        "split": "test",
        "metrics": {"accuracy": 0.75},
        "std": {"accuracy": 0.05},
        "main_metric": "accuracy",
        "seeds": 2,
        "learning_rate": 1e-4,
        "kind": "single-sentence classification",
        "examples": 8,
        "chance": {"accuracy": 0.5},
        "verdict": "above chance",
    }
    # The results file's own summary is accepted as it is.
    summary = normalize_results(result.card_results())["finetune"]["sentiment"]
    assert summary["metrics"] == {"accuracy": 0.75} and summary["verdict"] == "above chance"
    # A file written before chance levels were recorded: no chance level, the verdict unknown.
    for key in ("chance", "verdict"):
        del result.tasks["sentiment"][key]
    old = normalize_results(finetune_card_results(result))["finetune"]["sentiment"]
    assert "chance" not in old and old["verdict"] == "unknown"
    result.tasks["sentiment"]["report"]["accuracy"]["mean"] = None  # every seed undefined
    assert math.isnan(normalize_results(finetune_card_results(result))["finetune"]["sentiment"]["metrics"]["accuracy"])
