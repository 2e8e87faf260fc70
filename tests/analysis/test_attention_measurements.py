"""The measurements added after the paper: the log-binned distance profile, attention sinks, the rotary frequency
bands, and the batch-by-batch accumulation of a summary; each against a plain loop written from its definition."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from conftest import tiny_config, tiny_mlm

from hf_posenc.analysis import metrics, rotary_bands
from hf_posenc.analysis.model_attention import measure_model, summarize_model
from hf_posenc.analysis.summary import AttentionAccumulator
from hf_posenc.positional import RotaryEncoding

EXACT = 1e-12
HAS_C_COMPILER = any(shutil.which(name) for name in ("cc", "gcc", "clang"))


@pytest.fixture(
    autouse=True,
    params=[
        pytest.param("require", id="kernel", marks=pytest.mark.skipif(not HAS_C_COMPILER, reason="no C compiler")),
        pytest.param("off", id="pytorch"),
    ],
)
def metrics_path(request, monkeypatch):
    """Every test runs on the fused C kernel and on the pure-PyTorch path."""
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", request.param)
    return request.param


def padded_softmax(lengths: list[int], size: int, heads: int, generator, holes: bool = False):
    """[batch, heads, size, size] attention over each sequence's real keys, padded rows full of NaN, and its mask
    (real tokens first, or scattered among padding with `holes`)."""
    mask = torch.zeros(len(lengths), size, dtype=torch.long)
    for index, length in enumerate(lengths):
        real = torch.sort(torch.randperm(size, generator=generator)[:length]).values if holes else torch.arange(length)
        mask[index, real] = 1
    scores = 3 * torch.randn(len(lengths), heads, size, size, generator=generator, dtype=torch.float64)
    attention = torch.softmax(scores.masked_fill(mask[:, None, None, :] == 0, -math.inf), dim=-1)
    return attention.masked_fill(mask[:, None, :, None] == 0, math.nan), mask


def real_block(matrix: torch.Tensor, mask_row: torch.Tensor) -> list[list[float]]:
    real = mask_row.nonzero().flatten()
    return matrix[real][:, real].tolist()


def naive_log_bins(matrix: list[list[float]], bins_per_side: int) -> list[float]:
    """Mean attention per (query, key) pair in each signed log bin, from the definition."""
    size = len(matrix)
    totals = [0.0] * (2 * bins_per_side + 1)
    pairs = [0] * (2 * bins_per_side + 1)
    for i in range(size):
        for j in range(size):
            distance = j - i
            column = bins_per_side + (0 if distance == 0 else int(math.copysign(abs(distance).bit_length(), distance)))
            totals[column] += matrix[i][j]
            pairs[column] += 1
    return [total / count if count else math.nan for total, count in zip(totals, pairs)]


def assert_same(got, expected, tol=EXACT):
    for a, b in zip(got, expected, strict=True):
        if b is None or (isinstance(b, float) and math.isnan(b)):
            assert a is None or math.isnan(a), (got, expected)
        else:
            assert a == pytest.approx(b, abs=tol), (got, expected)


# ----------------------------------------------------------------------------------------------------- log bins


@pytest.mark.parametrize("holes", [False, True])
def test_log_bins_match_the_definition_per_matrix(holes):
    generator = torch.Generator().manual_seed(1 + holes)
    for size in (1, 2, 3, 4, 5, 8, 9, 16, 17, 33):
        lengths = sorted({1, max(1, size // 2), size})
        attention, mask = padded_softmax(lengths, size, 2, generator, holes)
        measured = metrics.measure_attentions((attention,), mask)["log_bins"][0]  # [batch, heads, 2M+1]
        reach = metrics.bins_per_side(size)
        assert measured.shape == (len(lengths), 2, 2 * reach + 1)
        for b in range(len(lengths)):
            for h in range(2):
                assert_same(measured[b, h].tolist(), naive_log_bins(real_block(attention[b, h], mask[b]), reach))


def test_log_bins_of_uniform_attention_are_flat_and_ranges_stop_at_the_longest_distance():
    summary = metrics.summarize(torch.full((1, 1, 1, 10, 10), 0.1, dtype=torch.float64))
    bins = summary["distance_bins"]
    assert bins["ranges"] == [[-9, -8], [-7, -4], [-3, -2], [-1, -1], [0, 0], [1, 1], [2, 3], [4, 7], [8, 9]]
    assert bins["mean"] == pytest.approx([0.1] * 9, abs=EXACT)
    assert bins["per_layer"] == [bins["mean"]]
    assert bins["relative_mean"] == pytest.approx([1.0] * 9, abs=EXACT)  # uniform attention is 1 x uniform


def test_relative_log_bins_do_not_depend_on_the_mix_of_lengths():
    lengths = [4, 16]
    mask = torch.tensor([[1] * 4 + [0] * 12, [1] * 16])
    uniform = (mask[:, None, None, :] / mask.sum(-1)[:, None, None, None]).double().expand(2, 1, 16, 16)
    bins = metrics.summarize((uniform,), mask)["distance_bins"]
    assert bins["relative_mean"] == pytest.approx([1.0] * len(bins["ranges"]), abs=EXACT)
    # Per key, the short sequence's 1/4 and the long one's 1/16 mix where both reach, the far bins hold only 1/16.
    assert bins["mean"][len(bins["mean"]) // 2 + 1] == pytest.approx((1 / 4 + 1 / 16) / 2)
    assert bins["mean"][-1] == pytest.approx(1 / 16) and len(lengths) == 2


def test_log_bins_show_attention_that_rises_again_far_away():
    size = 64
    positions = torch.arange(size, dtype=torch.float64)
    distance = (positions[None, :] - positions[:, None]).abs()
    u_shape = torch.softmax(-0.3 * distance + 0.6 * (distance - 20).clamp_min(0), dim=-1)  # local, then rising again
    mean = metrics.summarize(u_shape[None, None, None])["distance_bins"]["mean"]
    right = mean[len(mean) // 2 :]
    lowest = right.index(min(right))
    assert 0 < lowest < len(right) - 1 and right[-1] > right[lowest]


# ---------------------------------------------------------------------------------------------------- sinks


def naive_sink(matrix: list[list[float]], ids: list[int], token: int) -> float:
    columns = [j for j, value in enumerate(ids) if value == token]
    if not columns:
        return math.nan
    return sum(sum(row[j] for j in columns) for row in matrix) / len(matrix)


@pytest.mark.parametrize("holes", [False, True])
def test_sinks_match_the_definition_and_are_undefined_without_the_token(holes):
    generator = torch.Generator().manual_seed(5)
    lengths = [12, 7, 3]
    attention, mask = padded_softmax(lengths, 12, 3, generator, holes)
    input_ids = torch.randint(10, 20, (3, 12), generator=generator)
    cls, sep = 2, 3
    for b in range(3):
        real = mask[b].nonzero().flatten()
        input_ids[b, real[0]] = cls
        if b != 2:  # the third sequence has no [SEP]
            input_ids[b, real[-1]] = sep
        if b == 0:
            input_ids[b, real[4]] = sep  # a pair of sentences: two [SEP]
    input_ids[2, mask[2] == 0] = sep  # ids under padding never count
    measured = metrics.measure_attentions(
        (attention, attention), mask, input_ids=input_ids, special_token_ids={"cls": cls, "sep": sep, "mask": None}
    )
    assert "sink_mask" not in measured  # a token the tokenizer does not have is not reported
    for name, token in (("sink_cls", cls), ("sink_sep", sep)):
        for b in range(3):
            ids = input_ids[b][mask[b] == 1].tolist()
            for h in range(3):
                expected = naive_sink(real_block(attention[b, h], mask[b]), ids, token)
                assert_same([measured[name][1, b, h].item()], [expected])
    summary = metrics.summarize((attention,), mask, input_ids=input_ids, special_token_ids={"cls": cls, "sep": sep})
    assert summary["metrics"] == ["locality", "symmetry", "symmetry_scale_aware", "sink_cls", "sink_sep"]
    expected_sep = measured["sink_sep"][0, :2].mean(dim=0)  # the sequence without [SEP] is skipped, not zero
    assert summary["per_head"]["sink_sep"][0] == pytest.approx(expected_sep.tolist(), abs=EXACT)
    without = metrics.summarize((attention,), mask, input_ids=input_ids, special_token_ids={"sep": 99})
    assert without["sink_sep"] is None and without["per_head"]["sink_sep"] == [[None] * 3]
    assert "sink_cls" not in metrics.summarize((attention,), mask)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"special_token_ids": {"cls": 2}}, "need the input_ids"),
        ({"special_token_ids": {"cls": 2}, "input_ids": torch.zeros(2, 5, dtype=torch.long)}, r"shape \[batch, T\]"),
        ({"special_token_ids": {"cls": 2.5}, "input_ids": torch.zeros(2, 6, dtype=torch.long)}, "int token id"),
        ({"special_token_ids": [2], "input_ids": torch.zeros(2, 6, dtype=torch.long)}, "must map names"),
    ],
)
def test_sink_bad_input_names_the_problem(kwargs, message):
    attention = torch.softmax(torch.randn(2, 1, 6, 6, dtype=torch.float64), dim=-1)
    with pytest.raises(ValueError, match=message):
        metrics.summarize((attention,), **kwargs)


# ------------------------------------------------------------------------------------------------ accumulating


def test_batches_accumulate_to_the_numbers_of_one_batch():
    """Sequences of many lengths, measured at once (padded to the longest) and in batches padded to their own
    length (so each batch has its own T, distance window and number of log bins), give the same summary."""
    generator = torch.Generator().manual_seed(7)
    lengths = [3, 17, 1, 9, 30, 2, 12, 30, 5]
    size, heads = max(lengths), 2
    layers = [padded_softmax(lengths, size, heads, generator)[0] for _ in range(3)]
    mask = padded_softmax(lengths, size, heads, generator)[1]
    input_ids = torch.randint(5, 9, (len(lengths), size), generator=generator)
    input_ids[:, 0] = 1
    special = {"cls": 1, "sep": 5}
    whole = metrics.summarize(layers, mask, input_ids=input_ids, special_token_ids=special)
    accumulator = AttentionAccumulator()
    for start in range(0, len(lengths), 2):
        part = slice(start, start + 2)
        longest = max(lengths[part])
        cut = [layer[part][:, :, :longest, :longest] for layer in layers]
        measured = metrics.measure_attentions(
            cut, mask[part, :longest], input_ids=input_ids[part, :longest], special_token_ids=special
        )
        accumulator.add(measured, longest, {"tolerance": metrics.DEFAULT_SYMMETRY_TOLERANCE})
    parts = accumulator.summary()
    assert parts["batch_size"] == whole["batch_size"] == len(lengths) and parts["seq_len"] == whole["seq_len"]
    assert parts["metrics"] == whole["metrics"]
    for name in whole["metrics"]:
        assert_same([parts[name]], [whole[name]])
        assert_same(parts["per_layer"][name], whole["per_layer"][name])
        for got, expected in zip(parts["per_head"][name], whole["per_head"][name], strict=True):
            assert_same(got, expected)
    for entry in ("distance", "distance_bins"):
        where = "offsets" if entry == "distance" else "ranges"
        assert parts[entry][where] == whole[entry][where] and parts[entry].keys() == whole[entry].keys()
        for prefix in ("", "relative_") if entry == "distance_bins" else ("",):
            assert_same(parts[entry][f"{prefix}mean"], whole[entry][f"{prefix}mean"])
            for got, expected in zip(
                parts[entry][f"{prefix}per_layer"], whole[entry][f"{prefix}per_layer"], strict=True
            ):
                assert_same(got, expected)


def test_accumulator_refuses_batches_of_another_model():
    accumulator = AttentionAccumulator()
    attention = torch.softmax(torch.randn(1, 2, 4, 4, dtype=torch.float64), dim=-1)
    accumulator.add(metrics.measure_attentions((attention,)), 4)
    with pytest.raises(ValueError, match="accumulate one model's batches only"):
        accumulator.add(metrics.measure_attentions((attention, attention)), 4)
    with pytest.raises(ValueError, match="no batch was added"):
        AttentionAccumulator().summary()


# ----------------------------------------------------------------------------------------------- rotary bands


def naive_band_masses(query, key, frequencies, bands_of_pairs, real):
    """sum over real (i, j) of |sum over the band's pairs of the 2-D dot product of the rotated pairs|, with the
    rotation written out from RoPE's definition (pair k = dimensions k and k + d/2, angle position * w_k)."""
    half = len(query[0]) // 2
    length = len(query)
    masses = []
    for band in bands_of_pairs:
        total = 0.0
        for i in range(length):
            for j in range(length):
                if not (real[i] and real[j]):
                    continue
                logit = 0.0
                for k in band:

                    def turned(vector, position):
                        angle = position * frequencies[k]
                        x, y = vector[k], vector[k + half]
                        return x * math.cos(angle) - y * math.sin(angle), x * math.sin(angle) + y * math.cos(angle)

                    qx, qy = turned(query[i], i)
                    kx, ky = turned(key[j], j)
                    logit += qx * kx + qy * ky
                total += abs(logit)
        masses.append(total)
    return masses


