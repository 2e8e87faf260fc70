"""Speed of hf_posenc.analysis.metrics against a naive pure-Python loop implementation of the same definitions.

Measures locality and both symmetries on BERT-base-sized attentions (12 layers x 12 heads of 128 x 128,
float64), on CPU both with the fused C kernel (the default there) and with the pure-PyTorch path (marked
"[pure PyTorch]"; the path GPU tensors take), and reports:
  * the ratio to a naive loop implementation (written here from the definitions, on Python lists),
  * the ratio to a paper-style implementation (numpy + scikit-learn's MinMaxScaler once per row), if
    scikit-learn is installed,
  * the ratio to one pass over the same tensor (``A.sum()``), the floor for any exact metric,
  * the time for a training-size batch: 32 sequences of BERT-base attentions (float32, as a model returns
    them; the metrics accumulate in float64).
The naive implementations are slow, so they are timed on a subset of the matrices and scaled per matrix
(the output says how many). Then the cost of the measurements added after the paper, as a ratio against the
paper's measurements (locality, both symmetries and the distance profile: `measure_attentions(log_bins=False)`) on
the same training-size batch in the same process: the log-binned distance profile, the [CLS]/[SEP] attention sinks,
and the rotary frequency bands (three matrix products over the band's dimensions of BERT-base-sized rotated queries
and keys, per layer, as `hf_posenc.analysis.rotary_bands.band_masses` computes them inside the model).
Results: a table on stdout and JSON in benchmarks/results/metrics.json.

    python benchmarks/bench_metrics.py [--device cuda] [--threads 1] [--repeats 25] [--naive-matrices 12]
    python benchmarks/bench_metrics.py --added-only   # only the cost of the measurements added after the paper
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from hf_posenc import create_config
from hf_posenc.analysis import metrics, rotary_bands
from hf_posenc.positional import RotaryEncoding

LAYERS, HEADS, SEQ_LEN, BATCH = 12, 12, 128, 32


# ---------------------------------------------------------------------------------------------------------
# Baselines, written from the definitions
# ---------------------------------------------------------------------------------------------------------


def naive_locality(matrix: list[list[float]]) -> float:
    size = len(matrix)
    total = 0.0
    for i in range(size):
        for j in range(size):
            total += matrix[i][j] * 2.0 ** -abs(i - j)
    return total / size


def naive_symmetry(matrix: list[list[float]]) -> float:
    size = len(matrix)
    pooled: list[float] = []
    for i in range(size):
        pairs = min(i, size - 1 - i)
        if pairs == 0:
            continue
        differences = [abs(matrix[i][i - t] - matrix[i][i + t]) for t in range(1, pairs + 1)]
        low, high = min(differences), max(differences)
        spread = high - low
        pooled.extend((d - low) / spread if spread >= 10 * 2.220446049250313e-16 else 0.0 for d in differences)
    return 1.0 - sum(pooled) / len(pooled) if pooled else math.nan


def paper_style_symmetry(matrix) -> float:
    """numpy + one scikit-learn MinMaxScaler fit per row, as the paper's public code computes it."""
    import numpy
    from sklearn.preprocessing import MinMaxScaler

    rows = numpy.asarray(matrix)
    pooled = []
    for i in range(len(rows)):
        pairs = min(i, len(rows) - 1 - i)
        if pairs == 0:
            continue
        differences = numpy.abs(rows[i, i - pairs : i] - rows[i, i + 1 : i + pairs + 1][::-1])
        pooled.extend(MinMaxScaler().fit_transform(differences.reshape(-1, 1)).ravel())
    return 1.0 - float(numpy.mean(pooled))


# ---------------------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(function, device: torch.device, repeats: int) -> float:
    """Median wall time of `repeats` runs, after one warm-up run."""
    function()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextmanager
def kernel_mode(mode: str):
    """Run the block with HF_POSENC_METRICS_KERNEL=mode ("require": the fused kernel, "off": pure PyTorch)."""
    previous = os.environ.get("HF_POSENC_METRICS_KERNEL")
    os.environ["HF_POSENC_METRICS_KERNEL"] = mode
    try:
        yield
    finally:
        if previous is None:
            del os.environ["HF_POSENC_METRICS_KERNEL"]
        else:
            os.environ["HF_POSENC_METRICS_KERNEL"] = previous


