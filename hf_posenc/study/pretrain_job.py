"""One pretraining run of a study, as `accelerate launch -m hf_posenc.study.pretrain_job FLAGS` runs it: the flags
of examples/pretrain.py, plus the study's training log (loss curve, parameters, throughput) written to the file
that ``HF_POSENC_STUDY_LOG`` names."""

from __future__ import annotations

import os
import time
from pathlib import Path

from transformers import TrainerCallback

from .layout import write_json

LOG_ENVIRONMENT = "HF_POSENC_STUDY_LOG"


class TrainingLogCallback(TrainerCallback):
    """Keeps the Trainer's log history, the parameter count and the training throughput in one JSON file
    (written on the main process after every log, so an interrupted run keeps its curve).

    The throughput counts the steps this process trained (a resumed run starts at its checkpoint's step, and
    ``steps_this_process`` says how many it trained) over the time of its training loop, which ends before the
    final save and evaluation. A process that trains nothing (the last checkpoint of a finished run, resumed)
    leaves the file as it is."""

    def __init__(self, path: str | Path, tokens_per_step: int):
        self.path = Path(path)
        self.tokens_per_step = tokens_per_step
        self.parameters = None
        self.started = None
        self.first_step = 0
        self.seconds = None  # the training loop's, once it has ended

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is not None:
            self.parameters = model.num_parameters()
        self.first_step = state.global_step  # the checkpoint's step when resuming
        self.started = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.started is not None:
            self._write(state)

    def on_train_end(self, args, state, control, **kwargs):
        if self.started is None:
            return
        self.seconds = time.perf_counter() - self.started
        if state.is_world_process_zero:
            self._write(state)

    def _write(self, state) -> None:
        seconds = self.seconds if self.seconds is not None else time.perf_counter() - self.started
        trained = state.global_step - self.first_step
        write_json(
            self.path,
            {
                "parameters": self.parameters,
                "steps": state.global_step,
                "steps_this_process": trained,
                "seconds": seconds,
                # Wall time of this process's training loop (the in-training attention measurements included).
                "tokens_per_second": trained * self.tokens_per_step / seconds if seconds and trained else None,
                "log_history": state.log_history,
            },
        )


def main(argv: list[str] | None = None):
    from ..training import parse_pretrain_arguments, pretrain

    arguments = parse_pretrain_arguments(argv)
    training_args = arguments["training_args"]
    tokens_per_step = (
        training_args.per_device_train_batch_size * training_args.world_size * arguments["data_args"].max_seq_length
    )
    callbacks = (
        [TrainingLogCallback(os.environ[LOG_ENVIRONMENT], tokens_per_step)] if LOG_ENVIRONMENT in os.environ else []
    )
    return pretrain(**arguments, callbacks=callbacks)


if __name__ == "__main__":
    from ..cli import exit_on_user_error

    exit_on_user_error(main, "hf_posenc.study.pretrain_job")