def test_band_masses_match_the_pairwise_decomposition():
    encoding = RotaryEncoding(tiny_config("rope", num_attention_heads=2))  # head_dim 16: 8 pairs
    bands = rotary_bands.rotary_bands(encoding)
    frequencies = encoding.inverse_frequencies().double().tolist()
    assert bands.names == ("high", "medium", "low")
    pairs_of_band = [sorted({int(d) % 8 for d in members}) for members in bands.dimensions]
    assert pairs_of_band == [[0, 1, 2], [3, 4, 5], [6, 7]]  # frequencies fall with the pair index
    assert bands.description["high"]["frequencies"] == pytest.approx([frequencies[0], frequencies[2]])
    generator = torch.Generator().manual_seed(3)
    query, key = torch.randn(2, 2, 2, 7, 16, generator=generator, dtype=torch.float64)
    real = torch.tensor([[1] * 7, [1] * 4 + [0] * 3], dtype=torch.bool)
    rotated_query, rotated_key = encoding.rotate(query, key, encoding.layer_context(7, "cpu", torch.float64))
    masses = rotary_bands.band_masses(rotated_query, rotated_key, bands.dimensions, real)
    for b in range(2):
        for h in range(2):
            expected = naive_band_masses(
                query[b, h].tolist(), key[b, h].tolist(), frequencies, pairs_of_band, real[b].tolist()
            )
            assert masses[b, h].tolist() == pytest.approx(expected, rel=1e-5)


