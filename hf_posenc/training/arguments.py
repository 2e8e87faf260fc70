"""The arguments of pretraining: four small dataclasses next to transformers' `TrainingArguments`.

- `ModelArguments`: the variant, a size preset and free config overrides;
- `VariantArguments`: one optional field per variant parameter (``rope_theta``, ``attenuation_strength``, ...),
  generated from the signatures of the variant configs, so a new variant's parameters need no edit here;
- `DataArguments`: the corpus, the tokenizer, the block length and the masking probability;
- `RunArguments`: the locality/symmetry callback, ``overwrite_output_dir`` and ``peak_tflops`` (for the logged MFU).

`TRAINING_DEFAULTS` are pretraining's defaults for `TrainingArguments` fields (each can still be overridden).
Two ways to build all of them: `parse_pretrain_arguments(argv)` from command-line flags, `pretrain_arguments(**options)`
from keyword arguments; both return a `PretrainArguments` dict to unpack into `hf_posenc.training.pretrain`.
"""

from __future__ import annotations

import difflib
import inspect
import os
import typing
from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any, TypedDict

import torch
from transformers import HfArgumentParser, TrainingArguments

import hf_posenc

from .. import data
from .throughput import check_peak_tflops

# BERT-tiny/mini/small sizes (Turc et al. 2019) and BERT-base, the paper's size.
SIZE_PRESETS = {
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=512),
    "mini": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    "small": dict(hidden_size=512, num_hidden_layers=4, num_attention_heads=8, intermediate_size=2048),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}

# Pretraining's defaults for TrainingArguments fields (flags and keyword arguments still override each of them).
TRAINING_DEFAULTS = dict(
    output_dir="outputs/pretrain",
    max_steps=1500,
    per_device_train_batch_size=32,
    per_device_eval_batch_size=32,
    learning_rate=1e-3,
    weight_decay=0.01,
    warmup_steps=0.1,  # below 1: a share of max_steps (transformers 5), so a short run still reaches its rate
    logging_steps=25,
    eval_strategy="steps",
    eval_steps=500,
    save_steps=500,
    save_total_limit=2,
    report_to=["tensorboard"],
    prediction_loss_only=True,  # the sparse MLM head returns masked-position logits only; keep just the loss
    dataloader_drop_last=True,  # full training batches (evaluation keeps its last, partial batch: see pretrain.py)
    seed=42,
    # Every variant uses every parameter in each step (tested), so DDP skips the extra walk over the autograd graph
    # that Trainer asks for by default, and its warning on every process.
    ddp_find_unused_parameters=False,
)


def training_defaults() -> dict[str, Any]:
    """`TRAINING_DEFAULTS` plus what depends on this machine and launch: pinned memory only with CUDA, and the CPU
    when several processes run without a GPU (`accelerate launch --multi_gpu` on a CPU machine): Trainer must be
    told, which gives it the gloo backend; otherwise each process would train on its own."""
    defaults = {**TRAINING_DEFAULTS, "dataloader_pin_memory": torch.cuda.is_available()}
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available():
        defaults["use_cpu"] = True
    return defaults


@dataclass
class ModelArguments:
    """Which model to pretrain: the variant, a size preset and config overrides."""

    variant: str | None = field(
        default=None, metadata={"help": f"positional encoding: {', '.join(hf_posenc.VARIANTS)} (default rope)"}
    )
    size: str | None = field(default=None, metadata={"help": f"size preset: {', '.join(SIZE_PRESETS)} (default tiny)"})
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "continue pretraining a saved hf_posenc masked LM (a folder, or a Hub id): its config, weights and "
            "(unless --tokenizer_name) tokenizer; the variant and size are then the model's"
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "any config field, e.g. 'num_hidden_layers=6,pre_layer_norm=true' (read like "
            "PretrainedConfig.update_from_string: the field's default gives the value's type)"
        },
    )
    randomized_positions_range: int | None = field(
        default=None,
        metadata={
            "help": "randomized positions (Ruoss et al. 2023): each step draws the block's positions, sorted, from "
            "0..N-1 instead of 0..T-1 (N at least the longest length you will evaluate); for encodings that read "
            "positions (learned, sinusoidal, rope, ...)"
        },
    )

    def __post_init__(self) -> None:
        # A new model defaults to a tiny rope; a saved one brings its own variant and size (see model_config).
        if self.model_name_or_path is None:
            self.variant = self.variant or "rope"
            self.size = self.size or "tiny"


