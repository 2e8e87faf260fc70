"""Pretraining data pipeline (hf_posenc.data.prepare) against the raw fast tokenizer, at several corpus sizes.

For each size, a corpus is generated into a temporary folder (CPython's documentation, the `stdlib` corpus that needs
no network, repeated with a varying number appended to every line), and a fresh process measures:
- the raw speed of the fast tokenizer alone on the same lines (`tokenizer(batch)`, all cores), tokens/s;
- a cold preparation (tokenize, hold out, pack, write), its time, tokens/s and ratio to the raw tokenizer;
- a second call on the cache (no tokenization), its time as a fraction of the cold one;
- peak RSS of the process;
- through `hf_posenc.training.pretrain` (``--train_file``, one step, tiny model), the time from the start of a fresh
  process to the end of its first training step: cold (empty cache: tokenizer training on the bounded sample,
  preparation) and on the cache of the cold run.

    python benchmarks/bench_data.py --sizes 10          # MB of text; the issue's table uses 10 100 1000
    python benchmarks/bench_data.py --sizes 1000 --no_first_step   # preparation only (the first-step runs prepare again)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hf_posenc import data


def generate_corpus(path: Path, megabytes: float) -> Path:
    """Real text repeated with variation: each pass appends its pass number to every line, so no two passes are equal."""
    documents = data.read_documents(data.builtin_corpus("stdlib"))
    target = int(megabytes * 1e6)
    written, repetition = 0, 0
    with open(path, "w", encoding="utf-8") as handle:
        while written < target:
            for document in documents:
                text = "\n".join(f"{line} {repetition}" for line in document) + "\n\n"
                handle.write(text)
                written += len(text.encode("utf-8"))
                if written >= target:
                    break
            repetition += 1
    return path


class AnonymousMemoryPeak:
    """The peak of the process's anonymous memory (RssAnon: heap, Python objects, numpy arrays), sampled every 0.1 s.
    Peak RSS also counts the pages of memory-mapped Arrow files the process has read, which the kernel can drop at
    any time; the anonymous part is what the corpus could make grow out of memory. Linux only (else None)."""

    def __init__(self):
        import threading

        self.peak_kb, self._stop = None, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        status = Path("/proc/self/status")
        while not self._stop.wait(0.1):
            if not status.exists():
                return
            for line in status.read_text().splitlines():
                if line.startswith("RssAnon:"):
                    self.peak_kb = max(self.peak_kb or 0, int(line.split()[1]))

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join()
        return None if self.peak_kb is None else self.peak_kb / 1e6


def measure(corpus: Path, tokenizer_folder: Path, cache: Path, max_seq_length: int) -> dict:
    from transformers import AutoTokenizer

    anonymous = AnonymousMemoryPeak()

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    started = time.perf_counter()
    raw_tokens, batch = 0, []
    for _, line in data.iter_document_lines([corpus]):
        batch.append(line)
        if len(batch) == 1000:
            raw_tokens += sum(map(len, tokenizer(batch, add_special_tokens=False)["input_ids"]))
            batch = []
    if batch:
        raw_tokens += sum(map(len, tokenizer(batch, add_special_tokens=False)["input_ids"]))
    raw_seconds = time.perf_counter() - started

    started = time.perf_counter()
    cold = data.prepare_mlm_data(
        train_files=corpus, tokenizer=tokenizer, max_seq_length=max_seq_length, cache_folder=cache
    )
    cold_seconds = time.perf_counter() - started
    started = time.perf_counter()
    warm = data.prepare_mlm_data(
        train_files=corpus, tokenizer=tokenizer, max_seq_length=max_seq_length, cache_folder=cache
    )
    train, _ = warm.datasets()
    train[0]  # noqa: B018 (the first block, as the first training step would read it)
    warm_seconds = time.perf_counter() - started
    assert cold.built and not warm.built
    return {
        "raw_tokens_per_s": raw_tokens / raw_seconds,
        "prepare_s": cold_seconds,
        "prepare_tokens_per_s": raw_tokens / cold_seconds,
        "cache_hit_s": warm_seconds,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "peak_anonymous_gb": anonymous.stop(),
    }


class _StopAfterFirstStep:
    """A TrainerCallback (built lazily: transformers is imported in the child only) that prints the seconds since
    `started` at the end of the first step and stops the run there."""

    def __new__(cls, started: float):
        from transformers import TrainerCallback

        class StopAfterFirstStep(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                print(json.dumps({"first_step_s": time.time() - started}), flush=True)
                control.should_training_stop = True

        return StopAfterFirstStep()


def first_step(corpus: Path, output: Path, started: float, max_seq_length: int) -> None:
    """The child of `time_to_first_step`: one pretraining step on `corpus`, then stop."""
    from hf_posenc.training import pretrain, pretrain_arguments

    arguments = pretrain_arguments(
        output_dir=str(output),
        overwrite_output_dir=True,
        train_file=str(corpus),
        max_seq_length=max_seq_length,
        max_steps=1,
        report_to=[],
        disable_tqdm=True,
        posenc_metrics=False,
        eval_strategy="no",
        save_strategy="no",
    )
    pretrain(**arguments, callbacks=[_StopAfterFirstStep(started)])


def time_to_first_step(corpus: Path, cache: Path, output: Path, max_seq_length: int) -> float:
    """Seconds from starting a fresh process to the end of its first training step, with this cache folder."""
    import os

    started = time.time()
    command = [sys.executable, __file__, "--max_seq_length", str(max_seq_length), "--first-step"]
    command += [str(corpus), str(output), repr(started)]
    result = subprocess.run(
        command, check=True, capture_output=True, text=True, env={**os.environ, "HF_POSENC_CACHE": str(cache)}
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith('{"first_step_s"')]
    return json.loads(lines[-1])["first_step_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[10.0], help="corpus sizes in MB of text")
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--vocab_size", type=int, default=8000)
    parser.add_argument(
        "--no_first_step", action="store_true", help="skip the time to the first training step (it prepares again)"
    )
    parser.add_argument("--measure", nargs=3, metavar=("CORPUS", "TOKENIZER", "CACHE"), help=argparse.SUPPRESS)
    parser.add_argument("--first-step", nargs=3, metavar=("CORPUS", "OUTPUT", "STARTED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_step:  # the child process of time_to_first_step
        corpus, output, started = args.first_step
        first_step(Path(corpus), Path(output), float(started), args.max_seq_length)
        return
    if args.measure:  # the child process: one size, so that its peak RSS is that size's alone
        corpus, tokenizer_folder, cache = map(Path, args.measure)
        print(json.dumps(measure(corpus, tokenizer_folder, cache, args.max_seq_length)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-data-") as folder:
        folder = Path(folder)
        print(
            "| text | prepare | tokens/s | × raw tokenizer | cache hit | peak RSS (anonymous) | first step: cold | cached |\n"
            "|---|---|---|---|---|---|---|---|"
        )
        for size in args.sizes:
            corpus = generate_corpus(folder / f"corpus-{size:g}MB.txt", size)
            tokenizer = data.train_wordpiece_tokenizer_on_files(corpus, vocab_size=args.vocab_size, sample=200_000)
            tokenizer.save_pretrained(folder / "tokenizer")
            command = [sys.executable, __file__, "--max_seq_length", str(args.max_seq_length), "--measure"]
            command += [str(corpus), str(folder / "tokenizer"), str(folder / f"cache-{size:g}")]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            run_cache, run_output = folder / f"run-cache-{size:g}", folder / f"run-{size:g}"
            if args.no_first_step:
                first_steps = "| – | – |"
            else:
                cold = time_to_first_step(corpus, run_cache, run_output, args.max_seq_length)
                cached = time_to_first_step(corpus, run_cache, run_output, args.max_seq_length)
                first_steps = f"| {cold:.1f} s | {cached:.1f} s ({cached / cold:.0%}) |"
            print(
                f"| {size:g} MB | {result['prepare_s']:.1f} s | {result['prepare_tokens_per_s'] / 1e6:.2f} M "
                f"| {result['prepare_tokens_per_s'] / result['raw_tokens_per_s']:.2f} "
                f"| {result['cache_hit_s']:.2f} s ({result['cache_hit_s'] / result['prepare_s']:.1%}) "
                f"| {result['peak_rss_gb']:.2f} GB ({result['peak_anonymous_gb'] or float('nan'):.2f} GB) {first_steps}"
            )


if __name__ == "__main__":
    main()
