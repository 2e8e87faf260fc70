"""Text from `datasets` datasets (hf_posenc.data.hub_datasets)."""

from __future__ import annotations

import json

import pytest

from hf_posenc import data


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
