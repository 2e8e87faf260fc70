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
    (written on the main process after every log, so an interrupted run keeps its curve)."""

    def __init__(self, path: str | Path, tokens_per_step: int):
        self.path = Path(path)
        self.tokens_per_step = tokens_per_step
        self.parameters = None
        self.started = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is not None:
            self.parameters = model.num_parameters()
        self.started = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero:
            self._write(state)

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._write(state)

    def _write(self, state) -> None:
        seconds = time.perf_counter() - self.started if self.started is not None else None
        steps = state.global_step
        write_json(
            self.path,
            {
                "parameters": self.parameters,
                "steps": steps,
                "seconds": seconds,
                # Wall time of the whole loop (the in-training attention measurements included).
                "tokens_per_second": steps * self.tokens_per_step / seconds if seconds else None,
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
