"""The data of a pretraining run: text, tokenizer, packed blocks. `load_pretraining_data` is the one place that
reads them, so the pipeline behind it can change without touching `pretrain`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import AutoTokenizer

from .. import data

DEFAULT_VOCAB_SIZE = 8000


@dataclass
class PretrainingData:
    """Packed blocks of both splits, the tokenizer that made them, and how the results file names their sources."""

    train: Any  # datasets.Dataset of full [CLS] ... [SEP] blocks
    validation: Any
    tokenizer: Any  # a transformers tokenizer
    dataset_description: str
    tokenizer_description: str


def load_pretraining_data(data_args, seed: int) -> PretrainingData:
    """Read the text `data_args` names, train (or load) the tokenizer and pack both splits into blocks."""
    train_documents, validation_documents = _load_documents(data_args)
    tokenizer = _load_tokenizer(data_args, train_documents)
    train, validation = data.pack_for_mlm(
        train_documents,
        tokenizer,
        data_args.max_seq_length,
        data_args.validation_fraction,
        seed=seed,
        validation_documents=validation_documents,
    )
    return PretrainingData(
        train=train,
        validation=validation,
        tokenizer=tokenizer,
        dataset_description=(
            data_args.train_file or data_args.dataset_name or f"hf_posenc built-in corpus '{data_args.corpus}'"
        ),
        tokenizer_description=(
            data_args.tokenizer_name or f"WordPiece trained on the training text ({len(tokenizer)} tokens)"
        ),
    )


def _load_documents(data_args):
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


def _load_tokenizer(data_args, documents):
    if data_args.tokenizer_name is None:
        return data.train_wordpiece_tokenizer(
            documents,
            vocab_size=data_args.vocab_size or DEFAULT_VOCAB_SIZE,
            model_max_length=data_args.max_seq_length,
        )
    tokenizer = AutoTokenizer.from_pretrained(data_args.tokenizer_name)
    if data_args.vocab_size is not None and len(tokenizer) != data_args.vocab_size:
        raise ValueError(
            f"The tokenizer in {data_args.tokenizer_name} has {len(tokenizer)} tokens but --vocab_size is "
            f"{data_args.vocab_size}; drop --vocab_size to use the tokenizer's, or drop --tokenizer_name to train one."
        )
    return tokenizer
