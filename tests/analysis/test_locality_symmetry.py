"""Locality and symmetry metrics against naive loop implementations written from the definitions."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_posenc.analysis import attention_input, metrics

EXACT = 1e-9
FLOAT64_EPS = torch.finfo(torch.float64).eps
HAS_C_COMPILER = any(shutil.which(name) for name in ("cc", "gcc", "clang"))


@pytest.fixture(
    scope="module",
    autouse=True,
    params=[
        pytest.param("require", id="kernel", marks=pytest.mark.skipif(not HAS_C_COMPILER, reason="no C compiler")),
        pytest.param("off", id="pytorch"),
    ],
)
def metrics_path(request):
    """Every test here runs twice: on the fused C kernel (CPU default) and on the pure-PyTorch path."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_POSENC_METRICS_KERNEL", request.param)
        yield request.param


# --------------------------------------------------------------------------------------------------------
# Naive references: plain Python loops over lists of floats, written from the definitions in issue 3
# --------------------------------------------------------------------------------------------------------


def naive_locality(matrix: list[list[float]]) -> float:
    size = len(matrix)
    row_values = [sum(matrix[i][j] * 2.0 ** -abs(i - j) for j in range(size)) for i in range(size)]
    return sum(row_values) / size


def naive_symmetry_reference(matrix: list[list[float]]) -> float:
    size = len(matrix)
    pooled: list[float] = []
    for i in range(size):
        pairs = min(i, size - 1 - i)
        if pairs < 1:
            continue
        differences = [abs(matrix[i][i - t] - matrix[i][i + t]) for t in range(1, pairs + 1)]
        low, high = min(differences), max(differences)
        if high - low < 10 * FLOAT64_EPS:  # all equal (scikit-learn's MinMaxScaler constant rule)
            pooled.extend([0.0] * pairs)
        else:
            pooled.extend((d - low) / (high - low) for d in differences)
    return math.nan if not pooled else 1.0 - sum(pooled) / len(pooled)


def naive_symmetry_scale_aware(matrix: list[list[float]], tolerance: float = 1e-4) -> float:
    size = len(matrix)
    weighted_scores, total_mass, any_pair = 0.0, 0.0, False
    for i in range(size):
        pairs = min(i, size - 1 - i)
        if pairs < 1:
            continue
        any_pair = True
        row_difference, row_mass = 0.0, 0.0
        for t in range(1, pairs + 1):
            a, b = matrix[i][i - t], matrix[i][i + t]
            row_mass += a + b
            if abs(a - b) > tolerance * max(a, b):
                row_difference += abs(a - b)
        if row_mass > 0:  # rows weighted by their mirrored mass; a massless row weighs nothing
            weighted_scores += row_mass * (1.0 - row_difference / row_mass)
            total_mass += row_mass
    if not any_pair:
        return math.nan
    return 1.0 if total_mass == 0 else weighted_scores / total_mass


def naive_distance_profile(matrix: list[list[float]], max_distance: int) -> list[float]:
    size = len(matrix)
    profile = []
    for offset in range(-max_distance, max_distance + 1):
        values = [matrix[i][i + offset] for i in range(size) if 0 <= i + offset < size]
        profile.append(sum(values) / len(values) if values else math.nan)
    return profile


def real_block(matrix: list[list[float]], mask_row: list[int]) -> list[list[float]]:
    real = [p for p, flag in enumerate(mask_row) if flag]
    return [[matrix[i][j] for j in real] for i in real]


def assert_close(actual: float, expected: float, tol: float = EXACT) -> None:
    if math.isnan(expected):
        assert math.isnan(actual), f"expected NaN, got {actual}"
    else:
        assert abs(actual - expected) <= tol, f"{actual} != {expected} (diff {abs(actual - expected):.3g})"


# --------------------------------------------------------------------------------------------------------
# Matrix generators
# --------------------------------------------------------------------------------------------------------

KINDS = ("softmax", "peaked", "sparse", "one_hot", "uniform", "identity", "ties")


