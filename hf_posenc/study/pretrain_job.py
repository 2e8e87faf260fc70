"""One pretraining run of a study, as `accelerate launch -m hf_posenc.study.pretrain_job FLAGS` runs it: the flags
of examples/pretrain.py, plus the study's training log (loss curve, parameters, throughput, model FLOPs and MFU)
written to the file that ``HF_POSENC_STUDY_LOG`` names."""

from __future__ import annotations

import os
import time
from pathlib import Path

from transformers import TrainerCallback

from ..training.throughput import device_peak_tflops, model_flops_per_token, model_flops_utilization
from .layout import write_json

LOG_ENVIRONMENT = "HF_POSENC_STUDY_LOG"


class TrainingLogCallback(TrainerCallback):
    """Keeps the Trainer's log history, the parameter count and the training throughput in one JSON file
    (written on the main process after every log, so an interrupted run keeps its curve).

    The throughput counts the steps this process trained (a resumed run starts at its checkpoint's step, and
    ``steps_this_process`` says how many it trained) over the time of its training loop, which ends before the
    final save and evaluation. A process that trains nothing (the last checkpoint of a finished run, resumed)
    leaves the file as it is.

    The compute: ``model_flops`` = the run's steps (all of them, a resumed run's earlier ones too) x tokens per step x
    model FLOPs per token (`hf_posenc.training.throughput.model_flops_per_token`, from the config, `seq_len` and
    `mlm_probability`), and ``mfu`` = ``tokens_per_second`` x FLOPs per token over the devices' peak (`peak_tflops`
    per device, or the table's for a known GPU; null on a CPU or an unknown device without it)."""

    def __init__(
        self,
        path: str | Path,
        tokens_per_step: int,
        seq_len: int | None = None,
        mlm_probability: float = 0.15,
        peak_tflops: float | None = None,
    ):
        self.path = Path(path)
        self.tokens_per_step = tokens_per_step
        self.seq_len = seq_len
        self.mlm_probability = mlm_probability
        self.given_peak_tflops = peak_tflops
        self.peak_tflops = None
        self.devices = 1
        self.flops_per_token = None
        self.parameters = None
        self.started = None
        self.first_step = 0
        self.seconds = None  # the training loop's, once it has ended

    @classmethod
    def for_arguments(cls, path: str | Path, arguments) -> TrainingLogCallback:
        """The log of the run that `arguments` (a `PretrainArguments` dict) describe."""
        training_args, data_args = arguments["training_args"], arguments["data_args"]
        # One optimizer step trains the batches of every accumulation step on every process.
        tokens_per_step = (
            training_args.train_batch_size
            * training_args.gradient_accumulation_steps
            * training_args.world_size
            * data_args.max_seq_length
        )
        return cls(
            path,
            tokens_per_step,
            seq_len=data_args.max_seq_length,
            mlm_probability=data_args.mlm_probability,
            peak_tflops=arguments["run_args"].peak_tflops,
        )

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is not None:
            self.parameters = model.num_parameters()
            if self.seq_len is not None:
                self.flops_per_token = model_flops_per_token(model.config, self.seq_len, self.mlm_probability)
        self.peak_tflops = self.given_peak_tflops or device_peak_tflops(args.device)
        self.devices = args.world_size * max(1, args.n_gpu)
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
        tokens_per_second = trained * self.tokens_per_step / seconds if seconds and trained else None
        flops = self.flops_per_token
        write_json(
            self.path,
            {
                "parameters": self.parameters,
                "steps": state.global_step,
                "steps_this_process": trained,
                "seconds": seconds,
                # Wall time of this process's training loop (the in-training attention measurements included).
                "tokens_per_second": tokens_per_second,
                "model_flops_per_token": flops,
                "model_flops": state.global_step * self.tokens_per_step * flops if flops is not None else None,
                "peak_tflops": self.peak_tflops,
                "mfu": model_flops_utilization(tokens_per_second, flops, self.peak_tflops, self.devices)
                if flops is not None
                else None,
                "log_history": state.log_history,
            },
        )


def main(argv: list[str] | None = None):
    from ..training import parse_pretrain_arguments, pretrain

    arguments = parse_pretrain_arguments(argv)
    callbacks = []
    if LOG_ENVIRONMENT in os.environ:
        callbacks.append(TrainingLogCallback.for_arguments(os.environ[LOG_ENVIRONMENT], arguments))
    return pretrain(**arguments, callbacks=callbacks)


if __name__ == "__main__":
    from ..cli import exit_on_user_error

    exit_on_user_error(main, "hf_posenc.study.pretrain_job")
