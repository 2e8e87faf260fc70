"""Length extrapolation: the same masked tokens at every length, fixed tables reported, lengths beyond the trained
length marked (untrained position rows apart from the rest), results and plot written."""

import json
import math

import pytest
from conftest import ALL, SENTENCES, tiny_config
from transformers import AutoModelForMaskedLM, BertConfig, BertForMaskedLM

import hf_posenc
from hf_posenc.analysis import extrapolation
from hf_posenc.analysis.extrapolation import (
    BEYOND_TRAINED_LENGTH,
    OK,
    TRAINED_LENGTH_UNKNOWN,
    UNTRAINED_POSITIONS,
    ExtrapolationResult,
    extrapolate,
)
from hf_posenc.training import pretrain, pretrain_arguments

DOCUMENTS = [[sentence] * 3 for sentence in SENTENCES] * 6


def save_tiny(folder, variant, tokenizer, **overrides):
    """A tiny untrained model of `variant` with a 24-row table; `trained_max_length=N` records a trained length as
    pretraining does."""
    config = tiny_config(variant, vocab_size=len(tokenizer), max_position_embeddings=24, **overrides)
    AutoModelForMaskedLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def statuses(result: ExtrapolationResult) -> dict[int, str]:
    return {item.length: item.status for item in result.measurements}


def test_same_tokens_are_masked_at_every_length(tiny_tokenizer):
    stream = extrapolation.token_stream(DOCUMENTS, tiny_tokenizer, max_tokens=10_000)
    assert (stream == tiny_tokenizer.sep_token_id).sum() == len(DOCUMENTS)
    capped = extrapolation.token_stream(DOCUMENTS, tiny_tokenizer, max_tokens=50)
    assert len(capped) == 50 and (capped == stream[:50]).all()


def test_extrapolating_variant_runs_every_length_and_fixed_table_is_reported(tmp_path, tiny_tokenizer):
    rope = save_tiny(tmp_path / "rope", "rope", tiny_tokenizer, trained_max_length=48)
    learned = save_tiny(tmp_path / "learned", "learned", tiny_tokenizer, trained_max_length=16)
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
    result = extrapolate(tmp_path, [16, 32], DOCUMENTS)
    short, long = result.measurements
    # Nothing says how long its training blocks were: its table's 20 rows are not taken for the trained length.
    assert result.trained_length is None and result.trained_length_source == "unknown"
    assert short.status == TRAINED_LENGTH_UNKNOWN and short.loss is not None
    assert long.status.startswith("not run: 32 tokens exceed the 20-position table")


# ------------------------------------------------------------------------------------- the trained length
def test_pretraining_records_the_trained_length_and_extrapolation_reads_it(tmp_path):
    """A real (two-step) pretraining run with 16-token blocks: config.json records 16, and a learned table measured
    at 24 tokens is marked as reading untrained positions; beyond its 24-row table it is not run."""
    output = tmp_path / "run"
    pretrain(
        **pretrain_arguments(
            variant="learned",
            corpus="stdlib",
            vocab_size=200,
            max_seq_length=16,
            config_overrides="hidden_size=32,num_hidden_layers=1,num_attention_heads=2,intermediate_size=64,"
            "max_position_embeddings=24",
            per_device_train_batch_size=4,
            per_device_eval_batch_size=64,
            max_steps=2,
            posenc_metrics=False,
            output_dir=str(output),
            report_to="none",
            disable_tqdm=True,
            dataloader_pin_memory=False,
        )
    )
    assert json.loads((output / "config.json").read_text())["trained_max_length"] == 16
    result = extrapolate(output, [12, 16, 24, 32], DOCUMENTS)
    assert (result.trained_length, result.trained_length_source) == (16, "config.json trained_max_length")
    found = statuses(result)
    assert found[12] == found[16] == OK and found[24] == UNTRAINED_POSITIONS
    assert found[32].startswith("not run: 32 tokens exceed the 24-position table")


def test_posenc_results_json_is_the_fallback_and_without_it_the_length_is_unknown(tmp_path, tiny_tokenizer):
    folder = save_tiny(tmp_path / "alibi", "alibi", tiny_tokenizer)
    unknown = extrapolate(folder, [16, 24], DOCUMENTS)
    assert (unknown.trained_length, unknown.trained_length_source) == (None, "unknown")
    assert statuses(unknown) == {16: TRAINED_LENGTH_UNKNOWN, 24: TRAINED_LENGTH_UNKNOWN}
    assert all(item.loss is not None for item in unknown.measurements)  # measured all the same

    # A run saved before config.json recorded the length: posenc_results.json's max_seq_length says it.
    (folder / "posenc_results.json").write_text(json.dumps({"variant": "alibi", "max_seq_length": 16}))
    result = extrapolate(folder, [16, 24], DOCUMENTS)
    assert (result.trained_length, result.trained_length_source) == (16, "posenc_results.json max_seq_length")
    assert statuses(result) == {16: OK, 24: BEYOND_TRAINED_LENGTH}