def make_matrices(kind: str, count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """[count, size, size] float64 row-stochastic matrices of the given kind."""
    shape = (count, size, size)
    if kind == "softmax":
        return torch.softmax(torch.randn(shape, generator=generator, dtype=torch.float64), dim=-1)
    if kind == "peaked":
        return torch.softmax(8.0 * torch.randn(shape, generator=generator, dtype=torch.float64), dim=-1)
    if kind == "sparse":
        weights = torch.rand(shape, generator=generator, dtype=torch.float64)
        weights = weights * (torch.rand(shape, generator=generator) < 0.3)
        weights[..., 0] += (weights.sum(-1) == 0).double()  # keep every row non-empty
        return weights / weights.sum(-1, keepdim=True)
    if kind == "one_hot":
        targets = torch.randint(0, size, (count, size), generator=generator)
        return torch.nn.functional.one_hot(targets, size).double()
    if kind == "uniform":
        return torch.full(shape, 1.0 / size, dtype=torch.float64)
    if kind == "identity":
        return torch.eye(size, dtype=torch.float64).expand(shape).clone()
    if kind == "ties":  # small integer weights give many exactly equal differences (min-max constant rows)
        weights = torch.randint(0, 3, shape, generator=generator).double()
        weights[..., 0] += (weights.sum(-1) == 0).double()
        return weights / weights.sum(-1, keepdim=True)
    raise AssertionError(kind)


def check_against_naive(matrices: torch.Tensor, tolerance: float = metrics.DEFAULT_SYMMETRY_TOLERANCE) -> None:
    local = metrics.locality(matrices)
    reference = metrics.symmetry(matrices)
    scale_aware = metrics.symmetry(matrices, method="scale_aware", tolerance=tolerance)
    assert local.shape == reference.shape == scale_aware.shape == matrices.shape[:-2]
    assert local.dtype == torch.float64
    for index, matrix in enumerate(matrices.reshape(-1, *matrices.shape[-2:]).tolist()):
        assert_close(local.reshape(-1)[index].item(), naive_locality(matrix))
        assert_close(reference.reshape(-1)[index].item(), naive_symmetry_reference(matrix))
        assert_close(scale_aware.reshape(-1)[index].item(), naive_symmetry_scale_aware(matrix, tolerance))


# --------------------------------------------------------------------------------------------------------
# Exactness against the naive loops
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_size_from_1_to_64_matches_naive(kind):
    generator = torch.Generator().manual_seed(KINDS.index(kind))
    for size in list(range(1, 17)) + [23, 31, 32, 47, 64]:
        check_against_naive(make_matrices(kind, 2, size, generator))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(1, 64),
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 2**31 - 1),
    tolerance=st.sampled_from([0.0, 1e-4, 1e-2]),
)
def test_property_random_matrices_match_naive(size, kind, seed, tolerance):
    generator = torch.Generator().manual_seed(seed)
    check_against_naive(make_matrices(kind, 2, size, generator), tolerance)


def test_leading_dimensions_are_kept():
    generator = torch.Generator().manual_seed(0)
    stacked = make_matrices("softmax", 2 * 3 * 4, 9, generator).reshape(2, 3, 4, 9, 9)
    assert metrics.locality(stacked).shape == (2, 3, 4)
    assert metrics.symmetry(stacked, method="scale_aware").shape == (2, 3, 4)
    single = metrics.locality(stacked[0, 0, 0])
    assert single.shape == () and single.item() == pytest.approx(metrics.locality(stacked)[0, 0, 0].item())
    check_against_naive(stacked)


def test_matches_paper_procedure_with_minmaxscaler():
    """Parity with the paper's code path: scikit-learn's MinMaxScaler fitted on each row's differences."""
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    import numpy

    generator = torch.Generator().manual_seed(3)
    for kind in ("softmax", "ties", "one_hot"):
        for matrix in make_matrices(kind, 3, 33, generator):
            rows = matrix.numpy()
            pooled = []
            for i in range(len(rows)):
                pairs = min(i, len(rows) - 1 - i)
                if pairs == 0:
                    continue
                left = rows[i, i - pairs : i]
                right = rows[i, i + 1 : i + pairs + 1][::-1]
                differences = numpy.abs(left - right).reshape(-1, 1)
                pooled.extend(preprocessing.MinMaxScaler().fit_transform(differences).ravel())
            assert_close(metrics.symmetry(matrix).item(), 1.0 - float(numpy.mean(pooled)))


