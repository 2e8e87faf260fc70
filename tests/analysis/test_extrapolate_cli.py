"""`hf-posenc extrapolate`, in-process: a JSON per model, one plot, a table with the trained length, the lengths beyond
it marked and the fixed table reported."""

import json

import pytest
from conftest import SENTENCES, tiny_config
from transformers import AutoModelForMaskedLM

from hf_posenc import cli
from hf_posenc.analysis.extrapolation import ExtrapolationResult


def test_extrapolate_command_writes_results_and_a_plot(tmp_path, tiny_tokenizer, capsys):
    pytest.importorskip("matplotlib")
    # Trained on 16-token blocks (as pretraining records it in config.json), except "foreign", which says nothing.
    for name, variant, trained in (("alibi", "alibi", 16), ("learned", "learned", 16), ("foreign", "rope", None)):
        recorded = {} if trained is None else {"trained_max_length": trained}
        config = tiny_config(variant, vocab_size=len(tiny_tokenizer), max_position_embeddings=24, **recorded)
        AutoModelForMaskedLM.from_config(config).save_pretrained(tmp_path / name)
        tiny_tokenizer.save_pretrained(tmp_path / name)
    texts = tmp_path / "held_out.txt"
    texts.write_text("\n\n".join("\n".join([sentence] * 3) for sentence in SENTENCES * 6) + "\n")
    output = tmp_path / "out"
    models = [str(tmp_path / name) for name in ("alibi", "learned", "foreign")]
    argv = ["extrapolate", *models, "--lengths", "16", "20", "40"]
    assert cli.main([*argv, "--texts", str(texts), "--output", str(output)]) == 0
    printed, progress = capsys.readouterr()
    assert "alibi at 20 tokens" in progress and "foreign at 40 tokens" in progress  # a bar per model and length
    assert "| model | trained length | length | loss | perplexity | locality | symmetry | status |" in printed
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in printed.splitlines()]
    rows = {tuple(row[:3]): row[-1] for row in cells if len(row) == 8}  # (model, trained length, length) -> status
    assert rows[("learned", "16", "16")] == rows[("alibi", "16", "16")] == "ok"
    assert rows[("learned", "16", "20")] == "untrained positions"
    assert rows[("alibi", "16", "20")] == rows[("alibi", "16", "40")] == "beyond trained length"
    assert rows[("foreign", "unknown", "40")] == "trained length unknown"
    assert "trained length unknown for foreign: neither config.json (trained_max_length) nor" in printed
    assert "| learned | 16 | 40 | n/a | n/a | n/a | n/a | not run: 40 tokens exceed the 24-position table" in printed
    alibi = ExtrapolationResult.load(output / "alibi")
    assert [item.status for item in alibi.measurements] == ["ok", "beyond trained length", "beyond trained length"]
    assert alibi.trained_length == 16 and alibi.trained_length_source == "config.json trained_max_length"
    saved = json.loads((output / "learned" / "extrapolation_results.json").read_text())
    assert [item["status"] for item in saved["lengths"]][:2] == ["ok", "untrained positions"]
    assert (output / "extrapolation.png").stat().st_size > 1000


def test_extrapolate_command_reports_bad_lengths_in_one_line(tmp_path, capsys):
    assert cli.main(["extrapolate", str(tmp_path), "--lengths", "1"]) == 2
    assert "at least 3 tokens" in capsys.readouterr().err


def test_rope_scaling_measures_each_model_with_and_without_it(tmp_path, tiny_tokenizer, capsys):
    config = tiny_config("rope", vocab_size=len(tiny_tokenizer), trained_max_length=16)
    AutoModelForMaskedLM.from_config(config).save_pretrained(tmp_path / "rope")
    tiny_tokenizer.save_pretrained(tmp_path / "rope")
    texts = tmp_path / "held_out.txt"
    texts.write_text("\n\n".join("\n".join([sentence] * 3) for sentence in SENTENCES * 6) + "\n")
    output = tmp_path / "out"
    scaling = '{"rope_type": "dynamic", "factor": 2}'
    argv = ["extrapolate", str(tmp_path / "rope"), "--lengths", "16", "40", "--rope_scaling", scaling]
    assert cli.main([*argv, "--texts", str(texts), "--output", str(output), "--no_plots"]) == 0
    printed = capsys.readouterr().out
    assert "| rope | 16 | 40 |" in printed and "| rope-dynamic | 16 | 40 |" in printed
    scaled = ExtrapolationResult.load(output / "rope-dynamic")
    assert scaled.rope_scaling == {"rope_type": "dynamic", "factor": 2, "original_max_position_embeddings": 16}
    assert ExtrapolationResult.load(output / "rope").rope_scaling is None


@pytest.mark.parametrize(
    "scaling, message",
    [
        ("{rope_type: yarn}", "--rope_scaling is not valid JSON"),
        ("[1, 2]", "--rope_scaling must be a JSON object"),
        ('{"rope_type": "yarn", "factor": 0.5}', "factor must be >= 1"),
    ],
)
def test_a_bad_rope_scaling_is_one_line_and_nothing_runs(tmp_path, tiny_tokenizer, capsys, scaling, message):
    config = tiny_config("rope", vocab_size=len(tiny_tokenizer))
    AutoModelForMaskedLM.from_config(config).save_pretrained(tmp_path / "rope")
    tiny_tokenizer.save_pretrained(tmp_path / "rope")
    argv = ["extrapolate", str(tmp_path / "rope"), "--lengths", "16", "--rope_scaling", scaling]
    assert cli.main([*argv, "--output", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_model_that_cannot_take_the_scaling_stops_the_command_before_any_model_runs(tmp_path, tiny_tokenizer, capsys):
    for variant in ("rope", "alibi"):
        config = tiny_config(variant, vocab_size=len(tiny_tokenizer))
        AutoModelForMaskedLM.from_config(config).save_pretrained(tmp_path / variant)
        tiny_tokenizer.save_pretrained(tmp_path / variant)
    models = [str(tmp_path / "rope"), str(tmp_path / "alibi")]
    argv = ["extrapolate", *models, "--lengths", "16", "--rope_scaling", '{"rope_type": "linear", "factor": 2}']
    assert cli.main([*argv, "--output", str(tmp_path / "out")]) == 2
    assert "--rope_scaling applies to rope models" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
