"""Training throughput and model FLOPs utilisation (MFU) in the training logs.

Model FLOPs per token (`model_flops_per_token`) count the matrix multiplications of one training step, forward and
backward (the backward pass costs twice the forward: a gradient for the input and one for the weight), with
D = hidden_size, L = layers, I = intermediate_size, V = vocabulary, T = sequence length and p = the share of tokens
the MLM head runs on (hf_posenc's sparse head: the masked tokens, ``mlm_probability``; 1 for a dense head):

    6 x [L x (4 D^2 + 2 D I) + p x (D^2 + D V)] + 12 x L x D x T

- ``L x (4 D^2 + 2 D I)``: the weights of every layer's fused query/key/value projection (3 D^2), attention output
  (D^2) and feed-forward (2 D I), one multiply-add per weight and token; x 2 FLOPs per multiply-add x 3 for the
  forward and backward passes gives the 6 of the "6 N" rule (Kaplan et al. 2020; PaLM, Chowdhery et al. 2022,
  appendix B).
- ``p x (D^2 + D V)``: the MLM head's dense layer and the vocabulary projection (tied to the word embeddings), on
  the tokens it runs on.
- ``12 x L x D x T``: the attention matrices: Q K^T and the weighted sum of values cost T x D multiply-adds each
  per token and layer, x 2 x 3 (PaLM's appendix B; MosaicBERT counts them the same way). T is the block length: a
  padded or document-masked key still costs its product.

Not counted: embeddings (lookups), biases, normalisation, activations, softmax, dropout, and the positional
encodings' own work: rotations and biases are elementwise; the score route's relative terms (shaw, huang, deberta),
fire's bias network and the forget gate's projections are extra matrix products that this formula leaves out, so
every variant of one size shares one numerator and their MFU ratios are their throughput ratios. For those variants
MFU understates how busy the device was (`tests/training/test_throughput.py` counts each variant's products).

MFU = tokens/s x model FLOPs per token / (peak FLOP/s of one device x devices). The peak comes from
`PEAK_BF16_DENSE_TFLOPS` (the dense bf16 tensor-core figure of the vendor's data sheet, whatever precision the run
trains in) or from ``--peak_tflops``; on a CPU or a device not in the table MFU is not reported.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import torch

from ..logging_callback import TrainerLoggingCallback

__all__ = [
    "PEAK_BF16_DENSE_TFLOPS",
    "AcceleratorPeak",
    "ThroughputCallback",
    "check_peak_tflops",
    "device_peak_tflops",
    "encoder_flops_per_token",
    "model_flops_per_token",
    "model_flops_utilization",
    "peak_tflops_for_device_name",
]

TOKENS_PER_SECOND = "throughput/tokens_per_second"
MFU = "throughput/mfu"


@dataclass(frozen=True)
class AcceleratorPeak:
    """One accelerator's dense (no structured sparsity) bf16 tensor-core peak, matched by its CUDA device name."""

    name: str
    name_pattern: str  # a regular expression searched in torch.cuda.get_device_name()
    tflops: float
    source: str


# The data sheets print the sparse figure with a footnote; the dense figure is half of it. More specific names first:
# the first match wins, and a device no pattern matches (H100 NVL, GH200, ...) has no peak rather than a guess.
PEAK_BF16_DENSE_TFLOPS = (
    AcceleratorPeak("H100 PCIe", r"\bH100\b.*PCIe", 756.0, "NVIDIA H100 Tensor Core GPU data sheet: 1,513 sparse"),
    AcceleratorPeak("H100 SXM", r"\bH100\b(?!.*(PCIe|NVL))", 989.0, "NVIDIA H100 data sheet: 1,979 sparse"),
    AcceleratorPeak("H200 SXM", r"\bH200\b(?!.*NVL)", 989.0, "NVIDIA H200 Tensor Core GPU data sheet: 1,979 sparse"),
    AcceleratorPeak("A100", r"\bA100\b", 312.0, "NVIDIA A100 Tensor Core GPU data sheet: 312 dense, 624 sparse"),
    AcceleratorPeak("L40S", r"\bL40S\b", 362.05, "NVIDIA L40S data sheet: 362.05 dense, 733 sparse"),
    AcceleratorPeak("L4", r"\bL4\b", 121.0, "NVIDIA L4 Tensor Core GPU data sheet: 242 sparse"),
    AcceleratorPeak("A10", r"\bA10\b", 125.0, "NVIDIA A10 Tensor Core GPU data sheet: 125 dense, 250 sparse"),
)


def encoder_flops_per_token(
    *,
    hidden_size: int,
    num_layers: int,
    feed_forward_weights: int,
    vocab_size: int,
    seq_len: int,
    head_fraction: float,
) -> float:
    """Training FLOPs per token of a BERT-style encoder whose layers hold 4 D^2 attention weights and
    `feed_forward_weights` feed-forward weights (2 D I for BERT's MLP, 3 D I for a gated one), with the MLM head
    run on `head_fraction` of the tokens; see the module docstring."""
    dense_weights = num_layers * (4 * hidden_size**2 + feed_forward_weights)
    head_weights = head_fraction * (hidden_size**2 + hidden_size * vocab_size)
    return 6.0 * (dense_weights + head_weights) + 12.0 * num_layers * hidden_size * seq_len


def model_flops_per_token(config, seq_len: int, mlm_probability: float) -> float:
    """Training FLOPs per token of an hf_posenc masked LM (its sparse head runs on the `mlm_probability` share of
    tokens that are masked) on blocks of `seq_len` tokens."""
    return encoder_flops_per_token(
        hidden_size=config.hidden_size,
        num_layers=config.num_hidden_layers,
        feed_forward_weights=2 * config.hidden_size * config.intermediate_size,
        vocab_size=config.vocab_size,
        seq_len=seq_len,
        head_fraction=mlm_probability,
    )


