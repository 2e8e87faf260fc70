"""Overhead of LocalitySymmetryCallback on pretraining wall time, at the script's defaults.

Runs examples/pretrain.py twice in this process on the same data and seed, with and without the callback
(`--posenc_metrics false`), alternating, and compares the time between on_train_begin and on_train_end.

    python benchmarks/bench_callback_overhead.py                 # tiny model, built-in corpus, 200 steps
    python benchmarks/bench_callback_overhead.py --corpus stdlib --max_steps 100
"""

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback

ROOT = Path(__file__).resolve().parents[1]


class TrainTimer(TrainerCallback):
    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self.seconds = time.perf_counter() - self.start


def load_pretrain():
    spec = importlib.util.spec_from_file_location("pretrain_example", ROOT / "examples" / "pretrain.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="default")
    parser.add_argument("--max_steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", default="benchmarks/results/callback_overhead.json")
    args = parser.parse_args()
    pretrain = load_pretrain()
    times = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for label, flag in (("without", "false"), ("with", "true")):
                timer = TrainTimer()
                pretrain.main(
                    [
                        "--corpus",
                        args.corpus,
                        "--max_steps",
                        str(args.max_steps),
                        "--eval_strategy",
                        "no",
                        "--save_strategy",
                        "no",
                        "--report_to",
                        "none",
                        "--disable_tqdm",
                        "true",
                        "--posenc_metrics",
                        flag,
                        "--output_dir",
                        f"{scratch}/{label}{repeat}",
                    ],
                    extra_callbacks=[timer],
                )
                times[label].append(timer.seconds)
    best = {label: min(values) for label, values in times.items()}
    overhead = best["with"] / best["without"] - 1
    print(f"{args.max_steps} steps, tiny preset, logging every 25 steps (the defaults); best of {args.repeats}:")
    print(
        f"  without callback {best['without']:.1f} s, with callback {best['with']:.1f} s -> overhead {100 * overhead:.1f}%"
    )
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"settings": vars(args), "seconds": times, "overhead": overhead}, indent=2))


if __name__ == "__main__":
    main()