def test_float32_input_is_accumulated_in_float64():
    generator = torch.Generator().manual_seed(5)
    matrices = torch.softmax(torch.randn(4, 40, 40, generator=generator), dim=-1)  # float32
    exact = matrices.double()
    for method in metrics.SYMMETRY_METHODS:
        assert torch.equal(metrics.symmetry(matrices, method=method), metrics.symmetry(exact, method=method))
    assert torch.equal(metrics.locality(matrices), metrics.locality(exact))


def test_attention_that_requires_grad_is_measured_without_a_graph():
    scores = torch.randn(2, 3, 10, 10, dtype=torch.float64, requires_grad=True)
    attention = torch.softmax(scores, dim=-1)  # as a model returns it outside torch.no_grad()
    values = metrics.symmetry(attention, method="scale_aware")
    assert not values.requires_grad
    torch.testing.assert_close(values, metrics.symmetry(attention.detach(), method="scale_aware"))
    assert metrics.summarize((attention,))["num_layers"] == 1


def test_chunked_computation_equals_one_pass(monkeypatch):
    generator = torch.Generator().manual_seed(6)
    blocks = [make_matrices("softmax", 2, n, generator) for n in (20, 15, 3, 20, 9)]
    batch, mask = pad_batch(blocks, 20, "left", generator)
    whole = (metrics.locality(batch, mask), metrics.symmetry(batch, mask, "scale_aware"))
    monkeypatch.setattr(attention_input, "_CHUNK_ELEMENTS", 3 * 20 * 20)  # 3 matrices per chunk
    chunked = (metrics.locality(batch, mask), metrics.symmetry(batch, mask, "scale_aware"))
    for one, other in zip(whole, chunked):
        torch.testing.assert_close(one, other, rtol=0, atol=1e-15, equal_nan=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_matches_cpu():
    generator = torch.Generator().manual_seed(7)
    matrices = make_matrices("softmax", 6, 30, generator).reshape(2, 3, 30, 30)
    mask = torch.ones(2, 30)
    mask[1, :5] = 0
    for compute in (
        lambda a, m: metrics.locality(a, m),
        lambda a, m: metrics.symmetry(a, m),
        lambda a, m: metrics.symmetry(a, m, "scale_aware"),
    ):
        on_gpu = compute(matrices.cuda(), mask.cuda())
        assert on_gpu.device.type == "cuda"
        torch.testing.assert_close(on_gpu.cpu(), compute(matrices, mask), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 3, 8, 64])
def test_identity_is_fully_local_and_symmetric(size):
    identity = torch.eye(size, dtype=torch.float64)
    assert metrics.locality(identity).item() == 1.0
    if size > 2:
        assert metrics.symmetry(identity).item() == 1.0
        assert metrics.symmetry(identity, method="scale_aware").item() == 1.0


@pytest.mark.parametrize("size", [1, 2, 3, 10, 64])
def test_uniform_rows_have_the_closed_form_locality(size):
    # (1/T^2) * sum_ij 2^-|i-j| = (3T - 4 + 2^(2-T)) / T^2, about 3/T.
    uniform = torch.full((size, size), 1.0 / size, dtype=torch.float64)
    assert_close(metrics.locality(uniform).item(), (3 * size - 4 + 2.0 ** (2 - size)) / size**2, 1e-12)


@pytest.mark.parametrize("size", [1, 2])
def test_symmetry_is_nan_without_mirrored_pairs(size):
    matrix = torch.eye(size)
    assert math.isnan(metrics.symmetry(matrix).item())
    assert math.isnan(metrics.symmetry(matrix, method="scale_aware").item())


def test_symmetric_toeplitz_scores_one_under_scale_aware():
    size = 31
    positions = torch.arange(size)
    circular_distance = torch.minimum(
        (positions[:, None] - positions[None, :]) % size, (positions[None, :] - positions[:, None]) % size
    )
    profile = torch.exp(-0.7 * torch.arange(size, dtype=torch.float64))
    circulant = profile[circular_distance]  # symmetric Toeplitz (circulant), so every row sums alike
    circulant = circulant / circulant[0].sum()  # one scalar keeps it exactly symmetric
    assert torch.equal(circulant, circulant.T)
    assert metrics.symmetry(circulant, method="scale_aware").item() == 1.0


