"""Pretrain a BERT-style masked language model with one positional encoding, as a library function.

`pretrain(model_args, data_args, run_args, training_args, variant_args=None, callbacks=())` checks every argument
before anything is downloaded, reads and packs the text, trains with `transformers.Trainer` (under
`accelerate launch` too), saves the model and tokenizer in ``training_args.output_dir``, evaluates, writes
`posenc_results.json` and, with ``push_to_hub``, publishes a Hub-ready export. It returns the `PretrainResult` it
wrote. A user error (a bad argument, a corpus too small for one batch, an output folder with files in it) is a
ValueError, FileNotFoundError, FileExistsError or PermissionError with a one-line message that says what to change.

Build the arguments from keyword arguments or from flags:

    from hf_posenc.training import pretrain, pretrain_arguments, parse_pretrain_arguments

    result = pretrain(**pretrain_arguments(variant="alibi", corpus="stdlib", output_dir="out/alibi", max_steps=200))
    result = pretrain(**parse_pretrain_arguments(["--variant", "alibi", "--output_dir", "out/alibi"]))
    print(result.perplexity, result.locality)

A run stopped by a callback before its last step (`control.should_training_stop`) keeps its checkpoints, writes
nothing else and returns a result whose ``train_steps`` is the step it stopped at and whose ``eval_loss`` is None.

``resume_from_checkpoint`` trains the steps left after the checkpoint, and ``train_loss`` is still the mean over the
whole run: the losses Trainer logged up to the checkpoint (each weighted by the steps since the log before it) with
this process's. A checkpoint at the last step trains nothing (Trainer alone would train one step past
``max_steps``): when ``posenc_results.json`` already records that step, it is kept as it is and returned; otherwise
(the run stopped between its last checkpoint and its results) the checkpoint's model is saved, evaluated and
measured, and recorded with the mean of its logged losses.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
from transformers import AutoModelForMaskedLM, Trainer, TrainerCallback, TrainerState, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from .. import data
from ..analysis.callback import LocalitySymmetryCallback, probe_batch_from_dataset
from ..analysis.metrics import attention_results
from ..analysis.model_attention import summarize_model
from ..results import PLOTS_FOLDER, PretrainResult, json_safe, perplexity
from ..storage import share_weights_like_config
from .checks import check_arguments, check_data
from .corpus import load_pretraining_data
from .guards import CheckpointSpaceGuard, DivergenceGuard
from .model_config import build_config
from .throughput import ThroughputCallback


class PretrainingTrainer(CheckpointSpaceGuard, Trainer):
    """A Trainer whose checkpoint saves clean up after a full disk (`CheckpointSpaceGuard`), whose saved weights
    share the folder's permissions, and whose evaluation keeps the last, partial batch. `dataloader_drop_last` keeps training batches full;
    applied to evaluation too, it would drop a validation split smaller than one batch entirely, and with it the
    evaluation loss."""

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        super()._save(output_dir, state_dict)
        share_weights_like_config(output_dir or self.args.output_dir)  # the final model and every checkpoint

    def get_eval_dataloader(self, eval_dataset=None):
        # Trainer reads the flag from its arguments when it builds a loader, and offers no other switch for it.
        drop_last, self.args.dataloader_drop_last = self.args.dataloader_drop_last, False
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.args.dataloader_drop_last = drop_last


# What a pretraining run writes into its --output_dir (besides the model's own code files, *.py).
RUN_OUTPUTS = (
    "checkpoint-*",
    "runs",
    PLOTS_FOLDER,
    PretrainResult.FILE_NAME,
    "config.json",
    "*.safetensors",
    "training_args.bin",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "configuration_posenc.py",
    "modeling_posenc.py",
    "positional*.py",
)


def first_blocks(corpus, data_args):
    """The corpus cut to ``--max_train_samples``/``--max_eval_samples`` blocks, as run_mlm.py cuts its datasets."""
    for split, limit in (("train", data_args.max_train_samples), ("validation", data_args.max_eval_samples)):
        if limit is None:
            continue
        blocks = getattr(corpus, split)
        if isinstance(blocks, datasets.IterableDataset):
            setattr(corpus, split, blocks.take(limit))
        elif limit < len(blocks):
            setattr(corpus, split, blocks.select(range(limit)))
    return corpus


def clear_earlier_run(output_dir: Path) -> list[str]:
    """With --overwrite_output_dir, remove what an earlier run wrote there (its checkpoints, TensorBoard events,
    plots, model and results), so two runs' curves and checkpoints never mix; anything else is left and named."""
    if not output_dir.is_dir():
        return []
    removed = sorted({path for pattern in RUN_OUTPUTS for path in output_dir.glob(pattern)})
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    kept = sorted(entry.name for entry in output_dir.iterdir())
    if removed:
        print(
            f"--overwrite_output_dir: removed the earlier run's {', '.join(path.name for path in removed)} from "
            f"{output_dir}" + (f"; left {', '.join(kept)} (not pretraining's)" if kept else ""),
            flush=True,
        )
    return [path.name for path in removed]


