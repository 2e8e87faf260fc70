"""SNLI files (hf_posenc.data.snli)."""

from __future__ import annotations

import json

import pytest

from hf_posenc import data


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