def test_float32_symmetric_matrix_scores_one_under_scale_aware_but_not_reference():
    # Softmax of sinusoidal position dot products: symmetric in exact arithmetic, noisy in float32.
    size, dim = 64, 64
    angles = torch.arange(size, dtype=torch.float32)[:, None] / 10000 ** (torch.arange(0, dim, 2) / dim)
    positions = torch.cat([angles.sin(), angles.cos()], dim=-1)
    attention = torch.softmax(0.3 * positions @ positions.T, dim=-1)
    assert metrics.symmetry(attention, method="scale_aware").item() == 1.0
    assert metrics.symmetry(attention, method="scale_aware", tolerance=0.0).item() > 1 - 1e-5
    assert metrics.symmetry(attention).item() < 0.95  # the reference method amplifies the float noise


def test_one_sided_attention_scores_zero_under_scale_aware():
    size = 20
    lower = torch.tril(torch.ones(size, size, dtype=torch.float64), diagonal=-1)
    lower[0, 0] = 1.0  # the first query has nothing on its left: it attends to itself
    one_sided = lower / lower.sum(-1, keepdim=True)
    assert metrics.symmetry(one_sided, method="scale_aware").item() == 0.0
    right_sided = one_sided.flip(0).flip(1)  # every query looks only right (the last one at itself)
    assert metrics.symmetry(right_sided, method="scale_aware").item() == 0.0


def test_scale_aware_tolerance_moves_the_score_by_at_most_itself():
    generator = torch.Generator().manual_seed(8)
    matrices = make_matrices("softmax", 20, 25, generator)
    for tolerance in (1e-4, 1e-2, 0.3):
        loose = metrics.symmetry(matrices, method="scale_aware", tolerance=tolerance)
        strict = metrics.symmetry(matrices, method="scale_aware", tolerance=0.0)
        assert bool(((loose - strict) >= 0).all()) and bool(((loose - strict) <= tolerance).all())


def test_scale_aware_separates_magnitudes_that_reference_confuses():
    size, width = 64, 4.0
    offsets = torch.arange(size, dtype=torch.float64)[None, :] - torch.arange(size, dtype=torch.float64)[:, None]

    def gaussian(right_ratio: float) -> torch.Tensor:
        widths = torch.where(offsets < 0, width, width * right_ratio)
        weights = torch.exp(-0.5 * (offsets / widths) ** 2)
        return weights / weights.sum(-1, keepdim=True)

    nearly, half = gaussian(0.99), gaussian(0.5)
    scale_nearly = metrics.symmetry(nearly, method="scale_aware").item()
    scale_half = metrics.symmetry(half, method="scale_aware").item()
    assert scale_nearly > 0.99 and scale_half < 0.8
    reference_gap = abs(metrics.symmetry(nearly).item() - metrics.symmetry(half).item())
    assert reference_gap < 0.1  # the documented flaw: the reference method barely tells them apart


# --------------------------------------------------------------------------------------------------------
# Padding: measured on real tokens only, as if run without padding
# --------------------------------------------------------------------------------------------------------


def pad_batch(blocks: list[torch.Tensor], size: int, side: str, generator: torch.Generator):
    """Embed [heads, n, n] blocks into a padded [batch, heads, size, size] batch and its mask.

    Padded query rows hold garbage (NaN and random values): they must be ignored. Real rows put exactly zero
    on padded keys, as a model with an additive -inf/finfo.min mask does.
    """
    heads = blocks[0].shape[0]
    batch = torch.full((len(blocks), heads, size, size), math.nan, dtype=torch.float64)
    batch[:, :, :, 0] = torch.rand(len(blocks), heads, size, generator=generator, dtype=torch.float64)
    mask = torch.zeros(len(blocks), size, dtype=torch.long)
    for index, block in enumerate(blocks):
        length = block.shape[-1]
        if side == "right":
            real = torch.arange(length)
        elif side == "left":
            real = torch.arange(size - length, size)
        else:  # padding scattered between real tokens
            real = torch.sort(torch.randperm(size, generator=generator)[:length]).values
        mask[index, real] = 1
        rows = torch.zeros(heads, length, size, dtype=torch.float64)
        rows[:, :, real] = block
        batch[index, :, real] = rows
    return batch, mask