class MisdeclaredRotary(RotaryEncoding):
    """Rotates with RoPE's frequencies but declares twice them."""

    def inverse_frequencies(self, seq_len=None):
        return 2 * super().inverse_frequencies(seq_len)


def test_unrotated_dimensions_form_their_own_band_and_misdeclared_frequencies_are_refused():
    # p-RoPE keeps the lowest quarter of the 8 pairs (6 and 7: dimensions 6, 7, 14, 15) unrotated.
    truncated = rotary_bands.rotary_bands(
        RotaryEncoding(tiny_config("rope", num_attention_heads=2, rope_frequency_fraction=0.75))
    )
    assert truncated.names == ("high", "medium", "low", "unrotated")
    assert sorted(truncated.dimensions[-1].tolist()) == [6, 7, 14, 15]
    assert truncated.description["unrotated"] == {"dimensions": 4, "frequencies": [0.0, 0.0]}
    # Partial rotation turns the first half of each head (pairs k, k + 4) and leaves dimensions 8-15 alone.
    partial = rotary_bands.rotary_bands(
        RotaryEncoding(tiny_config("rope", num_attention_heads=2, rope_partial_rotary_factor=0.5))
    )
    assert [sorted(members.tolist()) for members in partial.dimensions] == [
        [0, 1, 4, 5],
        [2, 6],
        [3, 7],
        list(range(8, 16)),
    ]
    with pytest.raises(ValueError, match="none of its inverse_frequencies"):
        rotary_bands.rotary_bands(MisdeclaredRotary(tiny_config("rope", num_attention_heads=2)))
    assert rotary_bands.rotary_bands(tiny_mlm("alibi").base_model.position) is None


