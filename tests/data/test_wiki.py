"""MediaWiki cleaning (hf_posenc.data.wiki)."""

from __future__ import annotations

from hf_posenc import data


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
