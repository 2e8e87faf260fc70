"""Run a study: every (run, seed) unit pretrains, then goes through each evaluation, each step in its own folder.

`run_study(spec, output)`:
- checks the output folder against the spec it was run with (`check_study_folder`): the same spec continues, a spec
  that only adds runs or evaluations extends it (and says what it added), any other change is refused;
- trains the shared tokenizer once (claimed, so parallel invocations wait for the first);
- claims each unit in turn (`claims.claim`): a unit claimed by a live invocation is left to it, a stale claim is
  taken over, so several invocations sharing the folder split the study between them;
- skips every step whose result file exists, and every step that failed before (its error.json) unless
  ``retry_failed``; a failed step is recorded with its error and the study goes on;
- then runs the random-initialisation baselines of the selected runs' variants (`baselines`), claimed and skipped
  the same way;
- writes the report (`report.write_report`) at the end, from whatever results exist.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..results import FinetuneResult, PretrainResult, ProbeResult
from .claims import DEFAULT_HEARTBEAT_TIMEOUT, ClaimHeld, claim
from .layout import (
    ERROR_FILE,
    POSITION_FILE,
    SPEC_FILE,
    STEP_TIMES,
    TOKENIZER_FOLDER,
    TRAINING_LOG,
    read_json,
    step_folders,
    unit_folder,
    write_json,
)
from .pretrain_job import LOG_ENVIRONMENT, TrainingLogCallback
from .spec import RunSpec, StudySpec

__all__ = ["StudyOutcome", "check_study_folder", "output_folder", "run_study", "select_runs", "train_tokenizer"]


@dataclass
class StudyOutcome:
    """What one invocation did: units it ran, found done, left to another invocation; steps that failed."""

    output: Path
    ran: list[str] = field(default_factory=list)
    done_before: list[str] = field(default_factory=list)
    claimed_elsewhere: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    steps_run: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def output_folder(spec: StudySpec, output: str | Path | None = None) -> Path:
    return Path(output or spec.output or f"outputs/study-{spec.name}")


def select_runs(spec: StudySpec, names: list[str] | None) -> list[RunSpec]:
    """The runs named (a run's name, or a grid's name for all its points); every run when `names` is empty."""
    if not names:
        return list(spec.runs)
    selected = []
    for name in names:
        matches = [run for run in spec.runs if name in (run.name, run.group)]
        if not matches:
            raise ValueError(
                f"--runs {name}: the spec has no run or grid of that name; its runs are "
                f"{', '.join(run.name for run in spec.runs)}."
            )
        selected += [run for run in matches if run not in selected]
    return selected


# ------------------------------------------------------------------------------------------------ the spec in a folder
def _comparable(spec_dict: dict) -> dict:
    values = {key: value for key, value in spec_dict.items() if key not in ("name", "output", "report")}
    values["runs"] = {run["name"]: run for run in values["runs"]}
    values["tasks"] = {task["name"]: task for task in values["tasks"]}
    return values


def check_study_folder(spec: StudySpec, output: Path) -> list[str]:
    """Refuse a folder that holds a study with another spec, unless the new spec only adds runs or evaluations;
    return notes saying what was added. Does not write anything."""
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"--output {output} is a file; give a folder for the study (it is created if missing).")
    earlier = read_json(output / SPEC_FILE)
    if earlier is None:
        # A parallel invocation's half-written spec is a hidden temporary file: not a reason to refuse.
        if output.exists() and any(not item.name.startswith(".") for item in output.iterdir()):
            raise FileExistsError(
                f"{output} holds files but no {SPEC_FILE}: it is not a study folder; give an empty or new --output."
            )
        return []
    old, new = _comparable(earlier), _comparable(spec.to_dict())
    if old["pretraining"] != new["pretraining"]:
        changed = sorted(
            key
            for key in set(old["pretraining"]) | set(new["pretraining"])
            if old["pretraining"].get(key) != new["pretraining"].get(key)
        )
        raise FileExistsError(
            f"{output} holds a study pretrained with other settings (pretraining: {', '.join(changed)} changed); "
            "its runs are not comparable with this spec's. Give another --output, or restore the settings."
        )
    notes = []
    for part in ("runs", "tasks"):
        removed = sorted(set(old[part]) - set(new[part]))
        changed = sorted(name for name in set(old[part]) & set(new[part]) if old[part][name] != new[part][name])
        if removed or changed:
            what = "; ".join(
                text
                for text in (
                    f"removed {', '.join(removed)}" if removed else "",
                    f"changed {', '.join(changed)}" if changed else "",
                )
                if text
            )
            raise FileExistsError(
                f"{output} holds a study whose spec differs in its {part} ({what}); a spec may only add runs or "
                "evaluations to a study folder. Give another --output, or restore those entries."
            )
        added = [name for name in new[part] if name not in old[part]]
        if added:
            notes.append(f"extending the study in {output}: added {part} {', '.join(added)}")
    for part in ("probes", "extrapolation", "position_attention", "random_init"):
        # .get: a folder written before the random-init baseline existed has no such key
        if old.get(part) is not None and old[part] != new.get(part):
            raise FileExistsError(
                f"{output} holds a study whose {part} settings differ from this spec's; a spec may only add "
                f"evaluations. Give another --output, or restore the {part} settings."
            )
        if old.get(part) is None and new.get(part) is not None:
            notes.append(f"extending the study in {output}: added the {part} evaluation")
    return notes


# ------------------------------------------------------------------------------------------------ tokenizer
def _text_files(pretraining) -> list[Path]:
    """The pretraining text as files, as `pretrain` reads it (a Hub dataset written once to the cache)."""
    from .. import data

    if pretraining.train_file:
        return [Path(pretraining.train_file)]
    if pretraining.dataset_name:
        from ..training.corpus import hub_text_file

        return [hub_text_file(pretraining.dataset_name, pretraining.dataset_config_name, "text")]
    return [data.builtin_corpus(pretraining.corpus)]


def train_tokenizer(spec: StudySpec, output: Path, *, heartbeat_timeout: float, log=print) -> Path:
    """The study's shared tokenizer (trained by the first invocation; the others wait for it)."""
    from .. import data

    folder = output / TOKENIZER_FOLDER
    while not (folder / "tokenizer_config.json").is_file():
        try:
            held = claim(folder, heartbeat_timeout=heartbeat_timeout, log=log)
        except ClaimHeld as error:
            log(f"waiting for the tokenizer, trained by {error.holder}")
            time.sleep(2)
            continue
        try:
            if not (folder / "tokenizer_config.json").is_file():
                log(f"training the shared WordPiece tokenizer ({spec.pretraining.vocab_size} tokens)")
                # The same bounded sample of lines as pretrain's own tokenizer training.
                tokenizer = data.train_wordpiece_tokenizer_on_files(
                    _text_files(spec.pretraining),
                    vocab_size=spec.pretraining.vocab_size,
                    model_max_length=spec.pretraining.max_seq_length,
                )
                staging = folder / ".staging"
                tokenizer.save_pretrained(staging)
                for item in staging.iterdir():  # tokenizer_config.json last: its presence means "ready"
                    if item.name != "tokenizer_config.json":
                        item.replace(folder / item.name)
                (staging / "tokenizer_config.json").replace(folder / "tokenizer_config.json")
                staging.rmdir()
        finally:
            held.release()
    return folder


