"""Overhead of LocalitySymmetryCallback on pretraining wall time, at the script's defaults.

Runs hf_posenc.training.pretrain (what examples/pretrain.py calls) twice in this process on the same data and seed,
with and without the callback (`--posenc_metrics false`), alternating, and compares the time between on_train_begin
and on_train_end.

    python benchmarks/bench_callback_overhead.py                 # tiny model, built-in corpus, 200 steps
    python benchmarks/bench_callback_overhead.py --corpus stdlib --max_steps 100
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback

from hf_posenc.training import parse_pretrain_arguments, pretrain


class TrainTimer(TrainerCallback):
    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self.seconds = time.perf_counter() - self.start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="default")
    parser.add_argument("--max_steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", default="benchmarks/results/callback_overhead.json")
    args = parser.parse_args()
    times = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for label, flag in (("without", "false"), ("with", "true")):
                timer = TrainTimer()
                pretrain(
                    **parse_pretrain_arguments(
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
                        ]
                    ),
                    callbacks=[timer],
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
