"""Training BERT's WordPiece tokenizer with the ``tokenizers`` library."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from .text import check_text_files, iter_document_lines

__all__ = [
    "DEFAULT_TOKENIZER_SAMPLE",
    "SPECIAL_TOKENS",
    "sample_lines",
    "train_wordpiece_tokenizer",
    "train_wordpiece_tokenizer_on_files",
]

# Lines of text a tokenizer is trained on at most: enough for a stable 30k vocabulary, bounded memory.
DEFAULT_TOKENIZER_SAMPLE = 1_000_000

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # [PAD] = 0, like BERT's vocabularies


def train_wordpiece_tokenizer(
    documents: Iterable[Sequence[str]],
    vocab_size: int = 8000,
    lowercase: bool = True,
    *,
    min_frequency: int = 2,
    model_max_length: int | None = None,
):
    """Train a BERT-style WordPiece tokenizer on the documents with the ``tokenizers`` library.

    The pipeline is BERT's: ``BertNormalizer`` (lower-casing and accent stripping when ``lowercase``),
    ``BertPreTokenizer``, a WordPiece model with ``##`` continuation pieces, special tokens
    ``[PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4`` and the ``[CLS] $A [SEP]`` (pair: ``[CLS] $A [SEP]
    $B [SEP]`` with token type 1 for B) post-processor. It is wrapped as a ``transformers.BertTokenizerFast``,
    so it saves and loads as an ordinary BERT tokenizer and works in the fill-mask pipeline. Training is
    deterministic for the same documents in the same order. A small corpus may yield fewer than
    ``vocab_size`` tokens: size the model with ``len(tokenizer)``.
    """
    lines = [line for document in documents for line in document if line.strip()]
    return _train_on_lines(
        lines,
        vocab_size=vocab_size,
        lowercase=lowercase,
        min_frequency=min_frequency,
        model_max_length=model_max_length,
    )


def sample_lines(
    paths: Iterable[str | os.PathLike], max_lines: int = DEFAULT_TOKENIZER_SAMPLE, *, flag: str = "text file"
) -> list[str]:
    """At most ``max_lines`` non-blank lines of text files in the layout, spread evenly over the whole corpus.

    Two streaming passes: the first counts the lines, the second keeps line ``floor(j * total / max_lines)`` for
    ``j = 0, 1, ...``, so the sample is deterministic and covers the end of the corpus as well as its start. With
    ``max_lines`` at least the number of lines, every line is kept, in order.
    """
    if max_lines < 1:
        raise ValueError(f"The tokenizer sample must hold at least one line, got {max_lines}.")
    paths = check_text_files(paths, flag)
    total = sum(1 for _ in iter_document_lines(paths, flag=flag))
    if total <= max_lines:
        return [line for _, line in iter_document_lines(paths, flag=flag)]
    sample, next_index, taken = [], 0, 0
    for index, (_, line) in enumerate(iter_document_lines(paths, flag=flag)):
        if index == next_index:
            sample.append(line)
            taken += 1
            if taken == max_lines:
                break
            next_index = taken * total // max_lines
    return sample


def train_wordpiece_tokenizer_on_files(
    paths: Iterable[str | os.PathLike],
    vocab_size: int = 8000,
    lowercase: bool = True,
    *,
    min_frequency: int = 2,
    model_max_length: int | None = None,
    sample: int = DEFAULT_TOKENIZER_SAMPLE,
):
    """:func:`train_wordpiece_tokenizer` on at most ``sample`` lines of text files, drawn evenly across the whole
    corpus (see :func:`sample_lines`), so that memory stays bounded for corpora of any size. Deterministic; on a corpus
    of at most ``sample`` lines it gives the same tokenizer as training on ``read_documents(paths)``."""
    return _train_on_lines(
        sample_lines(paths, sample),
        vocab_size=vocab_size,
        lowercase=lowercase,
        min_frequency=min_frequency,
        model_max_length=model_max_length,
    )


def _train_on_lines(lines: list[str], *, vocab_size: int, lowercase: bool, min_frequency: int, model_max_length):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}.")
    if not lines:
        raise ValueError("Cannot train a tokenizer on an empty corpus.")

    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()

    # The trainer numbers "##x" pieces in hash-map order, and ties between merges are broken by those
    # numbers, so two trainings on the same text can differ (huggingface/tokenizers#1794). Registering
    # every "##x" piece up front, sorted, fixes their numbers; they are plain vocabulary entries again in
    # the final tokenizer below.
    continuation_characters: set[str] = set()
    for line in lines:
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)):
            continuation_characters.update(word[1:])
    fixed_pieces = [*SPECIAL_TOKENS, *(f"##{character}" for character in sorted(continuation_characters))]
    trainer_tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    trainer_tokenizer.normalizer = normalizer
    trainer_tokenizer.pre_tokenizer = pre_tokenizer
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=fixed_pieces,
        continuing_subword_prefix="##",
        show_progress=False,
    )
    trainer_tokenizer.train_from_iterator(lines, trainer=trainer, length=len(lines))

    tokenizer = Tokenizer(
        models.WordPiece(vocab=trainer_tokenizer.get_vocab(), unk_token="[UNK]", continuing_subword_prefix="##")
    )
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    extra = {} if model_max_length is None else {"model_max_length": model_max_length}
    return BertTokenizerFast(
        tokenizer_object=tokenizer,
        do_lower_case=lowercase,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        **extra,
    )