# ------------------------------------------------------------------------------------------------ steps
def _config_value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def pretrain_options(spec: StudySpec, run: RunSpec, seed: int, tokenizer: Path, folder: Path) -> dict:
    """The `pretrain_arguments` keyword arguments of one run: the shared setup, the run's settings, the seed."""
    from ..training.arguments import VariantArguments

    pretraining = spec.pretraining
    variant_fields = {item.name for item in dataclasses.fields(VariantArguments)}
    overrides = [pretraining.config_overrides] if pretraining.config_overrides else []
    options = {}
    for key, value in run.settings.items():
        if key in variant_fields:
            options[key] = value
        else:
            overrides.append(f"{key}={_config_value(value)}")
    steps = pretraining.max_steps
    options.update(
        variant=run.variant,
        size=pretraining.size,
        config_overrides=",".join(overrides) or None,
        corpus=pretraining.corpus,
        train_file=pretraining.train_file,
        dataset_name=pretraining.dataset_name,
        dataset_config_name=pretraining.dataset_config_name,
        max_seq_length=pretraining.max_seq_length,
        tokenizer_name=str(tokenizer),
        posenc_every_n_steps=pretraining.measure_every,
        output_dir=str(folder),
        max_steps=steps,
        per_device_train_batch_size=pretraining.batch_size,
        learning_rate=pretraining.learning_rate,
        seed=seed,
        report_to=[],
        logging_steps=max(1, min(25, steps // 20)),
        warmup_steps=min(150, steps // 10),
        eval_steps=max(steps, 1),
        save_steps=max(steps, 1) if steps <= 500 else 500,
        disable_tqdm=True,
    )
    options.update(pretraining.training)
    return {key: value for key, value in options.items() if value is not None}


def _last_checkpoint(folder: Path) -> Path | None:
    checkpoints = sorted(
        (path for path in folder.glob("checkpoint-*") if path.name.split("-")[-1].isdigit()),
        key=lambda path: int(path.name.split("-")[-1]),
    )
    return checkpoints[-1] if checkpoints else None


def _as_flags(options: dict) -> list[str]:
    flags = []
    for key, value in options.items():
        if isinstance(value, list):
            flags += [f"--{key}", *map(_config_value, value)] if value else [f"--{key}", "none"]
        else:
            flags += [f"--{key}", _config_value(value)]
    return flags


def run_pretraining(spec: StudySpec, run: RunSpec, seed: int, tokenizer: Path, folder: Path, log=print) -> None:
    """Pretrain one unit into `folder`, resuming from its last checkpoint after an interruption."""
    options = pretrain_options(spec, run, seed, tokenizer, folder)
    checkpoint = _last_checkpoint(folder) if folder.is_dir() else None
    options["overwrite_output_dir"] = True  # the study owns the folder: a retry writes over a failed attempt
    if checkpoint is not None:
        options["resume_from_checkpoint"] = str(checkpoint)
        log(f"  resuming from {checkpoint.name}")
    log_path = folder / TRAINING_LOG
    if spec.pretraining.processes == 1:
        from ..training import pretrain, pretrain_arguments

        arguments = pretrain_arguments(**options)
        pretrain(**arguments, callbacks=[TrainingLogCallback.for_arguments(log_path, arguments)])
        return
    # `accelerate launch` of this interpreter (its console script may not be on PATH, in a virtual environment).
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        str(spec.pretraining.processes),
        "--multi_gpu",
        "-m",
        "hf_posenc.study.pretrain_job",
        *_as_flags(options),
    ]
    log("  " + " ".join(command))
    environment = {**os.environ, LOG_ENVIRONMENT: str(log_path)}
    completed = subprocess.run(command, env=environment, stderr=subprocess.PIPE, text=True)
    if completed.returncode != 0:
        lines = [line for line in completed.stderr.splitlines() if line.strip()]
        raise RuntimeError(f"accelerate launch exited with status {completed.returncode}: {' | '.join(lines[-3:])}")


def _finetune_arguments(settings, learning_rate: float, seed: int):
    from ..training.finetune import FinetuneArguments

    return FinetuneArguments(
        learning_rate=learning_rate,
        num_train_epochs=settings.num_train_epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        max_seq_length=settings.max_seq_length,
        seed=seed,
    )


def run_task(task, model_dir: Path, folder: Path, name: str, log=print) -> None:
    from ..training.runner import finetune_tasks

    finetune_tasks(
        model_dir,
        [task.name],
        learning_rates=task.learning_rates,
        seeds=task.seeds,
        training=_finetune_arguments(task, task.learning_rates[0], task.seeds[0]),
        output_dir=folder,
        max_train_samples=task.max_train_samples,
        max_eval_samples=task.max_eval_samples,
        model_name=name,
        log=lambda line: log("  " + line),
    )


def run_probes(probes, model_dir: Path, folder: Path, name: str) -> None:
    from ..tasks.word_order import run_probe

    run_probe(
        model=model_dir,
        output_dir=folder,
        model_name=name,
        max_train_samples=probes.max_train_samples,
        max_eval_samples=probes.max_eval_samples,
        metric_sentences=probes.metric_sentences,
        train_file=probes.train_file,
        test_file=probes.test_file,
        overwrite_output_dir=True,
        training=_finetune_arguments(probes, probes.learning_rate, probes.seed),
    )


def run_extrapolation(extrapolation, model_dir: Path, folder: Path) -> None:
    from ..analysis.extrapolation import extrapolate
    from ..data import read_documents

    documents = read_documents(extrapolation.texts) if extrapolation.texts else None
    result = extrapolate(
        model_dir,
        extrapolation.lengths,
        documents,
        text_name=extrapolation.texts or "SNLI test set",
        max_tokens=extrapolation.max_tokens,
    )
    result.save(folder)


def measure_position_attention(position, model_dir: Path, folder: Path) -> None:
    """Locality and both symmetries of the position-only matrices, or why the variant has none."""
    from transformers import AutoModelForMaskedLM

    from ..analysis import locality, position_attention, symmetry

    model = AutoModelForMaskedLM.from_pretrained(model_dir)
    try:
        attention = position_attention(model, position.seq_len)
    except ValueError as error:
        values = {"applicable": False, "reason": str(error), "seq_len": position.seq_len}
    else:
        values = {
            "applicable": True,
            "seq_len": position.seq_len,
            "locality": float(locality(attention).mean()),
            "symmetry": float(symmetry(attention).mean()),
            "symmetry_scale_aware": float(symmetry(attention, method="scale_aware").mean()),
        }
    write_json(folder / POSITION_FILE, values)


def step_done(step: str, folder: Path) -> bool:
    if step == "pretrain":
        return PretrainResult.exists_in(folder)
    if step.startswith("task:"):
        return FinetuneResult.exists_in(folder) and FinetuneResult.load(folder).complete
    if step == "probes":
        return ProbeResult.exists_in(folder)
    if step == "extrapolation":
        from ..analysis.extrapolation import ExtrapolationResult

        return ExtrapolationResult.exists_in(folder)
    return (folder / POSITION_FILE).is_file()


def unit_steps(spec: StudySpec, unit: Path) -> dict[str, Path]:
    steps = step_folders(unit, [task.name for task in spec.tasks])
    wanted = {"pretrain", *(f"task:{task.name}" for task in spec.tasks)}
    wanted |= {name for name in ("probes", "extrapolation", "position_attention") if getattr(spec, name) is not None}
    return {step: folder for step, folder in steps.items() if step in wanted}


def _run_step(step: str, spec: StudySpec, run: RunSpec, seed: int, tokenizer: Path, folder: Path, unit: Path, log):
    model_dir = unit / "pretrain"
    name = f"{run.name}-seed{seed}"
    if step == "pretrain":
        run_pretraining(spec, run, seed, tokenizer, folder, log)
        if not PretrainResult.exists_in(folder):
            raise RuntimeError("pretraining stopped before its last step and wrote no results")
    elif step.startswith("task:"):
        task = next(task for task in spec.tasks if task.name == step.removeprefix("task:"))
        run_task(task, model_dir, folder, name, log)
    elif step == "probes":
        run_probes(spec.probes, model_dir, folder, name)
    elif step == "extrapolation":
        run_extrapolation(spec.extrapolation, model_dir, folder)
    else:
        measure_position_attention(spec.position_attention, model_dir, folder)


def _run_steps(label: str, steps: dict[str, Path], first: str, done, run_one, unit: Path, retry_failed: bool, log):
    """Run the steps of one unit that are not done, in order: the first step (pretraining, or building the random
    model) must have succeeded for the others to run. A failed step writes its error.json and the unit goes on
    (except after a failed first step). Returns (steps run, steps failed)."""
    ran, failed = [], []
    for step, folder in steps.items():
        if done(step, folder):
            continue
        error_file = folder / ERROR_FILE
        if error_file.is_file() and not retry_failed:
            failed.append(step)
            continue
        if step != first and not done(first, steps[first]):
            continue  # the model was not made: nothing to evaluate
        with contextlib.suppress(FileNotFoundError):
            error_file.unlink()
        log(f"{label}: {step}")
        started = time.perf_counter()
        try:
            run_one(step, folder)
        except Exception as error:  # a failed step is recorded and the study goes on
            write_json(
                error_file,
                {
                    "step": step,
                    "error": f"{type(error).__name__}: {error}",
                    "traceback": traceback.format_exc(),
                    "seconds": round(time.perf_counter() - started, 1),
                },
            )
            log(f"{label}: {step} failed: {type(error).__name__}: {error}")
            failed.append(step)
            if step == first:
                break
            continue
        ran.append(step)
        times = read_json(unit / STEP_TIMES) or {}
        write_json(unit / STEP_TIMES, {**times, step: round(time.perf_counter() - started, 1)})
    return ran, failed


def run_unit(spec: StudySpec, run: RunSpec, seed: int, tokenizer: Path, unit: Path, retry_failed: bool, log=print):
    """The steps of one (run, seed): returns (steps run, steps failed)."""

    def run_one(step: str, folder: Path) -> None:
        _run_step(step, spec, run, seed, tokenizer, folder, unit, log)

    return _run_steps(
        f"{run.name} seed {seed}", unit_steps(spec, unit), "pretrain", step_done, run_one, unit, retry_failed, log
    )


def run_baseline_unit(spec: StudySpec, unit, tokenizer: Path, retry_failed: bool, log=print):
    """The steps of one random-initialisation baseline (`baselines.BaselineUnit`): returns (steps run, failed)."""
    from . import baselines

    def run_one(step: str, folder: Path) -> None:
        baselines.run_step(spec, unit, step, tokenizer, folder, log)

    steps = baselines.unit_steps(spec, unit)
    return _run_steps(unit.label, steps, "init", baselines.step_done, run_one, unit.folder, retry_failed, log)


def _claimed(outcome: StudyOutcome, label: str, folder: Path, heartbeat_timeout: float, work, log) -> None:
    """Claim a unit's folder, do its `work` (returning steps run and failed) and record the outcome; a unit claimed
    by a live invocation is left to it."""
    try:
        held = claim(folder, heartbeat_timeout=heartbeat_timeout, log=log)
    except ClaimHeld as error:
        log(f"{label}: claimed by {error.holder}; left to it")
        outcome.claimed_elsewhere.append(label)
        return
    try:
        ran, failed = work()
    finally:
        held.release()
    (outcome.ran if ran else outcome.done_before).append(label)
    outcome.steps_run += [f"{label}: {step}" for step in ran]
    outcome.failed += [f"{label}: {step}" for step in failed]


def run_study(
    spec: StudySpec,
    output: str | Path | None = None,
    *,
    runs: list[str] | None = None,
    retry_failed: bool = False,
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    report: bool = True,
    log=print,
) -> StudyOutcome:
    """Run every missing step of the selected runs (all by default) and write the report; see the module docstring."""
    output = output_folder(spec, output)
    selected = select_runs(spec, runs)
    notes = check_study_folder(spec, output)
    for note in notes:
        log(note)
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / SPEC_FILE, spec.to_dict())
    outcome = StudyOutcome(output=output, notes=notes)
    tokenizer = train_tokenizer(spec, output, heartbeat_timeout=heartbeat_timeout, log=log)
    for run in selected:
        for seed in run.seeds:
            unit = unit_folder(output, run.name, seed)
            work = functools.partial(run_unit, spec, run, seed, tokenizer, unit, retry_failed, log)
            _claimed(outcome, f"{run.name} seed {seed}", unit, heartbeat_timeout, work, log)
    from .baselines import baseline_units

    for baseline in baseline_units(spec, output, selected):
        work = functools.partial(run_baseline_unit, spec, baseline, tokenizer, retry_failed, log)
        _claimed(outcome, baseline.label, baseline.folder, heartbeat_timeout, work, log)
    if report:
        from .report import write_report

        write_report(spec, output, log=log)
    return outcome