def attention_like(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, seed: int) -> torch.Tensor:
    """Softmax of random scores plus a distance bias: peaked, local-ish, asymmetric, like trained heads."""
    generator = torch.Generator().manual_seed(seed)
    size = shape[-1]
    positions = torch.arange(size, dtype=torch.float64)
    distance = (positions[None, :] - positions[:, None]).abs()
    scores = 2.0 * torch.randn(shape, generator=generator, dtype=torch.float64) - 0.3 * distance
    return torch.softmax(scores, dim=-1).to(device=device, dtype=dtype)


def measure_added_cost(layers, device: torch.device, repeats: int, paths) -> list[dict]:
    """Time the measurements added after the paper against the paper's own (locality, both symmetries, the
    distance profile) on `layers`, on each metrics path; rows with the ratio to that baseline."""
    batch, heads, seq_len = layers[0].shape[0], layers[0].shape[1], layers[0].shape[-1]
    generator = torch.Generator().manual_seed(2)
    input_ids = torch.randint(1000, 2000, (batch, seq_len), generator=generator)
    input_ids[:, 0], input_ids[:, -1] = 101, 102
    sinks = {"cls": 101, "sep": 102}
    rows = []
    for path, suffix in paths:
        with kernel_mode(path):
            baseline = median_time(lambda: metrics.measure_attentions(layers, log_bins=False), device, repeats)
            timed = {
                "paper's metrics: locality, symmetries, distance profile": baseline,
                "+ log-binned distance profile": median_time(
                    lambda: metrics.measure_attentions(layers), device, repeats
                ),
                "+ log bins + [CLS]/[SEP] sinks": median_time(
                    lambda: metrics.measure_attentions(layers, input_ids=input_ids, special_token_ids=sinks),
                    device,
                    repeats,
                ),
            }
        for name, seconds in timed.items():
            rows.append({"name": name + suffix, "seconds": seconds, "relative_to_paper_metrics": seconds / baseline})
    # The bands need rotated queries and keys, which only the model has: BERT-base's 64-dimensional heads.
    config = create_config("rope", hidden_size=heads * 64, num_attention_heads=heads, num_hidden_layers=len(layers))
    encoding = RotaryEncoding(config).to(device)
    bands = rotary_bands.rotary_bands(encoding, device)
    query, key = torch.randn(2, batch, heads, seq_len, 64, generator=generator).to(device)
    real = torch.ones(batch, seq_len, dtype=torch.bool, device=device)
    real[batch // 2 :, seq_len // 2 :] = False  # half the batch padded, as a batch of sentences is

    def all_layers():
        for _ in layers:
            rotary_bands.band_masses(query, key, bands.dimensions, real)

    seconds = median_time(all_layers, device, repeats)
    rows.append(
        {
            "name": f"rotary frequency bands ({len(bands.names)} bands x {len(layers)} layers, from q and k)",
            "seconds": seconds,
            "relative_to_paper_metrics": seconds / rows[0]["seconds"],
        }
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--repeats", type=int, default=25, help="timed runs per measurement (median reported)")
    parser.add_argument(
        "--naive-matrices",
        type=int,
        default=12,
        help="matrices the naive loops are timed on (scaled per matrix to all 144)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's own choice); 1 is steadier on a shared machine",
    )
    parser.add_argument(
        "--added-only", action="store_true", help="time only the measurements added after the paper (a few minutes)"
    )
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent / "results" / "metrics.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    # The fused C kernel serves CPU tensors; GPU tensors always take the PyTorch path.
    paths = [("require", ""), ("off", " [pure PyTorch]")] if device.type == "cpu" else [("off", "")]
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    count = LAYERS * HEADS
    if args.added_only:
        batch_layers = tuple(
            attention_like((BATCH, HEADS, SEQ_LEN, SEQ_LEN), torch.float32, device, seed=1 + layer)
            for layer in range(LAYERS)
        )
        added = measure_added_cost(batch_layers, device, args.repeats, paths)
        print(f"on {device}, {torch.get_num_threads()} threads: {BATCH} x {LAYERS} x {HEADS} x {SEQ_LEN}^2 float32")
        for row in added:
            print(f"{row['name']:57s} {row['seconds'] * 1e3:8.1f} ms {row['relative_to_paper_metrics']:9.2f}x")
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(
            json.dumps({"threads": torch.get_num_threads(), "added_measurements": added}, indent=2) + "\n"
        )
        return

    stacked = attention_like((LAYERS, HEADS, SEQ_LEN, SEQ_LEN), torch.float64, device, seed=0)
    layers = tuple(stacked[:, None].unbind(0))  # 12 x [1, 12, 128, 128], the layout a model returns
    vectorized = {
        "locality": lambda: metrics.locality(stacked),
        "symmetry reference": lambda: metrics.symmetry(stacked),
        "symmetry scale_aware": lambda: metrics.symmetry(stacked, method="scale_aware"),
        "locality + symmetry reference": lambda: (metrics.locality(stacked), metrics.symmetry(stacked)),
        "summarize (every metric, both distance profiles)": lambda: metrics.summarize(layers),
    }
    timings = {"A.sum() (one pass, the floor)": median_time(lambda: stacked.sum(), device, args.repeats)}
    for path, suffix in paths:
        with kernel_mode(path):
            for name, function in vectorized.items():
                timings[name + suffix] = median_time(function, device, args.repeats)
    floor = timings["A.sum() (one pass, the floor)"]

    subset = stacked.reshape(count, SEQ_LEN, SEQ_LEN)[: args.naive_matrices].double().cpu()
    # The conversion is not part of the naive times, which favours the naive baseline; it is reported apart.
    start = time.perf_counter()
    as_lists = [matrix.tolist() for matrix in subset]
    conversion_each = (time.perf_counter() - start) / len(as_lists)
    start = time.perf_counter()
    naive_local = [naive_locality(matrix) for matrix in as_lists]
    naive_locality_each = (time.perf_counter() - start) / len(as_lists)
    start = time.perf_counter()
    naive_sym = [naive_symmetry(matrix) for matrix in as_lists]
    naive_symmetry_each = (time.perf_counter() - start) / len(as_lists)
    # The naive loops double as a correctness check of the timed code, on every path.
    max_error = 0.0
    for path, _ in paths:
        with kernel_mode(path):
            fast = metrics.locality(subset).tolist() + metrics.symmetry(subset).tolist()
        max_error = max(max_error, *(abs(a - b) for a, b in zip(naive_local + naive_sym, fast)))

    paper_each = None
    try:
        import sklearn  # noqa: F401

        paper_subset = subset[: max(1, min(4, len(subset)))].numpy()
        start = time.perf_counter()
        for matrix in paper_subset:
            paper_style_symmetry(matrix)
        paper_each = (time.perf_counter() - start) / len(paper_subset)
    except ImportError:
        pass

    naive_scaled = {}
    for _, suffix in paths:
        naive_scaled["locality" + suffix] = naive_locality_each * count
        naive_scaled["symmetry reference" + suffix] = naive_symmetry_each * count
        naive_scaled["locality + symmetry reference" + suffix] = (naive_locality_each + naive_symmetry_each) * count

    batch_layers = tuple(
        attention_like((BATCH, HEADS, SEQ_LEN, SEQ_LEN), torch.float32, device, seed=1 + layer)
        for layer in range(LAYERS)
    )
    batch_stacked = torch.stack(batch_layers)
    batch_repeats = max(1, args.repeats // 2)
    batch_timings = {"A.sum() (one pass, the floor)": median_time(lambda: batch_stacked.sum(), device, batch_repeats)}
    for path, suffix in paths:
        with kernel_mode(path):
            batch_timings["locality + symmetry reference" + suffix] = median_time(
                lambda: (metrics.locality(batch_stacked), metrics.symmetry(batch_stacked)), device, batch_repeats
            )
            batch_timings["summarize (every metric, both distance profiles)" + suffix] = median_time(
                lambda: metrics.summarize(batch_layers), device, batch_repeats
            )
    added = measure_added_cost(batch_layers, device, batch_repeats, paths)

    print(
        f"hf_posenc.analysis.metrics on {device} ({platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads)"
    )
    print(
        f"\n{LAYERS} layers x {HEADS} heads x {SEQ_LEN}x{SEQ_LEN} float64 = {count} matrices, median of "
        f"{args.repeats} runs"
    )
    print(
        f"naive pure-Python loops timed on {len(as_lists)} of the {count} matrices and scaled per matrix "
        f"(max |naive - fast| = {max_error:.1e})"
    )
    header = f"{'measurement':57s} {'time':>11s} {'x A.sum()':>10s} {'naive loops':>12s} {'speed-up':>9s}"
    print(header)
    print("-" * len(header))
    rows = []
    for name, seconds in timings.items():
        naive = naive_scaled.get(name)
        row = {
            "name": name,
            "seconds": seconds,
            "relative_to_sum": seconds / floor,
            "naive_seconds": naive,
            "speedup_vs_naive": None if naive is None else naive / seconds,
        }
        rows.append(row)
        naive_text = "" if naive is None else f"{naive * 1e3:9.0f} ms"
        speed_text = "" if naive is None else f"{naive / seconds:8.0f}x"
        print(f"{name:57s} {seconds * 1e3:8.2f} ms {seconds / floor:9.1f}x {naive_text:>12s} {speed_text:>9s}")
    print(
        f"\nper 128x128 matrix: naive locality {naive_locality_each * 1e3:.2f} ms, naive symmetry "
        f"{naive_symmetry_each * 1e3:.2f} ms, tensor-to-list conversion (not in the naive times) "
        f"{conversion_each * 1e3:.2f} ms",
        end="",
    )
    if paper_each is not None:
        print(
            f", paper-style numpy+MinMaxScaler symmetry {paper_each * 1e3:.2f} ms "
            f"(x{paper_each * count / timings['symmetry reference']:.0f} slower than hf_posenc on all {count})"
        )
    else:
        print(" (scikit-learn not installed: paper-style baseline skipped)")

    batch_count = LAYERS * BATCH * HEADS
    print(
        f"\ntraining-size batch: {BATCH} sequences x {LAYERS} layers x {HEADS} heads x {SEQ_LEN}x{SEQ_LEN} "
        f"float32 = {batch_count} matrices"
    )
    batch_rows = []
    batch_floor = batch_timings["A.sum() (one pass, the floor)"]
    for name, seconds in batch_timings.items():
        batch_rows.append({"name": name, "seconds": seconds, "relative_to_sum": seconds / batch_floor})
        print(f"{name:57s} {seconds * 1e3:8.1f} ms {seconds / batch_floor:9.1f}x")
    print("\nthe measurements added after the paper, on the same batch: time and ratio to the paper's measurements")
    for row in added:
        print(f"{row['name']:57s} {row['seconds'] * 1e3:8.1f} ms {row['relative_to_paper_metrics']:9.2f}x")

    results = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "shape": [LAYERS, HEADS, SEQ_LEN, SEQ_LEN],
        "dtype": "float64",
        "repeats": args.repeats,
        "naive_matrices_timed": len(as_lists),
        "list_conversion_seconds_per_matrix": conversion_each,
        "naive_seconds_per_matrix": {"locality": naive_locality_each, "symmetry_reference": naive_symmetry_each},
        "paper_style_symmetry_seconds_per_matrix": paper_each,
        "max_abs_error_vs_naive": max_error,
        "timings": rows,
        "training_batch": {
            "shape": [LAYERS, BATCH, HEADS, SEQ_LEN, SEQ_LEN],
            "dtype": "float32",
            "timings": batch_rows,
        },
        "added_measurements": added,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {output}")


if __name__ == "__main__":
    main()
