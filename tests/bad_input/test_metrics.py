"""Bad input to the metrics, the model-attention helpers, the training callback and `hf-posenc analyze`: each gives
a clear error (or, where the input is valid after all, the right answer). NaN, negative, non-square, empty and
mis-shaped inputs are in tests/analysis/test_locality_symmetry.py (test_bad_input_raises_value_error_naming_the_problem,
test_summarize_bad_input)."""

from __future__ import annotations

import json
import os

import pytest
import torch
from conftest import tiny_config
from transformers import AutoModelForMaskedLM, BartConfig, BertConfig, BertModel, GPT2Config, GPT2Model

from hf_posenc import cli
from hf_posenc.analysis import metrics, model_attention
from hf_posenc.analysis.callback import LocalitySymmetryCallback

GOOD = torch.softmax(torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(0)), dim=-1)

# --------------------------------------------------------------------------------------------------------
# The metrics API
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: metrics.locality(torch.empty(2, 3, 6, 6, device="meta")),
        lambda: metrics.symmetry(torch.empty(6, 6, device="meta"), method="scale_aware"),
        lambda: metrics.validate_attention(torch.empty(2, 3, 6, 6, device="meta")),
        lambda: metrics.summarize((torch.empty(2, 3, 6, 6, device="meta"),)),
        lambda: metrics.summarize(torch.empty(1, 2, 3, 6, 6, device="meta")),
    ],
)
def test_meta_attention_is_a_clear_error(call):
    with pytest.raises(ValueError, match="attn is a meta tensor: it has a shape but no values"):
        call()


def test_a_meta_attention_mask_is_a_clear_error():
    with pytest.raises(ValueError, match="attention_mask is a meta tensor"):
        metrics.locality(GOOD, torch.ones(2, 6, device="meta"))


def test_sparse_attention_is_measured_like_dense():
    sparse = GOOD.masked_fill(GOOD < 0.1, 0)
    sparse = sparse / sparse.sum(-1, keepdim=True)
    for function in (metrics.locality, metrics.symmetry):
        torch.testing.assert_close(function(sparse.to_sparse()), function(sparse), rtol=0, atol=0)


@pytest.mark.parametrize("seq_len", [0, -4, 2.5, "8", True])
def test_position_attention_refuses_a_bad_length(seq_len):
    model = AutoModelForMaskedLM.from_config(tiny_config("alibi"))
    with pytest.raises(ValueError, match="seq_len must be an int >= 1"):
        model_attention.position_attention(model, seq_len)


def test_a_model_on_the_meta_device_is_a_clear_error():
    with torch.device("meta"):
        model = AutoModelForMaskedLM.from_config(tiny_config("alibi"))
    batch = {"input_ids": torch.ones(1, 4, dtype=torch.long)}
    with pytest.raises(ValueError, match="meta device"):
        model_attention.summarize_model(model, batch)
    with pytest.raises(ValueError, match="meta device"):
        model_attention.position_attention(model, 8)


def test_summarize_model_needs_model_inputs_and_accepts_a_batch_without_mask():
    model = AutoModelForMaskedLM.from_config(tiny_config("t5"))
    for batch in (torch.ones(1, 4, dtype=torch.long), {"attention_mask": torch.ones(1, 4)}):
        with pytest.raises(ValueError, match="batch must be a dict of model inputs with input_ids"):
            model_attention.summarize_model(model, batch)
    input_ids = torch.randint(5, 100, (2, 9))
    without_mask = model_attention.summarize_model(model, {"input_ids": input_ids})
    with_mask = model_attention.summarize_model(model, {"input_ids": input_ids, "attention_mask": torch.ones(2, 9)})
    assert without_mask == with_mask


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_probe_sequences": 0}, "num_probe_sequences must be >= 1"),
        ({"heatmap_every": 0}, "heatmap_every must be >= 1"),
        ({"every_n_steps": -1}, "every_n_steps must be >= 1"),
    ],
)
def test_callback_refuses_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        LocalitySymmetryCallback(probe_batch={"input_ids": torch.ones(1, 4, dtype=torch.long)}, **options)


# --------------------------------------------------------------------------------------------------------
# hf-posenc analyze
# --------------------------------------------------------------------------------------------------------


@pytest.fixture
def model_folder(tmp_path, tiny_tokenizer):
    folder = tmp_path / "model"
    AutoModelForMaskedLM.from_config(tiny_config("alibi", vocab_size=len(tiny_tokenizer))).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


def analyze(capsys, *arguments) -> tuple[int, str, str]:
    status = cli.main(["analyze", *map(str, arguments)])
    printed = capsys.readouterr()
    return status, printed.out, printed.err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00s\x00e\x00n\x00t\x00", "is not UTF-8 text"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00", "holds NUL bytes, so it is binary"),
    ],
)
def test_a_binary_texts_file_is_a_clear_error(tmp_path, model_folder, capsys, content, message):
    (tmp_path / "texts.bin").write_bytes(content)
    status, _, error = analyze(capsys, model_folder, "--texts", tmp_path / "texts.bin", "--output", tmp_path / "out")
    assert status == 2 and message in error and "give a" in error
    assert not (tmp_path / "out").exists()


def test_a_folder_as_texts_is_a_clear_error(tmp_path, model_folder, capsys):
    status, _, error = analyze(capsys, model_folder, "--texts", tmp_path, "--output", tmp_path / "out")
    assert status == 2 and "is a folder; give a text file" in error


