"""`hf-posenc analyze` on a saved hf_posenc variant and on a stock transformers BERT, in a real subprocess."""

import json
import subprocess
import sys

import pytest
from conftest import SENTENCES, tiny_config
from transformers import AutoModelForMaskedLM, BertConfig, BertModel


def run_cli(*arguments, cwd):
    return subprocess.run(
        [sys.executable, "-m", "hf_posenc.cli", *arguments], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.mark.parametrize("kind", ["hf_posenc", "stock_bert"])
def test_analyze_prints_a_table_and_writes_json_and_plots(tmp_path, tiny_tokenizer, kind):
    folder = tmp_path / "model"
    if kind == "hf_posenc":
        model = AutoModelForMaskedLM.from_config(
            tiny_config("attenuated", vocab_size=len(tiny_tokenizer), attenuation_strength=0.5)
        )
    else:  # SDPA by default in transformers 5, which returns no attention weights unless switched to eager
        model = BertModel(
            BertConfig(
                vocab_size=len(tiny_tokenizer),
                hidden_size=32,
                num_hidden_layers=3,
                num_attention_heads=4,
                intermediate_size=64,
            )
        )
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
    for name in (
        "heatmap_locality.png",
        "heatmap_symmetry.png",
        "heatmap_symmetry_scale_aware.png",
        "attention_by_distance.png",
    ):
        assert (tmp_path / "out" / name).stat().st_size > 1000


def test_analyze_errors_name_the_problem(tmp_path):
    result = run_cli("analyze", str(tmp_path / "missing"), cwd=tmp_path)
    assert result.returncode == 2 and "is not a saved model folder" in result.stderr
    (tmp_path / "empty.txt").write_text("\n")
    result = run_cli("analyze", str(tmp_path), "--texts", str(tmp_path / "empty.txt"), cwd=tmp_path)
    assert result.returncode == 2 and "holds no sentence" in result.stderr


def test_export_turns_a_run_and_its_probe_results_into_a_card(tmp_path, tiny_tokenizer):
    from huggingface_hub import ModelCard

    run = tmp_path / "run"
    AutoModelForMaskedLM.from_config(tiny_config("alibi", vocab_size=len(tiny_tokenizer))).save_pretrained(run)
    tiny_tokenizer.save_pretrained(run)
    (run / "posenc_results.json").write_text(
        json.dumps(
            {
                "variant": "alibi",
                "train_steps": 12,
                "eval_loss": 4.5,
                "locality": 0.31,
                "symmetry": 0.9,
                "symmetry_scale_aware": 0.7,
            }
        )
    )
    probes = {
        "original": 0.6,
        "shuffle-3": 0.59,
        "shuffle-4": 0.6,
        "shuffle-5": 0.58,
        "shuffle-6": 0.6,
        "random": 0.57,
        "role-swap": 0.42,
        "still_entailment": 0.58,
    }
    (tmp_path / "probe_results.json").write_text(json.dumps({"probes": probes, "deltas": {}, "details": {}}))
    result = run_cli(
        "export",
        str(run),
        str(tmp_path / "hub"),
        "--probe_results",
        str(tmp_path / "probe_results.json"),
        "--repo_id",
        "someone/posenc-alibi-tiny",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    card = ModelCard.load(tmp_path / "hub" / "README.md")
    reported = {entry.metric_type: entry.metric_value for entry in card.data.eval_results}
    assert 0.31 in reported.values() and 0.42 in reported.values() and 4.5 in reported.values()
    assert "someone/posenc-alibi-tiny" in card.text
    assert (tmp_path / "hub" / "model.safetensors").exists() and (tmp_path / "hub" / "modeling_posenc.py").exists()
    again = run_cli("export", str(run), str(tmp_path / "hub"), cwd=tmp_path)
    assert again.returncode == 0  # an earlier export may be refreshed
    refused = run_cli("export", str(run), str(run), cwd=tmp_path)
    assert refused.returncode == 2 and "overwrite" in refused.stderr.lower()
