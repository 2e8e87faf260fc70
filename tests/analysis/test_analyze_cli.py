"""`hf-posenc analyze`, called in-process through `hf_posenc.cli.main`: on a saved hf_posenc variant and on a stock
transformers BERT. Bad input and untrusted folders are in tests/bad_input/test_metrics.py and test_security.py."""

import json

import pytest
from conftest import SENTENCES, tiny_config
from transformers import AutoModelForMaskedLM, BertConfig, BertModel

from hf_posenc import cli


def save_model(folder, tokenizer, kind: str) -> int:
    """Save a tiny model of `kind` with `tokenizer` into `folder`; returns its number of layers."""
    if kind == "hf_posenc":
        model = AutoModelForMaskedLM.from_config(
            tiny_config("attenuated", vocab_size=len(tokenizer), attenuation_strength=0.5)
        )
    else:  # SDPA by default in transformers 5, which returns no attention weights unless switched to eager
        config = BertConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64
        )
        model = BertModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model.config.num_hidden_layers


@pytest.mark.parametrize("kind", ["hf_posenc", "stock_bert"])
def test_analyze_prints_a_table_and_writes_json_and_plots(tmp_path, tiny_tokenizer, capsys, kind):
    folder = tmp_path / "model"
    layers = save_model(folder, tiny_tokenizer, kind)
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(SENTENCES) + "\n")
    status = cli.main(["analyze", str(folder), "--texts", str(texts), "--output", str(tmp_path / "out")])
    printed = capsys.readouterr()
    assert status == 0, printed.err[-3000:]
    assert f"{len(SENTENCES)} sentences, {layers} layers x 4 heads, bidirectional attention" in printed.out
    assert "| locality |" in printed.out and "|  mean |" in printed.out
    assert "warning" not in printed.err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["num_layers"] == layers and 0 < summary["locality"] <= 1
    assert summary["attention"] == "bidirectional" and summary["warnings"] == []
    assert 0 < summary["symmetry"] <= 1 and len(summary["per_head"]["symmetry"]) == layers
    if kind == "hf_posenc":  # a strong Gaussian penalty makes attention local
        assert summary["locality"] > 0.3
    for name in (
        "heatmap_locality.png",
        "heatmap_symmetry.png",
        "heatmap_symmetry_scale_aware.png",
        "attention_by_distance.png",
    ):
        assert (tmp_path / "out" / name).stat().st_size > 1000


def test_analyze_without_plots_uses_the_builtin_sentences(tmp_path, tiny_tokenizer, capsys):
    folder = tmp_path / "model"
    save_model(folder, tiny_tokenizer, "hf_posenc")
    status = cli.main(["analyze", str(folder), "--output", str(tmp_path / "out"), "--no_plots", "--max_length", "12"])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert f"{len(cli.BUILTIN_SENTENCES)} sentences" in printed.out
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["summary.json"]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["seq_len"] == 12


def test_analyze_errors_name_the_problem(tmp_path, capsys):
    assert cli.main(["analyze", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("\n")
    assert cli.main(["analyze", str(tmp_path), "--texts", str(tmp_path / "empty.txt")]) == 2
    assert "holds no sentence" in capsys.readouterr().err