def peak_tflops_for_device_name(device_name: str) -> float | None:
    """The dense bf16 peak (TFLOP/s) of the accelerator named `device_name` in `PEAK_BF16_DENSE_TFLOPS`, or None."""
    for accelerator in PEAK_BF16_DENSE_TFLOPS:
        if re.search(accelerator.name_pattern, device_name):
            return accelerator.tflops
    return None


def device_peak_tflops(device: torch.device | str) -> float | None:
    """The table's peak for a CUDA `device`; None for a CPU, another kind of device or an unknown GPU."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return peak_tflops_for_device_name(torch.cuda.get_device_name(device))


def check_peak_tflops(peak_tflops: float | None) -> None:
    if peak_tflops is not None and not (math.isfinite(peak_tflops) and peak_tflops > 0):
        raise ValueError(
            f"--peak_tflops must be a positive number of TFLOP/s per device (e.g. 989 for an H100 SXM in bf16); "
            f"got {peak_tflops}. Leave it out to use the table of known accelerators."
        )


def model_flops_utilization(
    tokens_per_second: float | None, flops_per_token: float, peak_tflops: float | None, devices: int = 1
) -> float | None:
    """Achieved model FLOP/s over the peak of `devices` devices of `peak_tflops` each; None without a peak or a
    throughput."""
    if peak_tflops is None or tokens_per_second is None:
        return None
    return tokens_per_second * flops_per_token / (peak_tflops * 1e12 * devices)


def _synchronize(device: torch.device) -> None:
    """Wait for the device's queued kernels, so that the clock read next includes them."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type != "cpu" and torch.accelerator.is_available():
        torch.accelerator.synchronize()


class ThroughputCallback(TrainerLoggingCallback):
    """Logs ``throughput/tokens_per_second`` and ``throughput/mfu`` at each logging step, over the steps since the
    previous log, through `trainer.log` (so they reach log_history and every reporter, TensorBoard included). MFU
    is left out when the peak is unknown (`device_peak_tflops`) and not given.

    Tokens per optimizer step = batch x gradient accumulation x processes x `seq_len` (full packed
    blocks: pretraining drops the last partial batch). The clock counts the training steps (data loading, forward,
    backward, optimizer) and leaves out what runs between them and reports itself: logging, the in-training
    attention measurement, evaluation and checkpoint saves. On a logging, evaluation or saving step the device is
    synchronised before the clock is read (Trainer reads the loss there anyway), so queued kernels are counted in
    their step. Install it with ``ThroughputCallback.install(trainer, seq_len=..., mlm_probability=...)``."""

    install_arguments = "seq_len=..., mlm_probability=..."

    def __init__(self, seq_len: int, mlm_probability: float, peak_tflops: float | None = None):
        check_peak_tflops(peak_tflops)
        self.seq_len = seq_len
        self.mlm_probability = mlm_probability
        self.given_peak_tflops = peak_tflops
        self.flops_per_token: float | None = None
        self.peak_tflops: float | None = None  # per device, once training has begun
        self.devices = 1
        self.tokens_per_step = 0
        self._mark: float | None = None  # when the clock last stopped: a step's end or a report's end
        self._window_seconds = 0.0
        self._window_first_step = 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.require_trainer()
        self.flops_per_token = model_flops_per_token(model.config, self.seq_len, self.mlm_probability)
        self.peak_tflops = self.given_peak_tflops or device_peak_tflops(args.device)
        self.devices = args.world_size * max(1, args.n_gpu)  # n_gpu > 1: one process drives them (DataParallel)
        self.tokens_per_step = args.train_batch_size * args.gradient_accumulation_steps * args.world_size * self.seq_len
        self._window_first_step = state.global_step  # a checkpoint's step when resuming
        self._window_seconds = 0.0
        self._mark = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._mark is None:
            return
        if control.should_log or control.should_evaluate or control.should_save:
            _synchronize(args.device)
        now = time.perf_counter()
        self._window_seconds += now - self._mark
        self._mark = now
        if control.should_log and state.global_step > self._window_first_step:
            logs = self.window_logs(state.global_step)
            self._window_first_step, self._window_seconds = state.global_step, 0.0
            if state.is_world_process_zero and logs:
                should_log = control.should_log  # trainer.log clears it, which would cancel the Trainer's loss log
                self.trainer.log(logs)
                control.should_log = should_log
        self._mark = time.perf_counter()

    def window_logs(self, step: int) -> dict[str, float]:
        """Throughput (and MFU where the peak is known) of the steps since the last log, up to `step`."""
        if self._window_seconds <= 0:
            return {}
        tokens_per_second = (step - self._window_first_step) * self.tokens_per_step / self._window_seconds
        logs = {TOKENS_PER_SECOND: tokens_per_second}
        mfu = model_flops_utilization(tokens_per_second, self.flops_per_token, self.peak_tflops, self.devices)
        if mfu is not None:
            logs[MFU] = mfu
        return logs

    def _stop_clock(self) -> None:
        # What ran since the last step's end (a log, an attention measurement, an evaluation, a save) is not training.
        if self._mark is not None:
            self._mark = time.perf_counter()

    def on_log(self, args, state, control, **kwargs):
        self._stop_clock()

    def on_evaluate(self, args, state, control, **kwargs):
        self._stop_clock()

    def on_save(self, args, state, control, **kwargs):
        self._stop_clock()

    def on_train_end(self, args, state, control, **kwargs):
        self._mark = None