@pytest.mark.parametrize("max_length", [0, -5])
def test_a_max_length_below_one_is_a_clear_error(tmp_path, model_folder, capsys, max_length):
    status, _, error = analyze(capsys, model_folder, "--max_length", max_length, "--output", tmp_path / "out")
    assert status == 2 and "--max_length must be a whole number of tokens >= 1" in error
    assert not (tmp_path / "out").exists()


def test_sentences_longer_than_the_model_takes_are_a_clear_error(tmp_path, tiny_tokenizer, capsys):
    folder = tmp_path / "short_bert"
    config = BertConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=8,
    )
    BertModel(config).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    status, _, error = analyze(capsys, folder, "--output", tmp_path / "out")
    assert status == 2 and "takes at most 8 positions; pass --max_length 8 or less" in error
    assert analyze(capsys, folder, "--output", tmp_path / "out", "--max_length", 8, "--no_plots")[0] == 0


def test_an_output_that_is_a_file_is_a_clear_error(tmp_path, model_folder, capsys):
    (tmp_path / "out").write_text("mine")
    status, _, error = analyze(capsys, model_folder, "--output", tmp_path / "out")
    assert status == 2 and "is a file; give a folder" in error
    assert (tmp_path / "out").read_text() == "mine"


def test_an_output_that_is_a_symlink_is_refused(tmp_path, model_folder, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out").symlink_to(elsewhere)
    status, _, error = analyze(capsys, model_folder, "--output", tmp_path / "out", "--no_plots")
    assert status == 2 and "is a symbolic link; give a real folder" in error
    assert list(elsewhere.iterdir()) == []


def test_links_inside_the_output_are_replaced_not_written_through(tmp_path, model_folder, capsys):
    output = tmp_path / "out"
    output.mkdir()
    victims = {name: tmp_path / f"victim_{name}" for name in ("summary.json", "heatmap_locality.png")}
    for name, victim in victims.items():
        victim.write_text("precious")
        (output / name).symlink_to(victim)
    status, _, error = analyze(capsys, model_folder, "--output", output, "--max_length", 32)
    assert status == 0, error
    for name, victim in victims.items():
        assert victim.read_text() == "precious"
        assert not (output / name).is_symlink() and (output / name).stat().st_size > 100
    assert json.loads((output / "summary.json").read_text())["num_layers"] == 2


def test_a_broken_config_or_a_missing_tokenizer_or_weights_is_a_clear_error(
    tmp_path, model_folder, tiny_tokenizer, capsys
):
    (model_folder / "model.safetensors").unlink()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (model_folder / name).unlink(missing_ok=True)
    status, _, error = analyze(capsys, model_folder, "--output", tmp_path / "out")
    assert status == 2 and "has no tokenizer" in error and "tokenizer.save_pretrained(folder)" in error
    (model_folder / "tokenizer_config.json").write_text("{}")
    status, _, error = analyze(capsys, model_folder, "--output", tmp_path / "out")
    assert status == 2 and error.count("\n") == 1 and "tokenizer does not load" in error
    tiny_tokenizer.save_pretrained(model_folder)
    status, _, error = analyze(capsys, model_folder, "--output", tmp_path / "out")
    assert status == 2 and "holds no model weights" in error and error.count("\n") == 1
    (model_folder / "config.json").write_text("{not json")
    status, _, error = analyze(capsys, model_folder, "--output", tmp_path / "out")
    assert status == 2 and "config.json is not valid JSON" in error


def test_a_causal_decoder_is_measured_with_symmetry_reported_as_meaningless(tmp_path, tiny_tokenizer, capsys):
    folder = tmp_path / "gpt2"
    config = GPT2Config(vocab_size=len(tiny_tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=64)
    GPT2Model(config).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    status, out, error = analyze(capsys, folder, "--output", tmp_path / "out")
    assert status == 0, error
    assert "has causal attention (gpt2)" in error and "symmetry (left against right) is meaningless" in error
    assert "causal attention" in out and "|  mean |" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["attention"] == "causal" and "meaningless" in summary["warnings"][0]
    assert summary["symmetry"] is None and summary["symmetry_scale_aware"] is None
    assert summary["per_head"]["symmetry"] == [[None] * 4] * 2
    assert 0 < summary["locality"] <= 1
    profile = dict(zip(summary["distance"]["offsets"], summary["distance"]["mean"]))
    assert all(profile[offset] == pytest.approx(0, abs=1e-6) for offset in profile if offset > 0)  # nothing ahead
    assert not (tmp_path / "out" / "heatmap_symmetry.png").exists()
    assert (tmp_path / "out" / "heatmap_locality.png").exists()


def test_an_encoder_decoder_is_a_clear_error(tmp_path, capsys):
    folder = tmp_path / "bart"
    BartConfig(vocab_size=120, d_model=32, encoder_layers=1, decoder_layers=1).save_pretrained(folder)
    status, _, error = analyze(capsys, folder, "--output", tmp_path / "out")
    assert status == 2 and "holds an encoder-decoder (bart)" in error and "model.get_encoder()" in error


def test_the_output_folder_is_created_with_the_users_umask(tmp_path, model_folder, capsys):
    previous = os.umask(0o022)
    try:
        assert analyze(capsys, model_folder, "--output", tmp_path / "out", "--no_plots", "--max_length", 32)[0] == 0
    finally:
        os.umask(previous)
    assert (tmp_path / "out" / "summary.json").stat().st_mode & 0o777 == 0o644
