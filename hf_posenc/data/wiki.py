"""MediaWiki cleaning with the standard library: the Wikipedia sample of the built-in corpora."""

from __future__ import annotations

import html
import io
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator

from .text import MIN_PARAGRAPH_WORDS

__all__ = ["clean_wikitext", "is_wikipedia_article", "wikipedia_documents"]

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


def clean_wikitext(markup: str, *, min_paragraph_words: int = MIN_PARAGRAPH_WORDS) -> list[str]:
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
