"""Sizes of the built-in corpora and the time to build, tokenize and pack them (README, section Data).

python benchmarks/corpus_stats.py            # every corpus; downloads the artefacts on first use
python benchmarks/corpus_stats.py --rebuild  # also time building each corpus from its cached artefact
"""

import argparse
import time

from hf_posenc import data


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    print("| corpus | build (s) | documents | lines | words |\n|---|---|---|---|---|")
    for name in data.CORPORA:
        path, seconds = timed(data.builtin_corpus, name, rebuild=args.rebuild)
        documents = data.read_documents(path)
        lines = sum(len(document) for document in documents)
        words = sum(len(line.split()) for document in documents for line in document)
        build = f"{seconds:.1f}" if args.rebuild else "cached"
        print(f"| {name} | {build} | {len(documents):,} | {lines:,} | {words:,} |")
    documents = data.read_documents(data.builtin_corpus("default"))
    tokenizer, seconds = timed(data.train_wordpiece_tokenizer, documents, vocab_size=8000)
    print(f"WordPiece, 8,000 tokens, on 'default': {seconds:.1f} s")
    for length in (128, 512):
        (train, validation), seconds = timed(data.pack_for_mlm, documents, tokenizer, length)
        print(
            f"packing 'default' into {length}-token blocks: {seconds:.1f} s, {len(train):,} training + "
            f"{len(validation):,} validation blocks"
        )


if __name__ == "__main__":
    main()
