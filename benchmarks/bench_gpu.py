"""Training throughput, MFU and peak memory of every variant on one device, against transformers' BertForMaskedLM and
ModernBertForMaskedLM of the same size, in one run.

Each model trains full steps (forward and backward under bf16 autocast, AdamW on float32 weights) on random batches
with 15% of the tokens masked, at each of ``--seq_lengths``. Models run one after the other, each alone on the
device (its peak memory is its own: `torch.cuda.max_memory_allocated` over one step, weights and optimizer state
included); the median step time after the warm-up steps gives tokens/s. On a CPU the memory column is what autograd
saves for the backward pass (as in bench_training_step.py), and MFU needs ``--peak_tflops``.

MFU = tokens/s x model FLOPs per token / peak. Model FLOPs per token (hf_posenc.training.throughput) count the
matrix products of the backbone and of the MLM head on the tokens it runs on: hf_posenc's sparse head and
ModernBERT's ``sparse_prediction`` (set here, as ModernBERT trains) on the masked tokens, BERT's dense head on all.
ModernBERT's gated MLP (intermediate size 2/3 of BERT's: the same number of weights) counts 3 D I weights; its
sliding-window layers count the full T x T, which its SDPA path computes under a mask. The peak: the dense bf16
figure of a known GPU (hf_posenc.training.throughput.PEAK_BF16_DENSE_TFLOPS) or ``--peak_tflops``.

    python benchmarks/bench_gpu.py                                           # BERT-base, 128 and 1,024 tokens, CUDA
    python benchmarks/bench_gpu.py --size tiny --seq_lengths 16 --steps 2    # a smoke test on a CPU
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, BertConfig, BertForMaskedLM, ModernBertConfig, ModernBertForMaskedLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training_step import (  # noqa: E402
    add_model_size_arguments,
    model_sizes,
    synchronize,
    time_and_measure,
    training_step,
)

import hf_posenc  # noqa: E402
from hf_posenc.positional_flex import choose_attention_kernel, has_flex_form  # noqa: E402
from hf_posenc.training import SIZE_PRESETS  # noqa: E402
from hf_posenc.training.throughput import (  # noqa: E402
    device_peak_tflops,
    encoder_flops_per_token,
    model_flops_per_token,
    model_flops_utilization,
)

BASELINES = ("BertForMaskedLM", "ModernBertForMaskedLM")
CUDA_TOKENS_PER_STEP = 32_768


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="base", choices=list(SIZE_PRESETS), help="size preset; flags override it")
    add_model_size_arguments(parser)
    parser.add_argument("--seq_lengths", type=int, nargs="+", default=[128, 1024])
    parser.add_argument(
        "--batch_size",
        type=int,
        default=None,
        help=f"sequences per step (default: {CUDA_TOKENS_PER_STEP:,} tokens per step on CUDA, 8 sequences on a CPU)",
    )
    parser.add_argument("--steps", type=int, default=20, help="timed steps per model and length (after warm-up)")
    parser.add_argument("--warmup_steps", type=int, default=3)
    parser.add_argument("--mask_fraction", type=float, default=0.15)
    parser.add_argument(
        "--attention_dropout",
        type=float,
        default=0.0,
        help="attention dropout of every model (default 0, as ModernBERT trains: FlexAttention has no dropout, so with "
        "BERT's 0.1 the bias and score variants train on their dense paths)",
    )
    parser.add_argument("--variants", nargs="*", default=list(hf_posenc.VARIANTS))
    parser.add_argument("--no_baselines", action="store_true", help="leave BERT and ModernBERT out")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"], help="autocast dtype")
    parser.add_argument("--torch_compile", action="store_true", help="torch.compile every model (inductor)")
    parser.add_argument("--peak_tflops", type=float, default=None, help="peak TFLOP/s of the device (default: table)")
    parser.add_argument("--output", default="benchmarks/results/gpu.json")
    preset, _ = parser.parse_known_args(argv)
    parser.set_defaults(**SIZE_PRESETS[preset.size])  # the preset's sizes, unless a size flag is given
    args = parser.parse_args(argv)
    unknown = sorted(set(args.variants) - set(hf_posenc.VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(hf_posenc.VARIANTS)}")
    for name in ("steps", "warmup_steps", "batch_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1; got {getattr(args, name)}")
    if min(args.seq_lengths) < 2:
        parser.error(f"--seq_lengths must be at least 2 tokens; got {args.seq_lengths}")
    if args.peak_tflops is not None and args.peak_tflops <= 0:
        parser.error(f"--peak_tflops must be positive; got {args.peak_tflops}")
    return args


class Autocast(torch.nn.Module):
    """Runs the wrapped model's forward under autocast (the backward follows the forward's dtypes)."""

    def __init__(self, model: torch.nn.Module, device: str, dtype: torch.dtype | None):
        super().__init__()
        self.model, self.device_type, self.dtype = model, torch.device(device).type, dtype

    def forward(self, **batch):
        with torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None):
            return self.model(**batch)


def build(name: str, args, seq_len: int) -> tuple[torch.nn.Module, float]:
    """The model called `name` (a variant or a baseline) on the device, and its model FLOPs per token."""
    size = model_sizes(args, seq_len)
    hidden, layers, vocab = size["hidden_size"], size["num_hidden_layers"], size["vocab_size"]
    with torch.device(args.device):
        if name == "BertForMaskedLM":
            config = BertConfig(**size, attention_probs_dropout_prob=args.attention_dropout, attn_implementation="sdpa")
            model = BertForMaskedLM(config)
            feed_forward, head_fraction = 2 * hidden * size["intermediate_size"], 1.0
        elif name == "ModernBertForMaskedLM":
            # A gated MLP of 2/3 the intermediate size holds as many weights as BERT's.
            intermediate = 2 * size["intermediate_size"] // 3
            special = dict(pad_token_id=0, bos_token_id=2, eos_token_id=3, cls_token_id=2, sep_token_id=3)
            config = ModernBertConfig(
                **{**size, "intermediate_size": intermediate},
                **special,
                sparse_prediction=True,
                attention_dropout=args.attention_dropout,
                attn_implementation="sdpa",
            )
            model = ModernBertForMaskedLM(config)
            feed_forward, head_fraction = 3 * hidden * intermediate, args.mask_fraction
        else:
            config = hf_posenc.create_config(name, **size, attention_probs_dropout_prob=args.attention_dropout)
            model = AutoModelForMaskedLM.from_config(config)
            return model.train(), model_flops_per_token(config, seq_len, args.mask_fraction)
    flops = encoder_flops_per_token(
        hidden_size=hidden,
        num_layers=layers,
        feed_forward_weights=feed_forward,
        vocab_size=vocab,
        seq_len=seq_len,
        head_fraction=head_fraction,
    )
    return model.train(), flops


def attention_kernel(model, device: str) -> str:
    """The attention kernel a training step of `model` runs: hf_posenc's choice for its encoding, else the config's."""
    if not hasattr(model, "posenc"):
        return model.config._attn_implementation
    position = model.posenc.position
    return choose_attention_kernel(model.posenc, torch.device(device), False, has_flex_form(position))[0]


def make_batches(args, batch_size: int, seq_len: int, generator) -> list[dict[str, torch.Tensor]]:
    batches = []
    for _ in range(args.steps):
        ids = torch.randint(5, args.vocab_size, (batch_size, seq_len), generator=generator)
        masked = torch.rand(ids.shape, generator=generator) < args.mask_fraction
        labels = torch.where(masked, ids, -100)
        ids = torch.where(masked, 4, ids)
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
        batches.append({key: value.to(args.device) for key, value in batch.items()})
    return batches


def measure(name: str, args, seq_len: int, batches, peak_tflops: float | None) -> dict:
    """One model's row: tokens/s, MFU and memory, or the out-of-memory error that stopped it."""
    row = {"model": name, "route": hf_posenc.ENCODINGS[name].route if name in hf_posenc.ENCODINGS else "transformers"}
    row["seq_len"], row["batch_size"] = seq_len, batches[0]["input_ids"].shape[0]
    model = None
    try:
        model, flops_per_token = build(name, args, seq_len)
        row["kernel"] = attention_kernel(model, args.device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=args.device.startswith("cuda"))
        wrapped = Autocast(model, args.device, torch.bfloat16 if args.dtype == "bfloat16" else None)
        if args.torch_compile:
            wrapped = torch.compile(wrapped)
        for _ in range(args.warmup_steps - 1):  # time_and_measure warms up one more step
            training_step(wrapped, optimizer, batches[0])
        step_times, memory = time_and_measure({name: wrapped}, {name: optimizer}, batches, 1, args.device)
    except torch.OutOfMemoryError:
        row["error"] = "out of memory"
        return row
    finally:
        del model
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    tokens_per_second = row["batch_size"] * seq_len / statistics.median(step_times[name])
    row["tokens_per_s"] = tokens_per_second
    row["gflops_per_token"] = flops_per_token / 1e9
    row["mfu"] = model_flops_utilization(tokens_per_second, flops_per_token, peak_tflops)
    row["memory_MiB"] = round(memory[name] / 2**20, 1)
    return row