def pretrain(
    model_args,
    data_args,
    run_args,
    training_args: TrainingArguments,
    variant_args=None,
    callbacks: tuple[TrainerCallback, ...] | list[TrainerCallback] = (),
) -> PretrainResult:
    """Pretrain one model; see the module docstring. `variant_args` is None when no variant parameter is set;
    `callbacks` are added to the Trainer."""
    if (
        model_args.model_name_or_path
        and data_args.tokenizer_name is None
        and Path(model_args.model_name_or_path).is_dir()
    ):
        data_args.tokenizer_name = model_args.model_name_or_path  # continue with the model's own tokenizer
    check_arguments(model_args, variant_args, data_args, run_args, training_args)
    if run_args.overwrite_output_dir and not training_args.resume_from_checkpoint and training_args.process_index == 0:
        clear_earlier_run(Path(training_args.output_dir))
    set_seed(training_args.seed)
    with training_args.main_process_first(desc="corpus and tokenizer"):
        corpus = first_blocks(load_pretraining_data(data_args, seed=training_args.seed), data_args)
    num_train_blocks = None if corpus.streaming else len(corpus.train)  # a stream's length is not known
    check_data(data_args, training_args, num_train_blocks, len(corpus.validation))
    config = build_config(model_args, variant_args, len(corpus.tokenizer), corpus.tokenizer.pad_token_id)
    # The longest block length the model has been trained on (by this run or, when continuing, an earlier one),
    # saved in config.json with the model: `hf-posenc extrapolate` reads it.
    config.trained_max_length = max(data_args.max_seq_length, getattr(config, "trained_max_length", None) or 0)
    if model_args.model_name_or_path is None:
        model = AutoModelForMaskedLM.from_config(config)
    else:
        if len(corpus.tokenizer) != config.vocab_size:
            raise ValueError(
                f"the tokenizer has {len(corpus.tokenizer)} tokens but {model_args.model_name_or_path} was trained with "
                f"{config.vocab_size}; pass --tokenizer_name with the tokenizer the model was pretrained with."
            )
        model = AutoModelForMaskedLM.from_pretrained(model_args.model_name_or_path, config=config)
    if training_args.local_process_index == 0:
        print(
            f"{model_args.variant} ({model_args.size or model_args.model_name_or_path}): "
            f"{model.num_parameters() / 1e6:.2f}M parameters, "
            f"{'streamed' if corpus.streaming else len(corpus.train)} training and {len(corpus.validation)} "
            "validation blocks of "
            f"{data_args.max_seq_length} tokens"
        )

    # hf_posenc.hub publishes after training (an export with the card), so Trainer must not push on its own.
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False
    try:
        trainer, metrics_callback = _trainer(model, corpus, data_args, run_args, training_args, callbacks)
        run = (model_args, data_args, corpus)
        checkpoint = _checkpoint_to_resume(training_args)
        resumed = _checkpoint_state(checkpoint)
        kept = None  # the results of a finished run, when this one resumes its last step
        if resumed is not None and resumed.global_step >= _max_steps(trainer):
            # Trainer checks max_steps only after a step, so resuming here would train one step more.
            finished = True
            kept = _recorded_result(training_args.output_dir, model_args.variant, resumed.global_step)
            if kept is not None:
                print(f"{checkpoint} is the last step ({resumed.global_step}) of a finished run: kept its results")
                result = kept
            else:
                result = _finish_from_checkpoint(trainer, checkpoint, resumed, run, run_args)
        else:
            train_result = trainer.train(resume_from_checkpoint=checkpoint)
            finished = trainer.state.global_step >= trainer.state.max_steps
            eval_loss = None
            if finished:
                trainer.save_model()  # before evaluating: whatever happens next, the trained model is kept
                eval_loss = trainer.evaluate().get("eval_loss")
            summaries = metrics_callback.summaries if metrics_callback is not None else []
            result = _result(
                trainer,
                run,
                train_loss=_run_train_loss(resumed, trainer.state.global_step, train_result.training_loss),
                eval_loss=eval_loss,
                summary=summaries[-1][1] if summaries else None,
            )
    finally:
        training_args.push_to_hub = push_to_hub

    if not finished:  # stopped early (by a callback): the checkpoints are the run's record
        return result
    print(f"process {training_args.process_index}/{training_args.world_size} finished {result.train_steps} steps")
    if trainer.is_world_process_zero():
        if result is not kept:
            result.save(training_args.output_dir)
        print(json.dumps({key: value for key, value in result.to_dict().items() if key != "per_layer"}, indent=2))
        if push_to_hub:
            publish(training_args)
    return result


