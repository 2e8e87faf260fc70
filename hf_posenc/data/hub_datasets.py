"""Text from a ``datasets`` dataset: the Hugging Face Hub, or a local builder such as ``"text"`` or ``"json"``."""

from __future__ import annotations

from .text import Documents, normalise_line, split_documents

__all__ = ["load_hub_text_dataset"]


def load_hub_text_dataset(
    name: str,
    config_name: str | None = None,
    text_column: str = "text",
    *,
    split: str = "train",
    rows_are_documents: bool | None = None,
    **load_dataset_kwargs,
) -> Documents:
    """Documents from a ``datasets`` dataset (the Hub, or a local builder such as ``"text"``/``"json"``).

    Two layouts exist: a row per document (Wikipedia dumps: newlines inside the text separate paragraphs)
    and a row per line with empty rows between documents (wikitext). ``rows_are_documents=None`` guesses:
    rows are lines when some rows are empty and none contains a newline. ``load_dataset_kwargs`` go to
    ``datasets.load_dataset`` (for example ``data_files=``).

    Raises:
        RuntimeError: the Hub cannot be reached (with what to do instead).
        ValueError: the column does not exist, or the dataset holds no text.
    """
    import datasets

    try:
        dataset = datasets.load_dataset(name, config_name, split=split, **load_dataset_kwargs)
    except ConnectionError as error:  # datasets raises ConnectionError for an unreachable or offline Hub
        raise RuntimeError(
            f"Could not reach the Hugging Face Hub to load the dataset {name!r}"
            f"{f' (config {config_name!r})' if config_name else ''}: {error}. Without the Hub, use a built-in "
            "corpus (`--corpus default`, or `--corpus stdlib` with no network at all) or your own text with "
            "`--train_file`."
        ) from error
    if text_column not in dataset.column_names:
        raise ValueError(
            f"The dataset {name!r} has no column {text_column!r}; its columns are {dataset.column_names}. "
            "Pass the right one as text_column (--text_column)."
        )
    texts = [text if isinstance(text, str) else "" for text in dataset[text_column]]
    if rows_are_documents is None:
        rows_are_documents = not any(not text.strip() for text in texts) or any("\n" in text for text in texts)
    if rows_are_documents:
        # Inside a row, lines are lines (a blank line does not split the row's document).
        documents = [
            lines
            for lines in ([line for line in map(normalise_line, text.split("\n")) if line] for text in texts)
            if lines
        ]
    else:
        documents = split_documents(texts)
    if not documents:
        raise ValueError(f"The dataset {name!r} (split {split!r}, column {text_column!r}) holds no text.")
    return documents