@pytest.mark.parametrize("side", ["right", "left", "holes"])
def test_padded_batches_equal_unpadded_runs(side):
    generator = torch.Generator().manual_seed({"right": 1, "left": 2, "holes": 3}[side])
    size, heads = 21, 3
    lengths = [21, 1, 2, 3, 12, 20]
    blocks = [make_matrices("softmax", heads, n, generator) for n in lengths]
    batch, mask = pad_batch(blocks, size, side, generator)
    for compute in (
        lambda a, m=None: metrics.locality(a, m),
        lambda a, m=None: metrics.symmetry(a, m),
        lambda a, m=None: metrics.symmetry(a, m, "scale_aware"),
    ):
        padded = compute(batch, mask)
        unpadded = torch.stack([compute(block) for block in blocks])
        torch.testing.assert_close(padded, unpadded, rtol=0, atol=EXACT, equal_nan=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(1, 40),
    side=st.sampled_from(["right", "left", "holes"]),
    kind=st.sampled_from(KINDS),
    data=st.data(),
)
def test_property_padded_batches_match_naive(size, side, kind, data):
    lengths = data.draw(st.lists(st.integers(1, size), min_size=1, max_size=4))
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    blocks = [make_matrices(kind, 2, n, generator) for n in lengths]
    batch, mask = pad_batch(blocks, size, side, generator)
    local = metrics.locality(batch, mask)
    reference = metrics.symmetry(batch, mask)
    scale_aware = metrics.symmetry(batch, mask, method="scale_aware")
    for b in range(len(lengths)):
        for h in range(2):
            block = real_block(batch[b, h].tolist(), mask[b].tolist())
            assert_close(local[b, h].item(), naive_locality(block))
            assert_close(reference[b, h].item(), naive_symmetry_reference(block))
            assert_close(scale_aware[b, h].item(), naive_symmetry_scale_aware(block))


def test_mask_layouts_for_3d_and_2d_inputs():
    generator = torch.Generator().manual_seed(9)
    matrices = make_matrices("softmax", 2, 10, generator)
    matrices[1, :, 8:] = 0
    matrices[1] = matrices[1] / matrices[1].sum(-1, keepdim=True)
    mask = torch.tensor([[1] * 10, [1] * 8 + [0] * 2], dtype=torch.bool)
    values = metrics.locality(matrices, mask)  # [batch, T, T]
    assert_close(values[1].item(), naive_locality(matrices[1, :8, :8].tolist()))
    assert_close(metrics.locality(matrices[1], mask[1:]).item(), values[1].item())  # [T, T] is batch 1