def test_a_bad_recorded_length_is_refused(tmp_path, tiny_tokenizer):
    folder = save_tiny(tmp_path / "rope", "rope", tiny_tokenizer, trained_max_length="long")
    with pytest.raises(ValueError, match="trained_max_length is 'long', not a sequence length"):
        extrapolate(folder, [16], DOCUMENTS)


# --------------------------------------------------------------------------- which lengths are marked how
@pytest.mark.parametrize(
    ("variant", "overrides"),
    [("learned", {}), ("tupe", {}), ("attenuated", {"attenuation_form": "learned_table", "attenuation_strength": 0.1})],
)
def test_learned_position_tables_are_marked_untrained_beyond_the_trained_length(
    tmp_path, tiny_tokenizer, variant, overrides
):
    folder = save_tiny(tmp_path / variant, variant, tiny_tokenizer, trained_max_length=16, **overrides)
    result = extrapolate(folder, [12, 16, 20, 24, 48], DOCUMENTS)
    found = statuses(result)
    assert found[12] == found[16] == OK
    assert found[20] == found[24] == UNTRAINED_POSITIONS
    assert found[48].startswith("not run: 48 tokens exceed the 24-position table")  # attenuated's table too
    assert all(item.loss is not None for item in result.measurements if item.length <= 24)


@pytest.mark.parametrize("variant", ["rope", "sinusoidal", "shaw"])
def test_encodings_without_untrained_rows_are_marked_beyond_the_trained_length(tmp_path, tiny_tokenizer, variant):
    # shaw's tiny table clips distances at 8, all of which 16-token blocks reach.
    folder = save_tiny(tmp_path / variant, variant, tiny_tokenizer, trained_max_length=16)
    found = statuses(extrapolate(folder, [16, 24, 48], DOCUMENTS))
    assert found == {16: OK, 24: BEYOND_TRAINED_LENGTH, 48: BEYOND_TRAINED_LENGTH}


def test_relative_tables_are_untrained_only_where_longer_distances_reach_new_rows(tmp_path, tiny_tokenizer):
    """t5 with 16 buckets up to distance 32: blocks of 48 reach every bucket, blocks of 16 do not; shaw clipped at
    32 reads rows for distances 16..31 that blocks of 16 never reached."""
    t5 = save_tiny(tmp_path / "t5", "t5", tiny_tokenizer, trained_max_length=48)
    assert statuses(extrapolate(t5, [48, 64], DOCUMENTS)) == {48: OK, 64: BEYOND_TRAINED_LENGTH}
    t5_short = save_tiny(tmp_path / "t5_short", "t5", tiny_tokenizer, trained_max_length=16)
    assert statuses(extrapolate(t5_short, [16, 24], DOCUMENTS)) == {16: OK, 24: UNTRAINED_POSITIONS}
    shaw = save_tiny(tmp_path / "shaw", "shaw", tiny_tokenizer, trained_max_length=16, max_relative_position=32)
    assert statuses(extrapolate(shaw, [16, 24], DOCUMENTS)) == {16: OK, 24: UNTRAINED_POSITIONS}


@pytest.mark.parametrize("variant", ALL)
def test_every_variant_has_a_status_beyond_its_trained_length(variant):
    """Without running the model: the rule per variant, on the tiny configs' tables (trained on 16, measured at
    1024; the fixed tables' limit is not this function's business)."""
    encoding = hf_posenc.ENCODINGS[variant](tiny_config(variant))
    table = {"learned", "tupe", "shaw", "huang", "t5", "deberta"}  # tiny shaw/huang clip at 8: trained rows only
    expected = UNTRAINED_POSITIONS if variant in table - {"shaw", "huang"} else BEYOND_TRAINED_LENGTH
    assert extrapolation.length_status(1024, 16, encoding) == expected
    assert extrapolation.length_status(16, 16, encoding) == OK
    assert extrapolation.length_status(16, None, encoding) == TRAINED_LENGTH_UNKNOWN


def test_the_plot_draws_lengths_beyond_the_trained_length_hollow_and_names_them(tmp_path, tiny_tokenizer, monkeypatch):
    pytest.importorskip("matplotlib")
    from hf_posenc.analysis import plots

    learned = save_tiny(tmp_path / "learned", "learned", tiny_tokenizer, trained_max_length=16)
    alibi = save_tiny(tmp_path / "alibi", "alibi", tiny_tokenizer, trained_max_length=16)
    results = [extrapolate(folder, [16, 24], DOCUMENTS) for folder in (learned, alibi)]
    figures = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: figures.append(figure) or path)
    extrapolation.plot_extrapolation(results, tmp_path / "plot.png")
    axis = figures[0].axes[0]
    legend = [text.get_text() for text in axis.get_legend().get_texts()]
    assert legend == ["learned", "alibi", "within trained length", "beyond trained length", "untrained positions",
                      "trained length"]  # fmt: skip
    hollow = [line for line in axis.lines if line.get_markerfacecolor() == "none" and line.get_xdata().size]
    assert {(line.get_marker(), tuple(line.get_xdata())) for line in hollow} == {("X", (24,)), ("o", (24,))}
    dashed = [line for line in axis.lines if line.get_linestyle() == "--"]
    assert [tuple(line.get_xdata()) for line in dashed] == [(16, 24), (16, 24)]
    trained_lines = [line for line in axis.lines if line.get_linestyle() == ":" and line.get_xdata()[0] == 16]
    assert len(trained_lines) == 2
    # And the real PNG.
    monkeypatch.undo()
    assert extrapolation.plot_extrapolation(results, tmp_path / "plot.png").stat().st_size > 1000


