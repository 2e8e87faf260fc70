"""The per-step cost of the content-dependent bias (`forgetting`: a [B, H, T, T] bias per layer, from that layer's
gates) and of contextual positions (`cope`: [B, H, T, T] gates and counts per layer, on the eager score path) against
`learned`, `alibi` (one position-only bias shared by every layer and sequence) and `shaw` (the score route's eager
attention without per-sample counts).

One process, same batches, models timed round-robin and the median step kept, as in bench_training_step.py (whose
helpers this script uses). Each length keeps the tokens per step constant (batch x length = --tokens), so the
quadratic part shows. Memory on CPU: the bytes autograd saves for the backward pass; on CUDA: the peak allocated.

    python benchmarks/bench_content_bias.py                      # hidden 256, 4 layers, lengths 128 and 512, CPU
    python benchmarks/bench_content_bias.py --device cuda --lengths 128 512 2048
    python benchmarks/bench_content_bias.py --models shaw "cope (separate tables)" "cope (shared table)"
"""

import argparse
import statistics

import torch
from bench_training_step import add_model_size_arguments, make_batch, model_sizes, time_and_measure
from transformers import AutoModelForMaskedLM

import hf_posenc

MODELS = {
    "learned": ("learned", {}),
    "alibi": ("alibi", {}),
    "forgetting (tied)": ("forgetting", {}),
    "forgetting (separate)": ("forgetting", {"forgetting_tied_gates": False}),
    "shaw": ("shaw", {}),
    "cope (separate tables)": ("cope", {}),
    "cope (shared table)": ("cope", {"cope_shared_table": True}),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_size_arguments(parser)
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512])
    parser.add_argument(
        "--models", nargs="+", choices=list(MODELS), default=list(MODELS), help="learned, the baseline, always runs"
    )
    parser.add_argument("--tokens", type=int, default=2048, help="tokens per step at every length")
    parser.add_argument("--mask_fraction", type=float, default=0.15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps_per_round", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    return parser.parse_args()


def measure_length(args, seq_len: int) -> list[dict]:
    args.seq_len, args.batch_size = seq_len, max(1, args.tokens // seq_len)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    dtype = getattr(torch, args.dtype)
    models = {
        name: AutoModelForMaskedLM.from_config(hf_posenc.create_config(variant, **model_sizes(args), **settings))
        .to(args.device, dtype)
        .train()
        for name, (variant, settings) in MODELS.items()
        if name == "learned" or name in args.models
    }
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-4) for name, model in models.items()}
    batches = [make_batch(args, generator) for _ in range(args.steps_per_round)]
    times, memory = time_and_measure(models, optimizers, batches, args.rounds, args.device)
    learned_time, learned_memory = statistics.median(times["learned"]), memory["learned"]
    return [
        {
            "length": seq_len,
            "batch": args.batch_size,
            "model": name,
            "step_ms": 1000 * statistics.median(times[name]),
            "time_vs_learned": statistics.median(times[name]) / learned_time,
            "memory_MiB": memory[name] / 2**20,
            "memory_vs_learned": memory[name] / learned_memory,
        }
        for name in models
    ]


def main():
    args = parse_args()
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU x{torch.get_num_threads()}"
    memory_kind = "peak allocated" if args.device.startswith("cuda") else "saved activations"
    print(
        f"device: {device}, {args.dtype}, hidden {args.hidden_size}, {args.num_hidden_layers} layers, "
        f"{args.num_attention_heads} heads, {args.tokens} tokens per step; median of "
        f"{args.rounds * args.steps_per_round} steps; memory = {memory_kind}"
    )
    print("| length | batch | model | step (ms) | time x learned | memory (MiB) | memory x learned |")
    print("|---|---|---|---|---|---|---|")
    for seq_len in args.lengths:
        for row in measure_length(args, seq_len):
            print(
                f"| {row['length']} | {row['batch']} | {row['model']} | {row['step_ms']:.0f} | "
                f"{row['time_vs_learned']:.2f} | {row['memory_MiB']:.0f} | {row['memory_vs_learned']:.2f} |"
            )


if __name__ == "__main__":
    main()
