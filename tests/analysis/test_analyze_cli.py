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


def test_batches_give_the_numbers_of_one_batch_in_bounded_memory(tmp_path, tiny_tokenizer, capsys, monkeypatch):
    """`--batch_size` bounds what runs at once (each batch padded to its own length) and never changes the numbers;
    a rotary model also reports its frequency bands, and every model its [CLS] and [SEP] sinks."""
    from hf_posenc.analysis import folder_report

    folder = tmp_path / "model"
    model = AutoModelForMaskedLM.from_config(tiny_config("rope", vocab_size=len(tiny_tokenizer)))
    model.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    sentences = [" ".join(SENTENCES[index % 4].split()[: 3 + index]) for index in range(11)]
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(sentences) + "\n")
    batch_sizes = []
    measure = folder_report.measure_model

    def measure_and_count(model, batch, special_token_ids):
        batch_sizes.append(batch["input_ids"].shape[0])
        return measure(model, batch, special_token_ids)

    monkeypatch.setattr(folder_report, "measure_model", measure_and_count)
    summaries = {}
    for size in ("3", "64"):
        output = tmp_path / f"out{size}"
        command = ["analyze", str(folder), "--texts", str(texts), "--output", str(output), "--batch_size", size]
        assert cli.main(command) == 0
        summaries[size] = json.loads((output / "summary.json").read_text())
    printed = capsys.readouterr().out
    assert batch_sizes == [3, 3, 3, 2, 11]
    split, whole = summaries["3"], summaries["64"]
    assert split["sentences_per_batch"] == 3 and whole["sentences_per_batch"] == 64
    assert (
        split["metrics"]
        == whole["metrics"]
        == [
            "locality",
            "symmetry",
            "symmetry_scale_aware",
            "sink_cls",
            "sink_sep",
            "rotary_high",
            "rotary_medium",
            "rotary_low",
        ]
    )
    assert split["seq_len"] == whole["seq_len"] and split["distance_bins"]["ranges"] == whole["distance_bins"]["ranges"]
    # The same numbers up to the float32 noise of running the model at other padded lengths.
    for name in whole["metrics"]:
        assert split[name] == pytest.approx(whole[name], abs=1e-6)
        for got, expected in zip(split["per_head"][name], whole["per_head"][name], strict=True):
            assert got == pytest.approx(expected, abs=1e-6)
    assert split["distance_bins"]["mean"] == pytest.approx(whole["distance_bins"]["mean"], abs=1e-6)
    assert split["distance"]["mean"] == pytest.approx(whole["distance"]["mean"], abs=1e-6)
    assert sum(whole[f"rotary_{band}"] for band in ("high", "medium", "low")) == pytest.approx(1.0)
    assert 0 < whole["sink_cls"] < 1 and whole["rotary_bands"]["high"]["frequencies"][0] == pytest.approx(1.0)
    assert "| to [CLS] | to [SEP] | RoPE high | RoPE medium | RoPE low |" in printed
    assert "attention per key by distance |j - i|" in printed and "|       2-3 |" in printed
    for name in ("attention_by_log_distance.png", "heatmap_sink_cls.png", "heatmap_rotary_low.png"):
        assert (tmp_path / "out3" / name).stat().st_size > 1000


def test_analyze_refuses_a_bad_batch_size(tmp_path, capsys):
    assert cli.main(["analyze", str(tmp_path), "--batch_size", "0"]) == 2
    assert "--batch_size must be a whole number of sentences >= 1" in capsys.readouterr().err


def test_each_model_gets_its_own_default_folder_and_another_models_report_is_kept(
    tmp_path, tiny_tokenizer, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    for name in ("first", "second"):
        save_model(tmp_path / name, tiny_tokenizer, "hf_posenc")
        assert cli.main(["analyze", str(tmp_path / name), "--no_plots", "--max_length", "12"]) == 0
        report = json.loads((tmp_path / "outputs" / f"analysis-{name}" / "summary.json").read_text())
        assert report["model"] == str(tmp_path / name)
    capsys.readouterr()
    second_report = tmp_path / "outputs" / "analysis-second"
    command = ["analyze", str(tmp_path / "first"), "--no_plots", "--max_length", "12", "--output", str(second_report)]
    assert cli.main(command) == 2
    assert "holds the report of" in capsys.readouterr().err
    assert json.loads((second_report / "summary.json").read_text())["model"] == str(tmp_path / "second")
    assert cli.main([*command, "--overwrite"]) == 0
    assert json.loads((second_report / "summary.json").read_text())["model"] == str(tmp_path / "first")