# ------------------------------------------------------------------------------ context-extension scalings
def test_a_rope_scaling_is_applied_to_a_copy_and_recorded(tmp_path, tiny_tokenizer):
    folder = save_tiny(tmp_path / "rope", "rope", tiny_tokenizer, trained_max_length=16)
    plain = extrapolate(folder, [16, 40], DOCUMENTS)
    yarn = extrapolate(folder, [16, 40], DOCUMENTS, rope_scaling={"rope_type": "yarn", "factor": 4})
    assert plain.rope_scaling is None
    # The scaling extends from the trained length, which it was not given.
    assert yarn.rope_scaling == {"rope_type": "yarn", "factor": 4, "original_max_position_embeddings": 16}
    assert [item.loss for item in yarn.measurements] != [item.loss for item in plain.measurements]
    assert json.loads((folder / "config.json").read_text()).get("rope_context_scaling") is None  # the saved model
    linear = extrapolate(folder, [16], DOCUMENTS, rope_scaling={"rope_type": "linear", "factor": 2})
    assert linear.rope_scaling == {"rope_type": "linear", "factor": 2}
    assert ExtrapolationResult.from_dict(yarn.to_dict()).rope_scaling == yarn.rope_scaling


def test_a_scaling_is_refused_for_a_model_without_rotary_frequencies(tmp_path, tiny_tokenizer):
    folder = save_tiny(tmp_path / "alibi", "alibi", tiny_tokenizer)
    with pytest.raises(ValueError, match="--rope_scaling applies to rope models; .* is a posenc_alibi model"):
        extrapolate(folder, [16], DOCUMENTS, rope_scaling={"rope_type": "yarn", "factor": 4})
    rope = save_tiny(tmp_path / "rope", "rope", tiny_tokenizer)
    with pytest.raises(ValueError, match="rope_context_scaling of type 'yarn' lacks"):
        extrapolate(rope, [16], DOCUMENTS, rope_scaling={"rope_type": "yarn"})


# ------------------------------------------------------------------------------------------ bounded memory
def test_memory_per_forward_is_bounded(monkeypatch):
    config = tiny_config("alibi")  # 4 heads, 2 layers
    assert extrapolation.block_limits(config, 64, 4) == (128, 4)  # TOKENS_PER_BATCH // 64 blocks, all 4 measured
    monkeypatch.setattr(extrapolation, "ATTENTION_BUDGET_BYTES", 3 * 4 * 64 * 64 * 4 * 10)  # ten blocks' matrices
    assert extrapolation.block_limits(config, 64, 4) == (10, 4)
    assert extrapolation.block_limits(config, 16384, 4) == (1, 1)  # never below one block


def test_a_length_that_cannot_fit_is_refused_before_any_length_runs(tmp_path, tiny_tokenizer, monkeypatch):
    folder = save_tiny(tmp_path / "alibi", "alibi", tiny_tokenizer)
    measured = []
    monkeypatch.setattr(extrapolation, "_measure", lambda *arguments: measured.append(arguments[3]))
    # One block of 4096 tokens keeps (2 layers + 3) x 4 heads x 4096^2 x 4 bytes = 1.25 GiB of attention.
    monkeypatch.setattr(extrapolation, "available_memory", lambda device: 2**30)
    with pytest.raises(ValueError, match=r"--lengths 4096: one block of 4096 tokens .* needs at least 1\.2 GiB .*"
                       r"more than the 1\.0 GiB free on cpu; drop it \(the others, 16, fit\)"):  # fmt: skip
        extrapolate(folder, [16, 4096], DOCUMENTS, save_to=tmp_path / "out")
    assert measured == [] and not (tmp_path / "out").exists()
    assert extrapolation.available_memory("cpu") is not None  # /proc/meminfo is read on Linux


def test_each_length_is_saved_as_soon_as_it_is_measured(tmp_path, tiny_tokenizer, monkeypatch):
    folder = save_tiny(tmp_path / "alibi", "alibi", tiny_tokenizer, trained_max_length=16)
    real_measure = extrapolation._measure

    def fail_at_the_second_length(model, stream, masked, length, *rest):
        if length == 24:
            raise MemoryError("out of memory at 24 tokens")
        return real_measure(model, stream, masked, length, *rest)

    monkeypatch.setattr(extrapolation, "_measure", fail_at_the_second_length)
    with pytest.raises(MemoryError):
        extrapolate(folder, [16, 24], DOCUMENTS, save_to=tmp_path / "out")
    saved = ExtrapolationResult.load(tmp_path / "out")
    assert [item.length for item in saved.measurements] == [16] and saved.measurements[0].loss is not None
    assert saved.measurements[0].metric_blocks == 4