@dataclass
class DataArguments:
    """What to pretrain on: the text, the tokenizer, the block length and the masking."""

    corpus: str = field(default="default", metadata={"help": f"built-in corpus: {', '.join(data.CORPORA)}"})
    dataset_name: str | None = field(default=None, metadata={"help": "a Hugging Face dataset (needs the Hub)"})
    dataset_config_name: str | None = field(default=None, metadata={"help": "its configuration"})
    text_column: str = field(default="text", metadata={"help": "text column of --dataset_name"})
    train_file: str | None = field(
        default=None, metadata={"help": "text file: one sentence per line, blank line between documents"}
    )
    validation_file: str | None = field(default=None, metadata={"help": "same format; default: hold out documents"})
    validation_fraction: float = field(default=0.05, metadata={"help": "share of documents held out for evaluation"})
    max_seq_length: int = field(default=128, metadata={"help": "tokens per packed block, [CLS] and [SEP] included"})
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "a saved tokenizer folder; default: train WordPiece"}
    )
    vocab_size: int | None = field(default=None, metadata={"help": "WordPiece vocabulary to train (default 8000)"})
    mlm_probability: float = field(default=0.15, metadata={"help": "share of tokens masked, as in BERT and the paper"})
    tokenizer_sample: int = field(
        default=data.DEFAULT_TOKENIZER_SAMPLE,
        metadata={"help": "train WordPiece on at most this many lines, drawn evenly over the whole corpus"},
    )
    prepared_dataset: str | None = field(
        default=None,
        metadata={
            "help": "write the prepared (tokenized, packed) corpus to this folder, or read it from there if it already "
            "holds one; default: a keyed folder in $HF_POSENC_CACHE/prepared"
        },
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "processes that tokenize (default: one, the fast tokenizer uses all cores)"}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "train on the first N packed blocks only (debugging, quick runs)"}
    )
    max_eval_samples: int | None = field(
        default=None,
        metadata={
            "help": "evaluate on the first N held-out blocks only (the final evaluation reads them all by default)"
        },
    )
    streaming: bool = field(
        default=False,
        metadata={"help": "read, tokenize and pack the text while training, nothing prepared (needs --max_steps)"},
    )
    streaming_shuffle_buffer: int = field(default=10_000, metadata={"help": "streaming: blocks in the shuffle buffer"})
    streaming_validation_documents: int = field(
        default=10,
        metadata={"help": "streaming without --validation_file: hold out the first N documents of the first file"},
    )
    document_aware_packing: bool = field(
        default=False,
        metadata={
            "help": "blocks still pack several documents, but attention stays inside each document and positions "
            "restart at each one (default: plain concatenation, attention across documents, as BERT)"
        },
    )

    def __post_init__(self) -> None:
        for name in ("max_train_samples", "max_eval_samples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(
                    f"--{name} must be at least 1 block (got {getattr(self, name)}); leave it out for all."
                )
        if self.document_aware_packing and self.streaming:
            raise ValueError(
                "--document_aware_packing needs the prepared corpus (it stores each token's document) and cannot be "
                "used with --streaming yet; drop one of the two."
            )


@dataclass
class RunArguments:
    """How the run watches itself (the locality/symmetry callback) and treats --output_dir."""

    posenc_metrics: bool = field(default=True, metadata={"help": "log locality and symmetry while training"})
    posenc_every_n_steps: int | None = field(
        default=None, metadata={"help": "measure locality/symmetry every N steps (default: logging_steps)"}
    )
    posenc_probe_sequences: int = field(default=8, metadata={"help": "validation sequences in the probe batch"})
    posenc_per_head: bool = field(default=False, metadata={"help": "also log every head's metrics"})
    posenc_heatmap_every: int | None = field(
        default=None, metadata={"help": "draw layer x head heatmaps every K measurements"}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "allow writing into an --output_dir that already holds files"}
    )
    peak_tflops: float | None = field(
        default=None,
        metadata={
            "help": "peak TFLOP/s of one device, for the logged MFU (default: the dense bf16 figure of a known GPU; "
            "none on a CPU or an unknown device, where MFU is then not reported)"
        },
    )

    def __post_init__(self) -> None:
        check_peak_tflops(self.peak_tflops)