def test_real_bert_right_padding_equals_unpadded_runs():
    """A stock transformers BERT (eager attention): padded batch + mask == each sentence run alone."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        attn_implementation="eager",
    )
    model = transformers.BertModel(config).eval()
    lengths = [12, 5, 9]
    ids = torch.randint(5, 60, (len(lengths), max(lengths)))
    mask = (torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]).long()
    with torch.no_grad():
        padded = model(ids, attention_mask=mask, output_attentions=True).attentions
        alone = [model(ids[b : b + 1, :n], output_attentions=True).attentions for b, n in enumerate(lengths)]
    batch_summary = metrics.summarize(padded, mask)
    for name in ("locality", "symmetry", "symmetry_scale_aware"):
        per_sentence = [metrics.summarize(run)["per_head"][name] for run in alone]
        expected = torch.tensor(per_sentence, dtype=torch.float64).mean(0)  # over the batch, per layer and head
        got = torch.tensor(batch_summary["per_head"][name], dtype=torch.float64)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------------------------------------
# summarize
# --------------------------------------------------------------------------------------------------------


def test_summarize_tuple_of_layers():
    generator = torch.Generator().manual_seed(10)
    layers, masks = zip(
        *(
            pad_batch([make_matrices("softmax", 3, n, generator) for n in (12, 9)], 12, "left", generator)
            for _ in range(4)
        )
    )
    mask = masks[0]
    summary = metrics.summarize(layers, mask, max_distance=3)
    json.dumps(summary, allow_nan=False)  # plain, strictly JSON-serialisable
    assert (summary["num_layers"], summary["batch_size"], summary["num_heads"], summary["seq_len"]) == (4, 2, 3, 12)
    assert summary["distance"]["offsets"] == [-3, -2, -1, 0, 1, 2, 3]
    for name, compute in (
        ("locality", naive_locality),
        ("symmetry", naive_symmetry_reference),
        ("symmetry_scale_aware", naive_symmetry_scale_aware),
    ):
        expected_heads = [
            [sum(compute(real_block(layer[b, h].tolist(), mask[b].tolist())) for b in range(2)) / 2 for h in range(3)]
            for layer in layers
        ]
        for got_row, expected_row in zip(summary["per_head"][name], expected_heads):
            for got, expected in zip(got_row, expected_row):
                assert_close(got, expected)
        expected_layers = [sum(row) / 3 for row in expected_heads]
        for got, expected in zip(summary["per_layer"][name], expected_layers):
            assert_close(got, expected)
        assert_close(summary[name], sum(expected_layers) / 4)
        assert isinstance(summary[name], float)
    naive_profiles = [
        [
            naive_distance_profile(real_block(layer[b, h].tolist(), mask[b].tolist()), 3)
            for b in range(2)
            for h in range(3)
        ]
        for layer in layers
    ]
    for got_layer, profiles in zip(summary["distance"]["per_layer"], naive_profiles):
        for offset_index, got in enumerate(got_layer):
            assert_close(got, sum(p[offset_index] for p in profiles) / len(profiles))
    for offset_index, got in enumerate(summary["distance"]["mean"]):
        assert_close(got, sum(layer[offset_index] for layer in summary["distance"]["per_layer"]) / 4)


def test_summarize_stacked_tensor_and_undefined_values():
    generator = torch.Generator().manual_seed(11)
    stacked = make_matrices("softmax", 2 * 1 * 2, 2, generator).reshape(2, 1, 2, 2, 2)
    summary = metrics.summarize(stacked, max_distance=5)
    assert summary["symmetry"] is None and summary["symmetry_scale_aware"] is None  # T = 2: no pairs
    assert summary["per_head"]["symmetry"] == [[None, None], [None, None]]
    assert summary["distance"]["offsets"] == [-1, 0, 1]  # clamped to T - 1
    assert isinstance(summary["locality"], float)
    json.dumps(summary, allow_nan=False)


def test_summarize_skips_short_sequences_in_symmetry_averages():
    generator = torch.Generator().manual_seed(12)
    layer = make_matrices("softmax", 2, 8, generator).reshape(2, 1, 8, 8)
    layer[1, 0, :, 2:] = 0
    layer[1, 0] = layer[1, 0] / layer[1, 0].sum(-1, keepdim=True)
    mask = torch.tensor([[1] * 8, [1, 1] + [0] * 6])
    summary = metrics.summarize((layer,), mask)
    assert_close(summary["symmetry"], naive_symmetry_reference(layer[0, 0].tolist()))


# --------------------------------------------------------------------------------------------------------
# Bad input: ValueError naming what is wrong
# --------------------------------------------------------------------------------------------------------

GOOD = torch.softmax(torch.randn(2, 3, 6, 6, dtype=torch.float64), dim=-1)


def with_entry(value: float) -> torch.Tensor:
    bad = GOOD.clone()
    bad[1, 2, 3, 4] = value
    return bad


@pytest.mark.parametrize(
    ("attn", "mask", "message"),
    [
        (torch.ones(4, 5) / 5, None, "must be square"),
        (torch.ones(5), None, "at least 2 dimensions"),
        (torch.ones(0, 3, 3), None, "empty"),
        (torch.ones(3, 3, dtype=torch.complex64), None, "complex"),
        ("not a matrix", None, "could not convert"),
        (with_entry(math.nan), None, r"non-finite entries .*matrix \(1, 2\).*row 3, column 4"),
        (with_entry(math.inf), None, "non-finite"),
        (GOOD - 0.5, None, "negative entries"),
        (GOOD * 2, None, "sum to 1"),
        (torch.randn(3, 3).abs(), None, "sum to 1"),
        (GOOD, torch.ones(3, 6), r"attention_mask has shape \(3, 6\).*\(2, 6\)"),
        (GOOD, torch.ones(2, 5), "attention_mask has shape"),
        (GOOD, torch.ones(2, 6, 1), "attention_mask has shape"),
        (GOOD, torch.full((2, 6), 2), "only 0 .* and 1"),
        (GOOD, torch.tensor([[1] * 6, [0] * 6]), r"no real token in sequence\(s\) \[1\]"),
        (GOOD, torch.tensor([[1] * 6, [1] * 3 + [0] * 3]), "attention_mask does not match attn"),
        (GOOD[0, 0], torch.ones(2, 6), r"\(1, 6\)"),
    ],
)
def test_bad_input_raises_value_error_naming_the_problem(attn, mask, message):
    for call in (
        lambda: metrics.validate_attention(attn, mask),
        lambda: metrics.locality(attn, mask),
        lambda: metrics.symmetry(attn, mask),
        lambda: metrics.symmetry(attn, mask, method="scale_aware"),
    ):
        with pytest.raises(ValueError, match=message):
            call()


def test_garbage_in_padded_query_rows_is_not_an_error():
    padded = GOOD.clone()
    padded[:, :, 3:] = math.nan  # padded queries may hold anything
    padded[:, :, :3, 3:] = 0.0
    padded[:, :, :3, :3] /= padded[:, :, :3, :3].sum(-1, keepdim=True)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0]] * 2)
    metrics.validate_attention(padded, mask)
    assert torch.isfinite(metrics.locality(padded, mask)).all()


def test_row_sum_tolerance_and_other_arguments():
    slightly_off = GOOD * (1 + 5e-4)
    metrics.validate_attention(slightly_off)
    with pytest.raises(ValueError, match="within 0.0001"):
        metrics.validate_attention(slightly_off, row_sum_tolerance=1e-4)
    with pytest.raises(ValueError, match="row_sum_tolerance must be"):
        metrics.validate_attention(GOOD, row_sum_tolerance=-1)
    with pytest.raises(ValueError, match="unknown symmetry method 'mirror'.*'reference', 'scale_aware'"):
        metrics.symmetry(GOOD, method="mirror")
    for tolerance in (-0.1, math.nan, "x"):
        with pytest.raises(ValueError, match="tolerance must be a finite number"):
            metrics.symmetry(GOOD, method="scale_aware", tolerance=tolerance)
    metrics.validate_attention(GOOD.tolist())  # nested lists are accepted
    metrics.validate_attention(torch.eye(4, dtype=torch.int64))  # so are 0/1 integer matrices


@pytest.mark.parametrize(
    ("attentions", "kwargs", "message"),
    [
        ((), {}, "attentions is empty"),
        ((GOOD, None), {}, r"attentions\[1\] is None.*output_attentions=True"),
        ((GOOD, GOOD[:, :2]), {}, r"attentions\[1\] has shape \(2, 2, 6, 6\) but attentions\[0\] has"),
        ((GOOD[0],), {}, r"attentions\[0\] has shape \(3, 6, 6\); each layer must be \[batch, heads, T, T\]"),
        (GOOD, {}, "must be 5-D"),
        ("text", {}, "must be a tuple"),
        ((GOOD, GOOD * 2), {}, r"attentions\[1\]: attn rows must sum to 1"),
        ((GOOD,), {"max_distance": -1}, "max_distance must be an int >= 0"),
        ((GOOD,), {"tolerance": -1.0}, "tolerance must be"),
        ((GOOD,), {"attention_mask": torch.ones(2, 7)}, "attention_mask has shape"),
    ],
)
def test_summarize_bad_input(attentions, kwargs, message):
    with pytest.raises(ValueError, match=message):
        metrics.summarize(attentions, **kwargs)
