"""Length extrapolation: the same masked tokens at every length, fixed tables reported, results and plot written."""

import math

import pytest
from conftest import SENTENCES, tiny_config
from transformers import AutoModelForMaskedLM, BertConfig, BertForMaskedLM

from hf_posenc.analysis import extrapolation
from hf_posenc.analysis.extrapolation import ExtrapolationResult, extrapolate

DOCUMENTS = [[sentence] * 3 for sentence in SENTENCES] * 6


def save_tiny(folder, variant, tokenizer, **overrides):
    config = tiny_config(variant, vocab_size=len(tokenizer), max_position_embeddings=24, **overrides)
    AutoModelForMaskedLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_same_tokens_are_masked_at_every_length(tiny_tokenizer):
    stream = extrapolation.token_stream(DOCUMENTS, tiny_tokenizer, max_tokens=10_000)
    assert (stream == tiny_tokenizer.sep_token_id).sum() == len(DOCUMENTS)
    capped = extrapolation.token_stream(DOCUMENTS, tiny_tokenizer, max_tokens=50)
    assert len(capped) == 50 and (capped == stream[:50]).all()


def test_extrapolating_variant_runs_every_length_and_fixed_table_is_reported(tmp_path, tiny_tokenizer):
    rope = save_tiny(tmp_path / "rope", "rope", tiny_tokenizer)
    learned = save_tiny(tmp_path / "learned", "learned", tiny_tokenizer)
    results = [extrapolate(folder, [16, 48], DOCUMENTS, text_name="test sentences") for folder in (rope, learned)]

    rope_16, rope_48 = results[0].measurements
    assert rope_16.status == rope_48.status == "ok"
    # An untrained model over a 120-token vocabulary: the loss is near log(120) at every length.
    assert all(abs(item.loss - math.log(len(tiny_tokenizer))) < 1.0 for item in (rope_16, rope_48))
    assert item_perplexity_matches(rope_16)
    # Same masked tokens: blocks of 46 body tokens cover a prefix of what blocks of 14 cover.
    assert rope_48.masked_tokens <= rope_16.masked_tokens
    assert 0 < rope_16.locality <= 1 and rope_16.symmetry is not None

    learned_16, learned_48 = results[1].measurements
    assert learned_16.status == "ok" and learned_16.loss is not None
    assert learned_48.status.startswith("not run: 48 tokens exceed the 24-position table")
    assert learned_48.loss is None and results[1].position_limit == 24

    results[1].save(tmp_path / "out")
    assert ExtrapolationResult.load(tmp_path / "out").measurements == results[1].measurements
    pytest.importorskip("matplotlib")
    png = extrapolation.plot_extrapolation(results, tmp_path / "out" / "extrapolation.png")
    assert png.stat().st_size > 1000
    assert "not run" in extrapolation.format_table(results)


def item_perplexity_matches(item) -> bool:
    return item.perplexity == pytest.approx(math.exp(item.loss))


def test_a_stock_bert_is_limited_by_its_position_table(tmp_path, tiny_tokenizer):
    config = BertConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=20,
    )
    BertForMaskedLM(config).save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    short, long = extrapolate(tmp_path, [16, 32], DOCUMENTS).measurements
    assert short.status == "ok" and long.status.startswith("not run: 32 tokens exceed the 20-position table")
