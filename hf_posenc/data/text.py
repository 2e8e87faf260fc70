"""The text-file layout used throughout: UTF-8, one sentence or paragraph per line, a blank line between documents.

:func:`read_documents` reads it into memory (for the small corpora and the in-memory path), :func:`write_documents`
writes it atomically, :func:`split_documents` groups lines into documents.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..storage import atomic_output

__all__ = [
    "MAX_LINE_BYTES",
    "MIN_PARAGRAPH_WORDS",
    "Documents",
    "check_text_files",
    "iter_document_lines",
    "normalise_line",
    "read_documents",
    "split_documents",
    "write_documents",
]

Documents = list[list[str]]

# Cleaned corpora drop paragraphs with fewer words: those are leftovers (captions, fragments), not prose.
MIN_PARAGRAPH_WORDS = 5


def normalise_line(line: str) -> str:
    # str.split() also splits on \u2028, \x85 and friends, which would otherwise break lines on reading.
    return " ".join(line.split())


def write_documents(documents: Iterable[Sequence[str]], path: str | os.PathLike) -> Path:
    """Write documents (lists of lines) as UTF-8 text, a blank line between documents, atomically.

    Whitespace inside each line is collapsed; empty lines and empty documents are skipped. The file is
    written to a temporary name in the same folder and renamed, so readers never see half a file.
    """
    path = Path(path)
    with atomic_output(path, "w", encoding="utf-8", newline="\n") as handle:
        first = True
        for document in documents:
            lines = [normalised for normalised in map(normalise_line, document) if normalised]
            if not lines:
                continue
            if not first:
                handle.write("\n")
            handle.write("\n".join(lines) + "\n")
            first = False
    return path


def split_documents(lines: Iterable[str]) -> Documents:
    """Group lines into documents: runs of non-empty lines, separated by blank (or whitespace-only) lines."""
    documents: Documents = []
    current: list[str] = []
    for raw_line in lines:
        line = normalise_line(raw_line)
        if line:
            current.append(line)
        elif current:
            documents.append(current)
            current = []
    if current:
        documents.append(current)
    return documents


def read_documents(path_or_paths: str | os.PathLike | Iterable[str | os.PathLike]) -> Documents:
    """Read one or more text files into documents, each a list of non-empty lines.

    Layout: one sentence or paragraph per line, blank (or whitespace-only) lines between documents.
    Several files are read in order; a file boundary also ends a document.

    Raises:
        FileNotFoundError: a file does not exist (named in the message).
        ValueError: a file is not UTF-8, or the files hold no text at all.
    """
    if isinstance(path_or_paths, (str, os.PathLike)):
        paths = [Path(path_or_paths)]
    else:
        paths = [Path(path) for path in path_or_paths]
    if not paths:
        raise ValueError("read_documents got no file: pass at least one text file.")
    for path in paths:
        if path.is_dir():
            raise FileNotFoundError(f"{path} is a folder; pass the text file(s) inside it.")
        if not path.is_file():
            raise FileNotFoundError(
                f"Text file not found: {path} (expected UTF-8 text, one sentence per line, a blank line "
                "between documents)."
            )
    documents: Documents = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                documents.extend(split_documents(handle))
        except UnicodeDecodeError as error:
            raise ValueError(f"{path} is not UTF-8 text ({error}); convert it to UTF-8.") from error
    if not documents:
        names = ", ".join(str(path) for path in paths)
        raise ValueError(f"The corpus is empty: {names} contain(s) no text.")
    return documents


# Longer lines are refused, not read: the layout is one sentence or paragraph per line, and a file with no newline
# at all (a dump written as one line, a binary file) would otherwise be read, and tokenized, whole.
MAX_LINE_BYTES = 1 << 20
_BINARY_PROBE_BYTES = 8192


def check_text_files(paths: Iterable[str | os.PathLike], flag: str = "text file") -> list[Path]:
    """The paths as Paths, after the checks that need no full read: each exists, is a file, is not empty and does
    not look binary (a NUL byte in its first 8 KiB). `flag` names the argument in messages (e.g. ``--train_file``).

    Raises:
        ValueError: no path, an empty or binary file.
        FileNotFoundError: a path is missing or is a folder.
    """
    checked = [Path(path) for path in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    if not checked:
        raise ValueError(f"No {flag} given: pass at least one UTF-8 text file.")
    for path in checked:
        if path.is_dir():
            raise FileNotFoundError(f"{flag} {path} is a folder; pass the text file(s) inside it.")
        if not path.is_file():
            raise FileNotFoundError(
                f"{flag} {path} does not exist (expected UTF-8 text, one sentence or paragraph per line, a blank "
                "line between documents)."
            )
        if path.stat().st_size == 0:
            raise ValueError(f"{flag} {path} is empty; give a file with text in it.")
        with open(path, "rb") as handle:
            if b"\x00" in handle.read(_BINARY_PROBE_BYTES):
                raise ValueError(
                    f"{flag} {path} looks binary (it contains NUL bytes), not UTF-8 text; give a text file "
                    "(one sentence or paragraph per line, a blank line between documents)."
                )
    return checked


def iter_document_lines(
    paths: Iterable[str | os.PathLike], *, max_line_bytes: int = MAX_LINE_BYTES, flag: str = "text file"
) -> Iterator[tuple[int, str]]:
    """Stream ``(document index, line)`` over text files in the layout, without holding more than one line.

    Lines are normalised as :func:`read_documents` does (whitespace collapsed, blank lines dropped); document
    indices count from 0 across all files, a blank line or a file boundary ends a document. The result is the same
    as enumerating ``read_documents(paths)`` line by line.

    Raises:
        ValueError: a line is not UTF-8 or longer than ``max_line_bytes`` (file and line number in the message), a
            line holds a NUL byte, or the files hold no text.
        FileNotFoundError: see :func:`check_text_files`.
    """
    checked = check_text_files(paths, flag)
    document = 0
    for path in checked:
        in_document = False
        with open(path, "rb") as handle:
            line_number = 0
            while True:
                raw = handle.readline(max_line_bytes + 1)
                if not raw:
                    break
                line_number += 1
                if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                    raise ValueError(
                        f"{path}, line {line_number}: longer than {max_line_bytes:,} bytes without a newline. The "
                        "layout is one sentence or paragraph per line: wrap the text (e.g. `fold -s -w 2000`), or "
                        "raise max_line_bytes if such lines are intended."
                    )
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise ValueError(
                        f"{path}, line {line_number}: not UTF-8 text ({error.reason} at byte {error.start} of the "
                        "line); convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
                    ) from error
                if "\x00" in text:
                    raise ValueError(
                        f"{path}, line {line_number}: holds a NUL byte, so the file looks binary; give UTF-8 text."
                    )
                line = normalise_line(text)
                if line:
                    in_document = True
                    yield document, line
                elif in_document:
                    document += 1
                    in_document = False
        if in_document:
            document += 1
    if document == 0:
        names = ", ".join(str(path) for path in checked)
        raise ValueError(f"The corpus is empty: {names} contain(s) no text, only blank lines.")