def _result(trainer, run, *, train_loss, eval_loss, summary) -> PretrainResult:
    """The `PretrainResult` of the run in `trainer` at its current step; `run` is (model_args, data_args, corpus),
    `summary` the last attention measurement (None when there was none)."""
    model_args, data_args, corpus = run
    return PretrainResult(
        variant=model_args.variant,
        max_seq_length=data_args.max_seq_length,
        train_steps=trainer.state.global_step,
        train_loss=train_loss,
        eval_loss=eval_loss,
        perplexity=perplexity(eval_loss) if eval_loss is not None else None,
        dataset=corpus.dataset_description,
        tokenizer=corpus.tokenizer_description,
        **(json_safe(attention_results(summary)) if summary is not None else {}),
    )


def _checkpoint_to_resume(training_args: TrainingArguments) -> str | None:
    """The checkpoint folder ``resume_from_checkpoint`` names (True: the last one in ``output_dir``), or None."""
    checkpoint = training_args.resume_from_checkpoint
    if checkpoint is True:
        checkpoint = get_last_checkpoint(training_args.output_dir)
        if checkpoint is None:
            raise ValueError(f"--resume_from_checkpoint: {training_args.output_dir} holds no checkpoint-N folder.")
    return str(checkpoint) if checkpoint else None


def _checkpoint_state(checkpoint: str | None) -> TrainerState | None:
    """The Trainer state a checkpoint was saved with (None without a checkpoint or its trainer_state.json, which
    Trainer then resumes at step 0)."""
    if checkpoint is None or not (Path(checkpoint) / "trainer_state.json").is_file():
        return None
    return TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))


def _max_steps(trainer: Trainer) -> int:
    """The optimizer steps this run takes in all, as Trainer counts them (`max_steps`, or the epochs' worth)."""
    if trainer.args.max_steps > 0:
        return trainer.args.max_steps
    return trainer.set_initial_training_values(trainer.args, trainer.get_train_dataloader())[-1]


def _recorded_result(output_dir: str, variant: str, step: int) -> PretrainResult | None:
    """The results ``output_dir`` already holds for `variant` trained to `step`, or None."""
    if not PretrainResult.exists_in(output_dir):
        return None
    recorded = PretrainResult.load(output_dir)
    return recorded if (recorded.variant, recorded.train_steps) == (variant, step) else None


def _logged_losses(log_history: list[dict], up_to_step: int) -> tuple[float, int]:
    """The sum of the training losses Trainer logged up to `up_to_step`, each times the steps since the log
    before it (each log is the mean of those steps), and how many steps they cover."""
    total, previous = 0.0, 0
    for entry in log_history:
        if "loss" in entry and previous < entry["step"] <= up_to_step:
            total += entry["loss"] * (entry["step"] - previous)
            previous = entry["step"]
    return total, previous


