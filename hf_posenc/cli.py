"""The `hf-posenc` command: analyze a model's attention, probe word order, export and push a model to the Hub."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

# Varied English sentences of 8 to 25 words: enough distances for the metrics, no data download.
BUILTIN_SENTENCES = [
    "The old fisherman pulled his boat onto the sand before the storm reached the village.",
    "A small dog chased the red ball across the garden while the children laughed.",
    "Scientists measured the temperature of the lake every morning for three years.",
    "She opened the letter slowly, afraid of what her brother might have written.",
    "The committee approved the new budget after a long and difficult debate.",
    "Heavy rain flooded the main road, so the bus took a longer route through the hills.",
    "In the museum, a guide explained how the ancient map had been drawn by hand.",
    "The students who finished early helped their classmates with the last exercise.",
    "After the concert, the musicians packed their instruments and drove back to the city.",
    "A man is playing a guitar on the corner of a busy street.",
    "The company announced that it would open two new factories in the north next year.",
    "When the lights went out, everyone in the theatre stayed calm and waited quietly.",
    "The farmer sold his apples at the market and bought a new pair of boots.",
    "Two women are walking along the beach while the sun sets behind the cliffs.",
    "The report shows that most patients recovered faster with the new treatment.",
    "Birds gathered on the wires above the station as the first train arrived.",
]


def add_analyze_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a saved model folder (an hf_posenc variant or any BERT-family encoder)")
    parser.add_argument("--texts", help="a text file, one sentence per line (default: 16 built-in sentences)")
    parser.add_argument("--output", default="posenc_analysis", help="folder for the JSON and the PNG plots")
    parser.add_argument("--max_length", type=int, default=128, help="truncate sentences to this many tokens")
    parser.add_argument("--no_plots", action="store_true", help="skip the PNGs (no matplotlib needed)")


def load_sentences(path: str | None) -> list[str]:
    if path is None:
        return BUILTIN_SENTENCES
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--texts {path} does not exist; give a text file with one sentence per line.")
    sentences = [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not sentences:
        raise ValueError(f"--texts {path} holds no sentence; write one sentence per line.")
    return sentences


def analyze(args: argparse.Namespace) -> dict:
    from transformers import AutoModel, AutoTokenizer

    from . import metrics

    sentences = load_sentences(args.texts)
    folder = Path(args.model)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder} is not a saved model folder (no config.json); pass a folder written by save_pretrained."
        )
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)  # hf_posenc variants load as local code
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=args.max_length, return_tensors="pt")
    summary = metrics.summarize_model(model, dict(batch))

    print(f"{args.model}: {len(sentences)} sentences, {summary['num_layers']} layers x {summary['num_heads']} heads")
    print(f"| {'layer':>5} | {'locality':>8} | {'symmetry':>8} | {'symmetry (scale-aware)':>22} |")
    print(f"|{'-' * 7}|{'-' * 10}|{'-' * 10}|{'-' * 24}|")
    per_layer = summary["per_layer"]
    rows = [
        (
            str(layer),
            per_layer["locality"][layer],
            per_layer["symmetry"][layer],
            per_layer["symmetry_scale_aware"][layer],
        )
        for layer in range(summary["num_layers"])
    ]
    for name, *values in rows + [("mean", summary["locality"], summary["symmetry"], summary["symmetry_scale_aware"])]:
        cells = ["n/a" if value is None else f"{value:.4f}" for value in values]
        print(f"| {name:>5} | {cells[0]:>8} | {cells[1]:>8} | {cells[2]:>22} |")

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "summary.json").write_text(json.dumps({"model": str(args.model), **summary}, indent=2))
    written = [output / "summary.json"]
    if not args.no_plots:
        from . import plots

        for name in metrics.SUMMARY_METRICS:
            written.append(plots.plot_head_heatmap(summary, output / f"heatmap_{name}.png", metric=name))
        written.append(plots.plot_distance_profile(summary, output / "attention_by_distance.png"))
    print("wrote " + ", ".join(str(path) for path in written))
    return summary


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a training run folder (examples/pretrain.py --output_dir)")
    parser.add_argument("out_dir", help="the Hub-ready folder to write")
    parser.add_argument("--probe_results", help="probe_results.json from `hf-posenc probe`, shown on the card")
    parser.add_argument("--repo_id", help="USER/NAME, written into the card's usage snippet")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty folder (nothing is deleted)")


def export_run(args: argparse.Namespace):
    from . import hub

    folder = hub.export_run(
        args.run, args.out_dir, probe_results=args.probe_results, repo_id=args.repo_id, overwrite=args.overwrite
    )
    print(f"wrote {folder}; upload it with: hf-posenc push {folder} {args.repo_id or 'USER/NAME'}")
    return folder


# What a user can fix (a bad argument, a missing or existing file, an unusable model): reported as one line and
# exit status 2, without a traceback, by the CLI and by the example scripts.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, RuntimeError)


def exit_on_user_error(main: Callable[[], object], prog: str) -> None:
    """Run a script's `main`; a user error is printed as ``prog: error: ...`` and exits with status 2."""
    try:
        main()
    except USER_ERRORS as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    from . import hub, probing

    parser = argparse.ArgumentParser(prog="hf-posenc", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_analyze_arguments(commands.add_parser("analyze", help="locality and symmetry of a model's attention"))
    probing.add_probe_arguments(commands.add_parser("probe", help="the paper's word-order probes on SNLI"))
    add_export_arguments(commands.add_parser("export", help="a Hub-ready folder from a training run"))
    hub.add_push_arguments(commands.add_parser("push", help="upload an exported folder to the Hub"))
    args = parser.parse_args(argv)
    try:
        if args.command == "analyze":
            analyze(args)
        elif args.command == "probe":
            probing.run_probe(args)
        elif args.command == "export":
            export_run(args)
        else:
            return hub.run_push(args)
    except USER_ERRORS as error:
        print(f"hf-posenc {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
