"""CPython's own documentation as a corpus: needs no network at all."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .text import MIN_PARAGRAPH_WORDS

__all__ = ["stdlib_documents"]

_UNDERLINE = re.compile(r"^([*=\-~^\"'`#+])\1{2,}$")
_CODE_CHARACTERS = re.compile(r"[=(){}\[\]<>;|\\@$]")


def stdlib_documents() -> Iterator[list[str]]:
    """CPython's own documentation (``pydoc_data.topics.topics``): one document per topic, prose only.

    Paragraphs are separated by blank lines in the source; wrapped lines are joined, section underlines
    dropped, and paragraphs that look like code (interactive examples, grammar rules, signatures) skipped.
    """
    from pydoc_data.topics import topics  # part of every CPython installation

    for topic in sorted(topics):
        paragraphs = []
        for block in re.split(r"\n\s*\n", topics[topic]):
            lines = [line.strip() for line in block.splitlines() if line.strip() and not _UNDERLINE.match(line.strip())]
            if not lines or lines[0].startswith((">>>", "...", "$")):
                continue
            paragraph = " ".join(lines)
            words = paragraph.split()
            if len(words) < MIN_PARAGRAPH_WORDS:
                continue
            if len(_CODE_CHARACTERS.findall(paragraph)) > 0.05 * len(paragraph):
                continue
            paragraphs.append(paragraph)
        if paragraphs:
            yield paragraphs
