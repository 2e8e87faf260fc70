"""The text layout: reading and writing documents (hf_posenc.data.text)."""

from __future__ import annotations

import pytest

from hf_posenc import data


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
