"""`hf-posenc extrapolate`, in-process: a JSON per model, one plot, a table with the fixed table reported."""

import pytest
from conftest import SENTENCES, tiny_config
from transformers import AutoModelForMaskedLM

from hf_posenc import cli
from hf_posenc.analysis.extrapolation import ExtrapolationResult


def test_extrapolate_command_writes_results_and_a_plot(tmp_path, tiny_tokenizer, capsys):
    pytest.importorskip("matplotlib")
    for variant in ("alibi", "learned"):
        config = tiny_config(variant, vocab_size=len(tiny_tokenizer), max_position_embeddings=24)
        AutoModelForMaskedLM.from_config(config).save_pretrained(tmp_path / variant)
        tiny_tokenizer.save_pretrained(tmp_path / variant)
    texts = tmp_path / "held_out.txt"
    texts.write_text("\n\n".join("\n".join([sentence] * 3) for sentence in SENTENCES * 6) + "\n")
    output = tmp_path / "out"
    argv = ["extrapolate", str(tmp_path / "alibi"), str(tmp_path / "learned"), "--lengths", "16", "40"]
    assert cli.main([*argv, "--texts", str(texts), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "| learned | 40 | n/a | n/a | n/a | n/a | not run: 40 tokens exceed the 24-position table" in printed
    alibi = ExtrapolationResult.load(output / "alibi")
    assert [item.status for item in alibi.measurements] == ["ok", "ok"]
    assert (output / "extrapolation.png").stat().st_size > 1000


def test_extrapolate_command_reports_bad_lengths_in_one_line(tmp_path, capsys):
    assert cli.main(["extrapolate", str(tmp_path), "--lengths", "1"]) == 2
    assert "at least 3 tokens" in capsys.readouterr().err
