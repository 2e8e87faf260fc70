"""What a model reads of a text, and the one rule every built-in task uses to keep its splits apart.

Two sentences that differ only in case, accents or spacing ("A man sleeps." and "a man  sleeps .") reach an uncased
BERT model as the same tokens, so a split that holds one of them and a train split that holds the other leak the
answer. `model_view` maps a text to what an uncased WordPiece tokenizer sees before its vocabulary applies:

- BERT's uncased normaliser (`tokenizers.normalizers.BertNormalizer` with ``lowercase=True``, hence accent
  stripping): control characters dropped and every whitespace character made a space, spaces put around CJK
  ideographs, Unicode NFD with the combining marks removed, lower-casing;
- BERT's pre-tokenizer (`tokenizers.pre_tokenizers.BertPreTokenizer`): words split at whitespace and at every
  punctuation character, so "sleeps." and "sleeps ." are the same two words;
- the words joined by single spaces.

This is the pipeline of the tokenizers hf_posenc trains (`hf_posenc.data.train_wordpiece_tokenizer`, uncased by
default) and of ``bert-base-uncased``: WordPiece then splits each word on its own, so texts with the same view get
the same tokens from any such vocabulary. Splits are built before a model is chosen and must be the same for every
model, so the view never depends on a model's tokenizer; for a cased tokenizer it is stricter than needed (it
also merges texts that differ only in case), never looser.

`drop_seen` applies the rule: the items whose view is not in a given set (another split's views), and with
``distinct`` only the first item of each view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import TypeVar

__all__ = ["drop_seen", "model_view", "model_views"]

Item = TypeVar("Item")


@cache
def _pipeline():
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    return normalizer, pre_tokenizers.BertPreTokenizer()


def model_view(text: str | Sequence[str]) -> str:
    """``text`` (a string, or a list of words as a token-classification example holds them) as an uncased
    WordPiece tokenizer sees it: normalised, split into words, the words joined by single spaces.

    >>> model_view("A  Café, ÉTÉ.") == model_view("a cafe , ete .") == "a cafe , ete ."
    True
    """
    if not isinstance(text, str):
        text = " ".join(text)
    normalizer, pre_tokenizer = _pipeline()
    return " ".join(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))


def model_views(texts: Iterable[str | Sequence[str]]) -> list[str]:
    """The `model_view` of each text, each distinct text worked out once (a premise repeats across its pairs)."""
    views: dict[str, str] = {}
    result = []
    for text in texts:
        if not isinstance(text, str):
            text = " ".join(text)
        view = views.get(text)
        if view is None:
            view = views[text] = model_view(text)
        result.append(view)
    return result


def drop_seen(
    items: Sequence[Item],
    text: Callable[[Item], str | Sequence[str]],
    seen: Iterable[str] = (),
    *,
    distinct: bool = True,
) -> list[Item]:
    """The ``items`` (in order) whose `model_view` of ``text(item)`` is not in ``seen`` (views, such as those of
    another split's sentences); with ``distinct``, also only the first item of each view."""
    seen = set(seen)
    kept = []
    for item, view in zip(items, model_views(text(item) for item in items)):
        if view in seen:
            continue
        if distinct:
            seen.add(view)
        kept.append(item)
    return kept
