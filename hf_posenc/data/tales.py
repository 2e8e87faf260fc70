"""Orange ``.tab`` files: the fairy tales of the built-in corpora."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

__all__ = ["parse_orange_tab", "tale_documents"]


def parse_orange_tab(text: str) -> list[dict[str, str]]:
    """Rows of an Orange ``.tab`` file as dicts keyed by column name.

    The format is tab-separated with three header rows (names, types, flags) before the data, CSV
    quoting for fields that contain quotes; empty rows are skipped.
    """
    # Fields holding quotes or tabs are CSV-quoted ("..." with "" for a quote), as Orange writes them.
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t"))
    if len(rows) < 3:
        raise ValueError("An Orange .tab file needs three header rows (names, types, flags) before its data.")
    names = rows[0]
    records = []
    for row in rows[3:]:
        if not any(cell.strip() for cell in row):
            continue
        records.append({name: (row[index] if index < len(row) else "") for index, name in enumerate(names)})
    return records


_TALE_PARAGRAPH_BREAK = re.compile(r"\s{2,}")  # the .tab files mark paragraph breaks with two spaces


def tale_documents(tab_text: str, content_column: str = "Content") -> Iterator[list[str]]:
    """One document per story of an Orange .tab file, one paragraph per line."""
    for record in parse_orange_tab(tab_text):
        if content_column not in record:
            raise ValueError(f"The .tab file has no {content_column!r} column; columns: {sorted(record)}")
        paragraphs = [paragraph.strip() for paragraph in _TALE_PARAGRAPH_BREAK.split(record[content_column])]
        paragraphs = [paragraph for paragraph in paragraphs if paragraph]
        if paragraphs:
            yield paragraphs
