"""Resuming a pretraining with `--resume_from_checkpoint`, run for real (issue 18).

A checkpoint at the last step trains nothing (transformers' Trainer alone trains one step past `max_steps`, into
`checkpoint-<max_steps + 1>`) and keeps the run's records; a checkpoint before it trains exactly the steps left, with
a `train_loss` over the whole run and a throughput over this process's steps only. Runs of 4 steps.
"""

import json

import pytest
from test_pretrain import TINY_RUN, StopAtStep, run_pretrain
from transformers import TrainerCallback

from hf_posenc.results import PretrainResult
from hf_posenc.study.pretrain_job import TrainingLogCallback

RUN = [
    "--variant",
    "alibi",
    *TINY_RUN,
    "--max_steps",
    "4",
    "--save_steps",
    "2",
    "--logging_steps",
    "2",
    "--eval_strategy",
    "no",
]
TOKENS_PER_STEP = 8 * 32  # --per_device_train_batch_size x --max_seq_length
RECORDS = ("posenc_results.json", "training_log.json")


class CountSteps(TrainerCallback):
    """The optimizer steps this process trains."""

    def __init__(self):
        self.steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1


def checkpoints(output_dir) -> list[str]:
    return sorted(path.name for path in output_dir.glob("checkpoint-*"))


def logged_losses(output_dir, checkpoint: str) -> dict[int, float]:
    state = json.loads((output_dir / checkpoint / "trainer_state.json").read_text())
    return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}


def test_resuming_a_finished_run_trains_nothing_and_keeps_its_records(tmp_path):
    output = tmp_path / "run"
    log = output / "training_log.json"
    first = run_pretrain([*RUN, "--output_dir", str(output)], callbacks=[TrainingLogCallback(log, TOKENS_PER_STEP)])
    records = {name: (output / name).read_bytes() for name in RECORDS}
    resume = [*RUN, "--output_dir", str(output), "--resume_from_checkpoint", str(output / "checkpoint-4")]

    counted = CountSteps()
    again = run_pretrain(resume, callbacks=[TrainingLogCallback(log, TOKENS_PER_STEP), counted])
    assert counted.steps == 0 and checkpoints(output) == ["checkpoint-2", "checkpoint-4"]
    assert again == first
    assert {name: (output / name).read_bytes() for name in RECORDS} == records

    # The process stopped between its last checkpoint and its results: they are made from the checkpoint.
    (output / "posenc_results.json").unlink()
    counted = CountSteps()
    finished = run_pretrain(resume, callbacks=[TrainingLogCallback(log, TOKENS_PER_STEP), counted])
    assert counted.steps == 0 and checkpoints(output) == ["checkpoint-2", "checkpoint-4"]
    assert PretrainResult.load(output) == finished
    assert finished.train_steps == 4
    assert finished.train_loss == pytest.approx(first.train_loss, rel=1e-9)  # from the logged losses of steps 2, 4
    assert finished.eval_loss == pytest.approx(first.eval_loss, rel=1e-6)
    assert finished.locality == pytest.approx(first.locality, rel=1e-6)
    for layer, expected in zip(finished.per_layer, first.per_layer, strict=True):
        assert layer == pytest.approx(expected, rel=1e-6)
    assert log.read_bytes() == records["training_log.json"], (
        "a process that trains nothing must leave the study's training log (its tokens/s) as the run wrote it"
    )


def test_resuming_an_unfinished_run_trains_the_steps_left_and_counts_only_them(tmp_path):
    output = tmp_path / "run"
    log = output / "training_log.json"
    stopped = run_pretrain([*RUN, "--output_dir", str(output)], callbacks=[StopAtStep(2)])
    assert stopped.train_steps == 2 and checkpoints(output) == ["checkpoint-2"]

    counted = CountSteps()
    resumed = run_pretrain(
        [*RUN, "--output_dir", str(output), "--resume_from_checkpoint", str(output / "checkpoint-2")],
        callbacks=[TrainingLogCallback(log, TOKENS_PER_STEP), counted],
    )
    assert counted.steps == 2 and checkpoints(output) == ["checkpoint-2", "checkpoint-4"]
    assert resumed.train_steps == 4 and PretrainResult.load(output) == resumed
    losses = logged_losses(output, "checkpoint-4")  # each the mean of the 2 steps before it
    assert sorted(losses) == [2, 4]
    assert resumed.train_loss == pytest.approx((losses[2] + losses[4]) / 2, rel=1e-6)  # the whole run's mean

    written = json.loads(log.read_text())
    assert written["steps"] == 4
    assert written["tokens_per_second"] == pytest.approx(2 * TOKENS_PER_STEP / written["seconds"]), (
        "tokens/s must count the 2 steps this process trained, not all 4"
    )
