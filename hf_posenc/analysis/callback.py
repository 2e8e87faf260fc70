"""A Trainer callback that measures the locality and symmetry of attention while a model trains (and the attention
sinks, the full-range distance profile and, for rotary encodings, the frequency bands: see
`hf_posenc.analysis.metrics.summarize`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import Trainer

from ..logging_callback import TrainerLoggingCallback
from ..results import PLOTS_FOLDER
from .log_keys import DEFAULT_PREFIX, metric_key, parse_metric_key
from .model_attention import summarize_model
from .summary import SUMMARY_METRICS

__all__ = ["CURVES_PLOT", "LocalitySymmetryCallback", "flatten_for_logging", "probe_batch_from_dataset"]

# The file the callback draws at the end of training, in the run's PLOTS_FOLDER (the model card shows it).
CURVES_PLOT = "locality_symmetry_curves.png"


def probe_batch_from_dataset(dataset, num_sequences: int, pad_token_id: int = 0) -> dict[str, torch.Tensor]:
    """The first `num_sequences` rows of a tokenized dataset as one right-padded batch (no MLM masking: the
    metrics describe attention on clean text)."""
    count = min(num_sequences, len(dataset))
    if count == 0:
        raise ValueError("The probe dataset is empty; pass a dataset with at least one tokenized sequence.")
    rows = [dataset[index] for index in range(count)]
    length = max(len(row["input_ids"]) for row in rows)
    input_ids = torch.full((count, length), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((count, length), dtype=torch.long)
    for index, row in enumerate(rows):
        ids = torch.as_tensor(row["input_ids"], dtype=torch.long)
        input_ids[index, : len(ids)] = ids
        attention_mask[index, : len(ids)] = torch.as_tensor(row.get("attention_mask", [1] * len(ids)))[: len(ids)]
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def distance_bin_name(low: int, high: int) -> str:
    """The logged name of a log bin of signed distances [low, high]: distance_left_4-7, distance_self,
    distance_right_1, ..."""
    if low == high == 0:
        return "distance_self"
    side, near, far = ("left", -high, -low) if high < 0 else ("right", low, high)
    return f"distance_{side}_{near}" if near == far else f"distance_{side}_{near}-{far}"


def flatten_for_logging(
    summary: dict[str, Any], per_head: bool = False, prefix: str = DEFAULT_PREFIX
) -> dict[str, float]:
    """Scalars named posenc/locality, posenc/layer_0/symmetry, ... (and posenc/layer_0/head_1/... if per_head) for
    every metric of the summary (its "metrics": the sinks and rotary bands too), and the log-binned distance profile
    as posenc/distance_left_4-7, ..., named by `hf_posenc.analysis.log_keys.metric_key`; undefined (None) values are
    left out."""
    names = list(summary.get("metrics") or SUMMARY_METRICS)
    logs = {metric_key(name, prefix=prefix): summary[name] for name in names}
    for name in names:
        for layer, value in enumerate(summary["per_layer"][name]):
            logs[metric_key(name, layer, prefix=prefix)] = value
            if per_head:
                for head, head_value in enumerate(summary["per_head"][name][layer]):
                    logs[metric_key(name, layer, head, prefix=prefix)] = head_value
    bins = summary.get("distance_bins") or {}
    for (low, high), value in zip(bins.get("ranges", ()), bins.get("mean", ())):
        logs[metric_key(distance_bin_name(low, high), prefix=prefix)] = value
    return {key: float(value) for key, value in logs.items() if value is not None}


def split_for_console(
    logs: dict[str, float], prefix: str = DEFAULT_PREFIX
) -> tuple[dict[str, float], dict[str, float]]:
    """(what goes through `trainer.log`, so to the console and log_history as well as the reporters; what goes to
    TensorBoard only). The first holds every metric's overall value and the per-layer (per-head) values of locality
    and both symmetries, as before the sinks and bands existed; the second the per-layer values of the newer
    metrics and the log-binned profile, which would flood the progress bar."""
    headline, detail = {}, {}
    for key, value in logs.items():
        named = parse_metric_key(key, prefix)
        shown = named is None or named.metric in SUMMARY_METRICS
        shown = shown or (named.layer is None and not named.metric.startswith("distance_"))
        (headline if shown else detail)[key] = value
    return headline, detail


def _is_per_layer(key: str) -> bool:
    named = parse_metric_key(key)
    return named is not None and named.layer is not None


class LocalitySymmetryCallback(TrainerLoggingCallback):
    """Logs the locality and both symmetries of attention (overall and per layer, optionally per head) every
    `every_n_steps` optimizer steps (default: each logging step) and at the last step, on the main process only.

    The overall metrics go through `trainer.log`, so they land in `trainer.state.log_history` and in every reporter
    (TensorBoard, ...). Changing `logs` in `on_log` would not reach the reporters, which run before user
    callbacks; that is why the callback needs the trainer, and `install` is the way to add it:

        trainer = Trainer(...)
        LocalitySymmetryCallback.install(trainer, probe_dataset=eval_dataset)

    Each measurement runs a fixed probe batch (the first `num_probe_sequences` rows of `probe_dataset`, or
    `probe_batch` given directly) through the unwrapped model in eval mode without gradients. With
    `heatmap_every=K`, a layer x head heatmap of each metric is drawn every K measurements, and at the end of
    training a plot of the metrics against the step (both need matplotlib; PNGs go to
    `<output_dir>/<hf_posenc.results.PLOTS_FOLDER>`, the curves as `CURVES_PLOT`). `summaries` keeps every measurement
    as (step, summary).

    Attention sinks are measured for `special_token_ids` (``{"cls": id, "sep": id}``; by default the ids of the
    trainer's tokenizer, its `processing_class`; ``{}`` for none), the frequency bands for hf_posenc rotary
    encodings. `trainer.log` gets every metric's overall value only, so the console shows one short line per
    measurement; the per-layer values of locality and the symmetries join the same `log_history` entry (the curve
    plots and the results read them there). Every per-layer value (with the sinks, bands and the log-binned
    distance profile) goes to the TensorBoard reporter directly (under ``train/posenc/...``, as the Trainer files
    its own logs) when the run reports to TensorBoard, and all are in `summaries`; other reporters (wandb, ...)
    get the overall values.
    """

    install_arguments = "probe_dataset=..."

    def __init__(
        self,
        probe_dataset=None,
        probe_batch: dict[str, torch.Tensor] | None = None,
        num_probe_sequences: int = 8,
        every_n_steps: int | None = None,
        per_head: bool = False,
        heatmap_every: int | None = None,
        final_plot: bool = True,
        special_token_ids: dict[str, Any] | None = None,
    ):
        if (probe_dataset is None) == (probe_batch is None):
            raise ValueError(
                "Pass exactly one of probe_dataset (a tokenized dataset) or probe_batch (a dict of tensors)."
            )
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1 (or None for each logging step); got {every_n_steps}.")
        if num_probe_sequences < 1:
            raise ValueError(f"num_probe_sequences must be >= 1; got {num_probe_sequences}.")
        if heatmap_every is not None and heatmap_every < 1:
            raise ValueError(f"heatmap_every must be >= 1 (or None for no heatmaps); got {heatmap_every}.")
        self.probe_dataset = probe_dataset
        self.probe_batch = probe_batch
        self.num_probe_sequences = num_probe_sequences
        self.every_n_steps = every_n_steps
        self.per_head = per_head
        self.heatmap_every = heatmap_every
        self.final_plot = final_plot
        self.special_token_ids = special_token_ids
        self.trainer: Trainer | None = None
        self.summaries: list[tuple[int, dict[str, Any]]] = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.require_trainer()
        if self.special_token_ids is None:
            tokenizer = getattr(self.trainer, "processing_class", None)
            self.special_token_ids = {
                "cls": getattr(tokenizer, "cls_token_id", None),
                "sep": getattr(tokenizer, "sep_token_id", None),
            }
        if self.probe_batch is None:
            pad_token_id = getattr(model.config, "pad_token_id", None) or 0
            self.probe_batch = probe_batch_from_dataset(self.probe_dataset, self.num_probe_sequences, pad_token_id)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        interval = self.every_n_steps or args.logging_steps
        is_last_step = state.global_step >= state.max_steps
        if not (state.global_step % interval == 0 or is_last_step) or not state.is_world_process_zero:
            return
        if self.summaries and self.summaries[-1][0] == state.global_step:
            return
        unwrapped = self.trainer.accelerator.unwrap_model(model)
        try:
            summary = summarize_model(unwrapped, self.probe_batch, self.special_token_ids)
        except ValueError as error:
            # Weights gone NaN or inf (a diverged run) make every attention row NaN; the metrics' own message about
            # attention probabilities would hide that training is what failed.
            weights_finite = all(bool(parameter.isfinite().all()) for parameter in unwrapped.parameters())
            if weights_finite and "non-finite" not in str(error):
                raise
            raise RuntimeError(
                f"the model's attention is not finite at step {state.global_step} (training diverged?)"
                f"{'' if weights_finite else '; its weights hold NaN or inf'}; lower --learning_rate (now "
                f"{args.learning_rate:g}), warm up longer or clip gradients (--max_grad_norm), and resume from a "
                "checkpoint saved before it."
            ) from error
        self.summaries.append((state.global_step, summary))
        headline, detail = split_for_console(flatten_for_logging(summary, self.per_head))
        # The console shows overall values only: per-layer dictionaries drowned the progress bar. The per-layer values
        # of the paper's metrics still join the same log_history entry (the curve plots and results read them there)
        # and TensorBoard.
        per_layer = {key: value for key, value in headline.items() if _is_per_layer(key)}
        # trainer.log clears control.should_log, which would cancel the Trainer's own loss log of this step.
        should_log = control.should_log
        self.trainer.log({key: value for key, value in headline.items() if key not in per_layer})
        control.should_log = should_log
        state.log_history[-1].update(per_layer)
        self.write_to_tensorboard({**per_layer, **detail}, state.global_step)
        if self.heatmap_every and len(self.summaries) % self.heatmap_every == 0:
            self.draw_heatmaps(args.output_dir, state.global_step, summary)
        if is_last_step and self.final_plot:
            self.draw_curves(args.output_dir, state.log_history)

    def write_to_tensorboard(self, scalars: dict[str, float], step: int) -> None:
        """Write `scalars` with the writer of each TensorBoard reporter of the trainer (transformers'
        TensorBoardCallback opens it on the first log, which `trainer.log` has just made); "train/" in front, as
        the reporter files the Trainer's own logs."""
        for reporter in self.trainer.callback_handler.callbacks:
            writer = getattr(reporter, "tb_writer", None)
            if writer is None or not scalars:
                continue
            for key, value in scalars.items():
                writer.add_scalar(f"train/{key}", value, step)
            writer.flush()

    def plot_dir(self, output_dir: str) -> Path:
        folder = Path(output_dir) / PLOTS_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def draw_heatmaps(self, output_dir: str, step: int, summary: dict[str, Any]) -> None:
        from . import plots

        for name in summary.get("metrics") or SUMMARY_METRICS:
            plots.plot_head_heatmap(summary, self.plot_dir(output_dir) / f"{name}_step{step}.png", metric=name)

    def draw_curves(self, output_dir: str, log_history: list[dict]) -> None:
        try:
            from . import plots

            plots.plot_training_curves(log_history, self.plot_dir(output_dir) / CURVES_PLOT)
        except ImportError:
            pass  # matplotlib is an optional extra; the scalars are in the logs either way