def add_ratios(rows: list[dict]) -> None:
    """Each row's throughput over BertForMaskedLM's and ModernBertForMaskedLM's at the same length."""
    for baseline in BASELINES:
        reference = {row["seq_len"]: row.get("tokens_per_s") for row in rows if row["model"] == baseline}
        for row in rows:
            base = reference.get(row["seq_len"])
            key = f"x_{baseline.removesuffix('ForMaskedLM')}"
            row[key] = row["tokens_per_s"] / base if base and "tokens_per_s" in row else None


def print_table(rows: list[dict], header: str) -> None:
    print(header)
    print(
        f"| {'model':<22} | {'route':<12} | {'kernel':<14} | {'T':>5} | {'batch':>5} | {'tokens/s':>10} | {'x Bert':>6} | "
        f"{'x Modern':>8} | {'MFU':>6} | {'GFLOP/tok':>9} | {'MiB':>8} |"
    )
    print(
        f"|{'-' * 24}|{'-' * 14}|{'-' * 16}|{'-' * 7}|{'-' * 7}|{'-' * 12}|{'-' * 8}|{'-' * 10}|{'-' * 8}|{'-' * 11}|{'-' * 10}|"
    )

    def cell(value, spec):
        return format(value, spec) if value is not None else "n/a"

    for row in rows:
        if "error" in row:
            print(f"| {row['model']:<22} | {row['route']:<12} | {row.get('kernel', ''):<14} | {row['seq_len']:>5} | {row['batch_size']:>5} | "
                  f"{row['error']} |")  # fmt: skip
            continue
        print(
            f"| {row['model']:<22} | {row['route']:<12} | {row['kernel']:<14} | {row['seq_len']:>5} | {row['batch_size']:>5} | "
            f"{row['tokens_per_s']:>10.0f} | {cell(row['x_Bert'], '>6.2f'):>6} | {cell(row['x_ModernBert'], '>8.2f'):>8} | "
            f"{cell(row['mfu'], '>6.1%'):>6} | {row['gflops_per_token']:>9.4g} | {row['memory_MiB']:>8.1f} |"
        )


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    cuda = args.device.startswith("cuda")
    device_name = torch.cuda.get_device_name(args.device) if cuda else f"CPU x{torch.get_num_threads()} threads"
    peak_tflops = args.peak_tflops or device_peak_tflops(args.device)
    names = ([] if args.no_baselines else list(BASELINES)) + list(args.variants)
    rows = []
    started = time.perf_counter()
    for seq_len in args.seq_lengths:
        batch_size = args.batch_size or (max(1, CUDA_TOKENS_PER_STEP // seq_len) if cuda else 8)
        batches = make_batches(args, batch_size, seq_len, generator)
        for name in names:
            rows.append(measure(name, args, seq_len, batches, peak_tflops))
            synchronize(args.device)
    add_ratios(rows)
    memory_kind = "peak allocated in a step" if cuda else "saved activations"
    header = (
        f"device: {device_name}; peak {peak_tflops or 'unknown'} TFLOP/s; autocast {args.dtype}"
        f"{', torch.compile' if args.torch_compile else ''}; attention dropout {args.attention_dropout}; hidden {args.hidden_size}, {args.num_hidden_layers} "
        f"layers, {args.num_attention_heads} heads, FFN {args.intermediate_size}, vocab {args.vocab_size}; "
        f"median of {args.steps} steps after {args.warmup_steps} warm-up; memory = {memory_kind}; "
        f"{time.perf_counter() - started:.0f} s"
    )
    print_table(rows, header)
    result = {
        "settings": vars(args),
        "device": device_name,
        "peak_tflops": peak_tflops,
        "memory_kind": memory_kind,
        "torch": torch.__version__,
        "rows": rows,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    print(f"wrote {output}")
    return result


if __name__ == "__main__":
    main()
