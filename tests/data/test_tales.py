"""Orange .tab files (hf_posenc.data.tales)."""

from __future__ import annotations

import pytest
from data_samples import ANDERSEN_TAB, EXPECTED_TALES, GRIMM_TAB

from hf_posenc import data


def test_parse_orange_tab_skips_headers_and_unquotes():
    records = data.parse_orange_tab(GRIMM_TAB)
    assert [record["Title"] for record in records] == ["The Frog", "The Fox"]
    assert records[0]["Content"].startswith('The princess dropped her ball.  "Help!" she cried')
    assert records[1]["ATU Topic"] == "Animals"


def test_tale_documents_split_paragraphs_on_double_spaces():
    assert list(data.tale_documents(GRIMM_TAB)) + list(data.tale_documents(ANDERSEN_TAB)) == EXPECTED_TALES
    with pytest.raises(ValueError, match="no 'Content' column"):
        list(data.tale_documents("Title\tText\nstring\tstring\n\t\nA\tB\n"))
