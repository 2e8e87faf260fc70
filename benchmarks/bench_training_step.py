"""Training-step throughput of every variant against transformers' BertForMaskedLM of the same size.

One process, same machine, same batches: each model runs a full step (forward, backward, AdamW) on batches with
15% of the tokens masked. Models are timed round-robin, so drift in the machine's speed hits all of them alike,
and the median step time is kept. Output: a table of ratios (printed) and JSON.

Memory: on CUDA, the peak allocated during a step. On CPU there is no allocator counter, so the script reports
the bytes that autograd saves for the backward pass during the forward (the activations), which is what differs
between variants; weights and optimizer state are the same for all of them.

    python benchmarks/bench_training_step.py                         # the issue's size, CPU, float32
    python benchmarks/bench_training_step.py --device cuda --dtype bfloat16 --batch_size 64
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, BertConfig, BertForMaskedLM

import hf_posenc


def add_model_size_arguments(parser: argparse.ArgumentParser) -> None:
    """The model's size flags (BERT-mini-like defaults), shared by the step benchmarks; `model_sizes` reads them."""
    parser.add_argument("--hidden_size", type=int, default=256)
    parser.add_argument("--num_hidden_layers", type=int, default=4)
    parser.add_argument("--num_attention_heads", type=int, default=4)
    parser.add_argument("--intermediate_size", type=int, default=1024)
    parser.add_argument("--vocab_size", type=int, default=30522)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_size_arguments(parser)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--mask_fraction", type=float, default=0.15)
    parser.add_argument("--rounds", type=int, default=3, help="round-robin passes over all models")
    parser.add_argument("--steps_per_round", type=int, default=3)
    parser.add_argument("--variants", nargs="*", default=list(hf_posenc.VARIANTS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--output", default="benchmarks/results/training_step.json")
    return parser.parse_args()


def model_sizes(args, seq_len: int | None = None) -> dict:
    """The config sizes the flags of `add_model_size_arguments` give, with room for `seq_len` (default --seq_len)."""
    return dict(
        vocab_size=args.vocab_size,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        num_attention_heads=args.num_attention_heads,
        intermediate_size=args.intermediate_size,
        max_position_embeddings=max(512, seq_len or args.seq_len),
    )


def build_models(args) -> dict[str, torch.nn.Module]:
    models = {"BertForMaskedLM": BertForMaskedLM(BertConfig(**model_sizes(args), attn_implementation="sdpa"))}
    for variant in args.variants:
        models[variant] = AutoModelForMaskedLM.from_config(hf_posenc.create_config(variant, **model_sizes(args)))
    dtype = getattr(torch, args.dtype)
    return {name: model.to(args.device, dtype).train() for name, model in models.items()}


def make_batch(args, generator) -> dict[str, torch.Tensor]:
    ids = torch.randint(5, args.vocab_size, (args.batch_size, args.seq_len), generator=generator)
    masked = torch.rand(ids.shape, generator=generator) < args.mask_fraction
    labels = torch.where(masked, ids, torch.full_like(ids, -100))
    ids = torch.where(masked, torch.full_like(ids, 4), ids)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    return {key: value.to(args.device) for key, value in batch.items()}


def training_step(model, optimizer, batch) -> None:
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def activation_bytes(model, batch) -> int:
    """Bytes autograd keeps for the backward pass of one forward, counting each storage once."""
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model(**batch).loss
    del loss
    return sum(storages.values())


def peak_memory_bytes(model, optimizer, batch, device: str) -> int:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        training_step(model, optimizer, batch)
        synchronize(device)
        return torch.cuda.max_memory_allocated()
    return activation_bytes(model, batch)


def time_and_measure(models: dict, optimizers: dict, batches: list, rounds: int, device: str) -> tuple[dict, dict]:
    """Each model's step times (after one warm-up step; models interleaved in every round, so a change of machine
    load touches all of them alike) and its peak memory of one step."""
    for name, model in models.items():  # warm-up: kernels, allocator, optimizer state
        training_step(model, optimizers[name], batches[0])
    step_times = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            for batch in batches:
                synchronize(device)
                start = time.perf_counter()
                training_step(model, optimizers[name], batch)
                synchronize(device)
                step_times[name].append(time.perf_counter() - start)
    memory = {name: peak_memory_bytes(model, optimizers[name], batches[0], device) for name, model in models.items()}
    return step_times, memory


def main():
    args = parse_args()
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    models = build_models(args)
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-4) for name, model in models.items()}
    batches = [make_batch(args, generator) for _ in range(args.steps_per_round)]

    step_times, memory = time_and_measure(models, optimizers, batches, args.rounds, args.device)

    tokens_per_step = args.batch_size * args.seq_len
    throughput = {name: tokens_per_step / statistics.median(times) for name, times in step_times.items()}
    bert, learned = throughput["BertForMaskedLM"], throughput.get("learned")
    rows = []
    for name in models:
        route = "transformers" if name == "BertForMaskedLM" else hf_posenc.ENCODINGS[name].route
        rows.append(
            {
                "model": name,
                "route": route,
                "tokens_per_s": round(throughput[name], 1),
                "vs_BertForMaskedLM": round(throughput[name] / bert, 3),
                "vs_learned": round(throughput[name] / learned, 3) if learned else None,
                "memory_MiB": round(memory[name] / 2**20, 1),
                "memory_vs_learned": round(memory[name] / memory["learned"], 3) if learned else None,
            }
        )

    memory_kind = "peak allocated" if args.device.startswith("cuda") else "saved activations"
    device_name = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU x{torch.get_num_threads()} threads"
    )
    print(
        f"device: {device_name}, dtype {args.dtype}, batch {args.batch_size} x {args.seq_len} tokens, "
        f"hidden {args.hidden_size}, {args.num_hidden_layers} layers, {args.num_attention_heads} heads, "
        f"vocab {args.vocab_size}; median of {args.rounds * args.steps_per_round} steps; memory = {memory_kind}"
    )
    print(
        f"| {'model':<16} | {'route':<12} | {'tokens/s':>9} | {'x Bert':>6} | {'x learned':>9} | {'MiB':>7} | {'mem x learned':>13} |"
    )
    print(f"|{'-' * 18}|{'-' * 14}|{'-' * 11}|{'-' * 8}|{'-' * 11}|{'-' * 9}|{'-' * 15}|")
    for row in rows:
        print(
            f"| {row['model']:<16} | {row['route']:<12} | {row['tokens_per_s']:>9.0f} | {row['vs_BertForMaskedLM']:>6.2f} | "
            f"{row['vs_learned'] or 0:>9.2f} | {row['memory_MiB']:>7.1f} | {row['memory_vs_learned'] or 0:>13.2f} |"
        )
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps({"settings": vars(args), "device": device_name, "memory_kind": memory_kind, "rows": rows}, indent=2)
    )
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
