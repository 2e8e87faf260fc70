"""Both symmetry methods (and locality) on the same hand-built attention matrices, as a Markdown table.

Shows the known flaws of the paper's reference symmetry and what the scale-aware method reports instead:
magnitude blindness (Gaussian profiles whose right side is 0.99x or 0.5x as wide as the left score alike),
float-noise amplification (a matrix that is symmetric in exact arithmetic, computed in float32 or even
float64), and random matrices scoring far above 0.

    python benchmarks/metrics_examples.py [--size 64] [--seed 0]
"""

from __future__ import annotations

import argparse

import torch

from hf_posenc.analysis import metrics


def gaussian_profile(size: int, left_width: float, right_ratio: float) -> torch.Tensor:
    """Each query attends with a Gaussian of width `left_width` to its left and `right_ratio` x that to its right."""
    offsets = torch.arange(size, dtype=torch.float64)[None, :] - torch.arange(size, dtype=torch.float64)[:, None]
    widths = torch.where(offsets < 0, left_width, left_width * right_ratio)
    weights = torch.exp(-0.5 * (offsets / widths) ** 2)
    return weights / weights.sum(-1, keepdim=True)


def sinusoidal_attention(size: int, dtype: torch.dtype, scale: float = 0.3, dim: int = 64) -> torch.Tensor:
    """softmax(scale * P P^T) for sinusoidal position vectors P: symmetric in exact arithmetic."""
    positions = torch.arange(size, dtype=dtype)[:, None]
    frequencies = 1.0 / 10000 ** (torch.arange(0, dim, 2, dtype=dtype) / dim)
    angles = positions * frequencies
    vectors = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return torch.softmax(scale * vectors @ vectors.T, dim=-1)


def one_sided(size: int) -> torch.Tensor:
    """Every query attends uniformly to the tokens on its left (the first one to itself)."""
    weights = torch.tril(torch.ones(size, size, dtype=torch.float64), diagonal=-1)
    weights[0, 0] = 1.0
    return weights / weights.sum(-1, keepdim=True)


def describe(values: torch.Tensor) -> str:
    if values.numel() == 1:
        return f"{values.item():.3f}"
    return f"{values.mean().item():.3f} ± {values.std().item():.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="sequence length T (default 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=100, help="random matrices per random row")
    args = parser.parse_args()
    size = args.size
    generator = torch.Generator().manual_seed(args.seed)
    random_scores = torch.randn(args.samples, size, size, generator=generator, dtype=torch.float64)
    random_uniform = torch.rand(args.samples, size, size, generator=generator, dtype=torch.float64)
    examples = [
        ("identity (all attention on self)", torch.eye(size, dtype=torch.float64)),
        ("uniform rows", torch.full((size, size), 1.0 / size, dtype=torch.float64)),
        ("Gaussian, right width = 1.00 x left", gaussian_profile(size, 4.0, 1.0)),
        ("Gaussian, right width = 0.99 x left", gaussian_profile(size, 4.0, 0.99)),
        ("Gaussian, right width = 0.50 x left", gaussian_profile(size, 4.0, 0.5)),
        ("one-sided (only keys left of the query)", one_sided(size)),
        ("symmetric by construction, float32", sinusoidal_attention(size, torch.float32)),
        ("symmetric by construction, float64", sinusoidal_attention(size, torch.float64)),
        (f"random rand() / row sum, {args.samples} matrices", random_uniform / random_uniform.sum(-1, keepdim=True)),
        (f"random softmax(randn), {args.samples} matrices", torch.softmax(random_scores, dim=-1)),
        (f"random softmax(4 randn), {args.samples} matrices", torch.softmax(4 * random_scores, dim=-1)),
    ]
    print(f"T = {size}; seed {args.seed}; scale-aware tolerance {metrics.DEFAULT_SYMMETRY_TOLERANCE:g}\n")
    print("| matrix | locality | symmetry (reference) | symmetry (scale_aware) |")
    print("|---|---|---|---|")
    for name, attention in examples:
        print(
            f"| {name} | {describe(metrics.locality(attention))} | {describe(metrics.symmetry(attention))} | "
            f"{describe(metrics.symmetry(attention, method='scale_aware'))} |"
        )


if __name__ == "__main__":
    main()