def test_rotary_model_reports_band_shares_that_ignore_padding():
    torch.manual_seed(0)
    model = tiny_mlm("rope", num_attention_heads=2)
    generator = torch.Generator().manual_seed(4)
    input_ids = torch.randint(5, 100, (2, 14), generator=generator)
    mask = torch.ones(2, 14, dtype=torch.long)
    mask[1, 9:] = 0
    summary = summarize_model(model, {"input_ids": input_ids, "attention_mask": mask})
    names = ["rotary_high", "rotary_medium", "rotary_low"]
    assert summary["metrics"][3:] == names
    assert summary["rotary_bands"]["low"]["dimensions"] == 4
    totals = torch.tensor([summary["per_head"][name] for name in names], dtype=torch.float64).sum(0)
    torch.testing.assert_close(totals, torch.ones_like(totals), rtol=0, atol=1e-12)  # shares of one whole
    padded = measure_model(model, {"input_ids": input_ids, "attention_mask": mask}).measured
    alone = measure_model(model, {"input_ids": input_ids[1:, :9], "attention_mask": mask[1:, :9]}).measured
    for name in names:
        torch.testing.assert_close(padded[name][:, 1], alone[name][:, 0], rtol=1e-5, atol=1e-6)
    assert "rotary_high" not in summarize_model(tiny_mlm("t5"), {"input_ids": input_ids})["metrics"]
