"""Probe how much a model cares about word order, as in "The Locality and Symmetry of Positional Encodings".

Fine-tunes a sequence classifier (a saved hf_posenc variant or any local Hugging Face model folder, e.g. a
stock BERT) on SNLI train, evaluates it on the SNLI test set and on the word-order probes (shuffles inside
windows of 3 to 6 words, a full shuffle, and a subject/object role swap), prints the paper's table with the
model's attention locality and symmetry, and writes probe_results.json.

    python examples/probe.py outputs/rope-tiny --max_train_samples 50000 --learning_rate 5e-4 --output_dir outputs/probe-rope-tiny

`hf-posenc probe MODEL ...` takes the same options. From Python: `hf_posenc.tasks.word_order.run_probe(...)`.
"""

import argparse

from hf_posenc.cli import add_probe_arguments, exit_on_user_error, parse_with_trainer_flags, probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_probe_arguments(parser)
    probe(parse_with_trainer_flags(parser))


if __name__ == "__main__":
    exit_on_user_error(main, "probe.py")