def _variant_arguments():
    """One optional field per variant parameter (--rope_theta, --attenuation_strength, ...), read from the
    signatures of the variant configs, so a new variant's parameters appear here without editing this file."""
    parameters = {}
    for config_class in hf_posenc.VARIANTS.values():
        for name, parameter in inspect.signature(config_class.__init__).parameters.items():
            if parameter.kind is parameter.KEYWORD_ONLY or name in ("self", "kwargs") or name in parameters:
                continue
            default = parameter.default
            if default is None:  # resolved from the model's revision; the annotation names the type
                (value_type,) = (kind for kind in typing.get_args(parameter.annotation) if kind is not type(None))
                kind, default = value_type | None, "set by the model's posenc_revision"
            elif isinstance(default, bool):
                kind = bool | None
            elif isinstance(default, (int, float)) and "|" in str(parameter.annotation):
                kind = list[float] | None  # a float or one value per head
            else:
                kind = type(default) | None
            parameters[name] = (
                name,
                kind,
                field(default=None, metadata={"help": f"{config_class.variant}: default {default}"}),
            )
    variant_arguments = make_dataclass(
        "VariantArguments",
        list(parameters.values()),
        namespace={"__doc__": "The variant's own parameters; None keeps the variant's default."},
    )
    variant_arguments.__module__ = __name__  # pickling and HfArgumentParser look the class up by its module
    return variant_arguments


VariantArguments = _variant_arguments()

ARGUMENT_CLASSES = (ModelArguments, VariantArguments, DataArguments, RunArguments, TrainingArguments)


class PretrainArguments(TypedDict):
    """The keyword arguments of `hf_posenc.training.pretrain`: ``pretrain(**arguments)``."""

    model_args: ModelArguments
    variant_args: VariantArguments
    data_args: DataArguments
    run_args: RunArguments
    training_args: TrainingArguments


def _bundle(model_args, variant_args, data_args, run_args, training_args) -> PretrainArguments:
    return PretrainArguments(
        model_args=model_args,
        variant_args=variant_args,
        data_args=data_args,
        run_args=run_args,
        training_args=training_args,
    )


def pretrain_argument_parser(**parser_options: Any) -> HfArgumentParser:
    """An `HfArgumentParser` over the five argument classes with pretraining's defaults: the flags of
    examples/pretrain.py and `hf-posenc pretrain`. `parser_options` go to argparse (``prog=...``)."""
    parser = HfArgumentParser(ARGUMENT_CLASSES, **parser_options)
    parser.set_defaults(**training_defaults())
    return parser


def parse_pretrain_arguments(argv: list[str] | None = None) -> PretrainArguments:
    """The arguments from command-line flags (``sys.argv[1:]`` when None), as examples/pretrain.py reads them.
    A malformed flag exits like argparse (status 2, usage on stderr)."""
    return _bundle(*pretrain_argument_parser().parse_args_into_dataclasses(args=argv))


def pretrain_arguments(**options: Any) -> PretrainArguments:
    """The arguments from keyword arguments, each given to the class that has that field, with the same defaults
    as the flags: ``pretrain(**pretrain_arguments(variant="alibi", corpus="stdlib", output_dir="out", max_steps=100))``.
    Values are Python values (``attenuation_strength=[0.5, 0.05]``, ``report_to=[]``), not strings."""
    owners = {item.name: cls for cls in ARGUMENT_CLASSES for item in fields(cls) if item.init}
    unknown = [name for name in options if name not in owners]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, owners, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "see `python examples/pretrain.py --help` for the fields."
        raise ValueError(f"pretrain_arguments got an unknown argument '{name}'; {hint}")
    grouped: dict[type, dict[str, Any]] = {cls: {} for cls in ARGUMENT_CLASSES}
    for name, value in options.items():
        grouped[owners[name]][name] = value
    grouped[TrainingArguments] = {**training_defaults(), **grouped[TrainingArguments]}
    return _bundle(*(cls(**grouped[cls]) for cls in ARGUMENT_CLASSES))
