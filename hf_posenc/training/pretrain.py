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
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoModelForMaskedLM, Trainer, TrainerCallback, TrainingArguments, set_seed

from .. import data
from ..analysis.callback import LocalitySymmetryCallback
from ..analysis.metrics import attention_results
from ..results import PretrainResult, json_safe, perplexity
from .checks import check_arguments, check_data
from .corpus import load_pretraining_data
from .model_config import build_config


class PretrainingTrainer(Trainer):
    """A Trainer whose evaluation keeps the last, partial batch. `dataloader_drop_last` keeps training batches full;
    applied to evaluation too, it would drop a validation split smaller than one batch entirely, and with it the
    evaluation loss."""

    def get_eval_dataloader(self, eval_dataset=None):
        # Trainer reads the flag from its arguments when it builds a loader, and offers no other switch for it.
        drop_last, self.args.dataloader_drop_last = self.args.dataloader_drop_last, False
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.args.dataloader_drop_last = drop_last


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
    check_arguments(model_args, variant_args, data_args, run_args, training_args)
    set_seed(training_args.seed)
    with training_args.main_process_first(desc="corpus and tokenizer"):
        corpus = load_pretraining_data(data_args, seed=training_args.seed)
    num_train_blocks = None if corpus.streaming else len(corpus.train)  # a stream's length is not known
    check_data(data_args, training_args, num_train_blocks, len(corpus.validation))
    config = build_config(model_args, variant_args, len(corpus.tokenizer), corpus.tokenizer.pad_token_id)
    model = AutoModelForMaskedLM.from_config(config)
    if training_args.local_process_index == 0:
        print(
            f"{model_args.variant} ({model_args.size}): {model.num_parameters() / 1e6:.2f}M parameters, "
            f"{'streamed' if corpus.streaming else len(corpus.train)} training and {len(corpus.validation)} "
            "validation blocks of "
            f"{data_args.max_seq_length} tokens"
        )

    # hf_posenc.hub publishes after training (an export with the card), so Trainer must not push on its own.
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False
    try:
        trainer, metrics_callback = _trainer(model, corpus, data_args, run_args, training_args, callbacks)
        train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        finished = trainer.state.global_step >= trainer.state.max_steps
        eval_loss = None
        if finished:
            trainer.save_model()  # before evaluating: whatever happens next, the trained model is kept
            eval_loss = trainer.evaluate().get("eval_loss")
    finally:
        training_args.push_to_hub = push_to_hub

    summaries = metrics_callback.summaries if metrics_callback is not None else []
    result = PretrainResult(
        variant=model_args.variant,
        max_seq_length=data_args.max_seq_length,
        train_steps=trainer.state.global_step,
        train_loss=train_result.training_loss,
        eval_loss=eval_loss,
        perplexity=perplexity(eval_loss) if eval_loss is not None else None,
        dataset=corpus.dataset_description,
        tokenizer=corpus.tokenizer_description,
        **(json_safe(attention_results(summaries[-1][1])) if summaries else {}),
    )
    if not finished:  # stopped early (by a callback): the checkpoints are the run's record
        return result
    print(
        f"process {training_args.process_index}/{training_args.world_size} finished {trainer.state.global_step} steps"
    )
    if trainer.is_world_process_zero():
        result.save(training_args.output_dir)
        print(json.dumps({key: value for key, value in result.to_dict().items() if key != "per_layer"}, indent=2))
        if push_to_hub:
            publish(training_args)
    return result


def _trainer(model, corpus, data_args, run_args, training_args, callbacks):
    """The Trainer of a run, with masks that differ by epoch (and resume exactly) and (unless turned off) the
    locality/symmetry callback."""
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
