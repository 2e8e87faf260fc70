"""`hf-posenc analyze` on a saved hf_posenc variant and on a stock transformers BERT, in a real subprocess."""

import json
import subprocess
import sys

import pytest
from transformers import AutoModelForMaskedLM, BertConfig, BertModel

from conftest import SENTENCES, tiny_config


def run_cli(*arguments, cwd):
    return subprocess.run([sys.executable, "-m", "hf_posenc.cli", *arguments], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("kind", ["hf_posenc", "stock_bert"])
def test_analyze_prints_a_table_and_writes_json_and_plots(tmp_path, tiny_tokenizer, kind):
    folder = tmp_path / "model"
    if kind == "hf_posenc":
        model = AutoModelForMaskedLM.from_config(tiny_config("attenuated", vocab_size=len(tiny_tokenizer), attenuation_strength=0.5))
    else:  # SDPA by default in transformers 5, which returns no attention weights unless switched to eager
        model = BertModel(BertConfig(vocab_size=len(tiny_tokenizer), hidden_size=32, num_hidden_layers=3,
                                     num_attention_heads=4, intermediate_size=64))
    model.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(SENTENCES) + "\n")
    result = run_cli("analyze", str(folder), "--texts", str(texts), "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    layers = 2 if kind == "hf_posenc" else 3
    assert f"{len(SENTENCES)} sentences, {layers} layers x 4 heads" in result.stdout
    assert "| locality |" in result.stdout and "|  mean |" in result.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["num_layers"] == layers and 0 < summary["locality"] <= 1
    if kind == "hf_posenc":  # a strong Gaussian penalty makes attention local
        assert summary["locality"] > 0.3
    for name in ("heatmap_locality.png", "heatmap_symmetry.png", "heatmap_symmetry_scale_aware.png", "attention_by_distance.png"):
        assert (tmp_path / "out" / name).stat().st_size > 1000


def test_analyze_errors_name_the_problem(tmp_path):
    result = run_cli("analyze", str(tmp_path / "missing"), cwd=tmp_path)
    assert result.returncode == 2 and "is not a saved model folder" in result.stderr
    (tmp_path / "empty.txt").write_text("\n")
    result = run_cli("analyze", str(tmp_path), "--texts", str(tmp_path / "empty.txt"), cwd=tmp_path)
    assert result.returncode == 2 and "holds no sentence" in result.stderr