def _run_train_loss(resumed: TrainerState | None, step: int, process_loss: float) -> float:
    """The mean training loss of the run up to `step`: Trainer's `process_loss` covers the steps of this process
    only, so a resumed run adds the losses logged before its checkpoint."""
    if resumed is None:
        return process_loss
    earlier_total, earlier_steps = _logged_losses(resumed.log_history, resumed.global_step)
    trained = step - resumed.global_step
    if earlier_steps < resumed.global_step:
        print(
            f"train_loss averages {earlier_steps + trained} of the {step} steps: no loss was logged for steps "
            f"{earlier_steps + 1} to {resumed.global_step} before the checkpoint (log on its steps to count them)"
        )
    if earlier_steps + trained == 0:
        return process_loss
    return (earlier_total + process_loss * trained) / (earlier_steps + trained)


def _finish_from_checkpoint(trainer, checkpoint: str, resumed: TrainerState, run, run_args) -> PretrainResult:
    """The end of a run whose last step is in `checkpoint` but whose results were never written: its model is
    saved, evaluated and measured like a run that has just trained, without training a step."""
    trainer._load_from_checkpoint(checkpoint)  # the weights, as Trainer loads them when it resumes
    trainer.state = resumed
    trainer.save_model()
    eval_loss = trainer.evaluate().get("eval_loss")
    summary = None
    if run_args.posenc_metrics and trainer.is_world_process_zero():  # as LocalitySymmetryCallback measures
        model, validation = trainer.accelerator.unwrap_model(trainer.model), run[2].validation
        pad_token_id = getattr(model.config, "pad_token_id", None) or 0
        probe = probe_batch_from_dataset(validation, run_args.posenc_probe_sequences, pad_token_id)
        summary = summarize_model(model, probe)
    total, steps = _logged_losses(resumed.log_history, resumed.global_step)
    if steps < resumed.global_step:
        print(f"train_loss averages the {steps} of {resumed.global_step} steps whose losses were logged")
    print(f"{checkpoint} is the last step ({resumed.global_step}) of the run: evaluated it without training")
    return _result(trainer, run, train_loss=total / steps if steps else None, eval_loss=eval_loss, summary=summary)


def _trainer(model, corpus, data_args, run_args, training_args, callbacks):
    """The Trainer of a run, with masks that differ by epoch (and resume exactly), the throughput/MFU log and (unless
    turned off) the locality/symmetry callback."""
    if corpus.streaming:
        # Each process reads its own part of the stream: accelerate shards a datasets.IterableDataset by file when
        # there are at least as many files as processes (as split_dataset_by_node does), otherwise each process
        # reads the stream and keeps its own batches. (With the default, the main process would read everything.)
        training_args.accelerator_config.dispatch_batches = False
    collator = data.EpochMaskingCollator(
        corpus.tokenizer, mlm_probability=data_args.mlm_probability, mask_seed=training_args.seed
    )
    trainer = PretrainingTrainer(
        model=model,
        args=training_args,
        train_dataset=corpus.train,
        eval_dataset=corpus.validation,
        data_collator=collator,
        processing_class=corpus.tokenizer,
        callbacks=[collator.epoch_callback(), *callbacks],
    )
    DivergenceGuard.install(trainer)  # before the metrics callback, whose measurement of a diverged model fails
    # Before the metrics callback too: its measurement then runs after this step's clock has stopped.
    ThroughputCallback.install(
        trainer,
        seq_len=data_args.max_seq_length,
        mlm_probability=data_args.mlm_probability,
        peak_tflops=run_args.peak_tflops,
    )
    metrics_callback = None
    if run_args.posenc_metrics:
        metrics_callback = LocalitySymmetryCallback.install(
            trainer,
            probe_dataset=corpus.validation,
            num_probe_sequences=run_args.posenc_probe_sequences,
            every_n_steps=run_args.posenc_every_n_steps,
            per_head=run_args.posenc_per_head,
            heatmap_every=run_args.posenc_heatmap_every,
        )
    return trainer, metrics_callback


def publish(training_args: TrainingArguments) -> str:
    """Export the run in ``output_dir`` (model, tokenizer, card, curves) to ``output_dir/hub_export`` and upload it
    to ``hub_model_id``; returns the repository's URL."""
    from .. import hub  # the Hub client is needed only here

    output_dir = Path(training_args.output_dir)
    folder = hub.export_run(output_dir, output_dir / "hub_export", repo_id=training_args.hub_model_id, overwrite=True)
    url = hub.push(
        folder, training_args.hub_model_id, private=bool(training_args.hub_private_repo), token=training_args.hub_token
    )
    print(f"pushed to {url}")
    return url
