"""The plan of a study and an estimate of its time, for ``--dry_run``.

The estimate times real training steps on this machine: for each variant, a model of the spec's size runs one
warm-up step and `TIMED_STEPS` timed steps (forward, backward, AdamW) on random tokens of the spec's length, with a batch of
at most `TIMING_BATCH` sequences (one for small and base models on a CPU), scaled linearly to the spec's batch; the
median step counts, so one step slowed by another job does not set the estimate. The machine's load average while
timing is recorded with the estimate: other jobs on the cores make every timed step, and so the estimate, longer. Fine-tuning steps are estimated from the same
time, scaled by their batch and length; data loading and evaluation passes are not counted, but a step on a fresh
model is slower than inside a long run, so this first estimate can be off either way (the cpu-small preset: 83 min
estimated, 52 min measured, idle 2-core VM). Once units of the study have finished, each pending step is estimated from the measured time of the
same step (of the same variant for pretraining) in the folder's ``step_seconds.json`` files, which counts everything.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from .layout import ERROR_FILE, STEP_TIMES, read_json, unit_folder
from .runner import step_done, unit_steps
from .spec import RunSpec, StudySpec

__all__ = ["StudyPlan", "format_plan", "plan_study", "time_training_step"]

TIMING_BATCH = 4
TIMED_STEPS = 5  # after one warm-up step


def time_training_step(spec: StudySpec, run: RunSpec) -> float:
    """Seconds of one pretraining step of `run` at the spec's batch size (per process)."""
    import torch
    from transformers import AutoModelForMaskedLM

    import hf_posenc

    from ..training.arguments import SIZE_PRESETS
    from ..training.model_config import parse_config_overrides

    pretraining = spec.pretraining
    config = hf_posenc.create_config(
        run.variant,
        **{
            **SIZE_PRESETS[pretraining.size],
            **parse_config_overrides(run.variant, pretraining.config_overrides),
            **run.settings,
            "vocab_size": pretraining.vocab_size,
        },
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForMaskedLM.from_config(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    # A BERT-base step on a CPU takes seconds per sequence: time one sequence there and scale.
    timing_batch = 1 if device == "cpu" and pretraining.size in ("small", "base") else TIMING_BATCH
    batch = min(pretraining.batch_size, timing_batch)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, pretraining.vocab_size, (batch, pretraining.max_seq_length), generator=generator)
    labels = torch.full_like(ids, -100)
    masked = torch.rand(ids.shape, generator=generator) < 0.15
    labels[masked] = ids[masked]
    ids, labels = ids.to(device), labels.to(device)
    seconds = []
    for _ in range(TIMED_STEPS + 1):
        started = time.perf_counter()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds[1:]) * pretraining.batch_size / batch


@dataclass
class UnitPlan:
    run: str
    variant: str
    seed: int
    steps_done: list[str] = field(default_factory=list)
    steps_to_run: list[str] = field(default_factory=list)
    steps_failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timing_error: str | None = None


@dataclass
class StudyPlan:
    output: Path
    units: list[UnitPlan]
    step_seconds: dict[str, float]
    measured_steps: int = 0
    calibration: float = 1.0
    load_average: float | None = None  # the 1-minute load average after timing (None where the OS has none)
    cores: int | None = None

    @property
    def total_seconds(self) -> float:
        return sum(unit.seconds for unit in self.units)


def _finetune_steps(settings, default_samples: int = 2000) -> int:
    if settings.max_steps > 0:
        return settings.max_steps
    samples = settings.max_train_samples or default_samples
    return math.ceil(settings.num_train_epochs * samples / settings.batch_size)


def _measured_seconds(spec: StudySpec, output: Path) -> dict[tuple, list[float]]:
    """Seconds of the steps this study's folder has finished: by (step, variant) and by (step, None)."""
    measured: dict[tuple, list[float]] = {}
    for run in spec.runs:
        for seed in run.seeds:
            times = read_json(unit_folder(output, run.name, seed) / STEP_TIMES) or {}
            for step, seconds in times.items():
                measured.setdefault((step, run.variant), []).append(seconds)
                measured.setdefault((step, None), []).append(seconds)
    return measured


def plan_study(
    spec: StudySpec,
    output: Path,
    runs: list[RunSpec],
    *,
    retry_failed: bool = False,
    time_steps: bool = True,
    log=print,
) -> StudyPlan:
    """What each (run, seed) still has to do, and an estimate of its time from timed steps of each variant (of the
    runs with steps to run; a run whose step cannot run, a table too short for the blocks say, is noted)."""
    pretraining = spec.pretraining
    pretrain_tokens = pretraining.batch_size * pretraining.max_seq_length
    units = []
    for run in runs:
        for seed in run.seeds:
            unit = UnitPlan(run.name, run.variant, seed)
            for step, folder in unit_steps(spec, unit_folder(output, run.name, seed)).items():
                if step_done(step, folder):
                    unit.steps_done.append(step)
                elif (folder / ERROR_FILE).is_file() and not retry_failed:
                    unit.steps_failed.append(step)
                else:
                    unit.steps_to_run.append(step)
            if "pretrain" in unit.steps_failed:  # its evaluations wait for a model
                unit.steps_to_run = []
            units.append(unit)
    from .baselines import baseline_plans  # the random-initialisation baselines: fine-tuning steps, estimated alike

    units += baseline_plans(spec, output, runs, retry_failed)
    step_seconds: dict[str, float] = {}
    timing_errors: dict[str, str] = {}
    anything_pending = any(unit.steps_to_run for unit in units)
    for run in runs:
        if not time_steps or not anything_pending or run.variant in step_seconds:
            continue
        try:
            step_seconds[run.variant] = time_training_step(spec, run)
            log(f"timed a training step of {run.variant}: {step_seconds[run.variant]:.3f} s (median of {TIMED_STEPS})")
        except Exception as error:  # the run itself will fail the same way; the plan says so
            timing_errors[run.name] = f"{type(error).__name__}: {error}"
    load_average = os.getloadavg()[0] if step_seconds and hasattr(os, "getloadavg") else None
    measured = _measured_seconds(spec, output)
    # How much longer a finished pretraining took than its timed steps (data, evaluation, measurements, load).
    ratios = [
        statistics.fmean(measured[("pretrain", variant)]) / (pretraining.max_steps * seconds)
        for variant, seconds in step_seconds.items()
        if measured.get(("pretrain", variant)) and seconds > 0
    ]
    calibration = statistics.median(ratios) if ratios else 1.0
    for unit in units:
        step_time = step_seconds.get(unit.variant, 0.0)
        unit.timing_error = timing_errors.get(unit.run)
        for step in unit.steps_to_run:
            same_variant = measured.get((step, unit.variant))
            if same_variant:  # finished units of this study measured it: the best estimate
                unit.seconds += statistics.fmean(same_variant)
            elif step != "pretrain" and measured.get((step, None)):
                unit.seconds += statistics.fmean(measured[(step, None)])
            elif step == "pretrain":
                unit.seconds += pretraining.max_steps * step_time * calibration
            elif step.startswith("task:") or step == "probes":
                settings = spec.probes if step == "probes" else next(t for t in spec.tasks if f"task:{t.name}" == step)
                cells = 1 if step == "probes" else len(settings.learning_rates) * len(settings.seeds)
                scale = settings.batch_size * settings.max_seq_length / pretrain_tokens
                unit.seconds += cells * _finetune_steps(settings) * step_time * scale * calibration
    finished = sum(len(values) for (step, variant), values in measured.items() if variant is None)
    return StudyPlan(
        output=output,
        units=units,
        step_seconds=step_seconds,
        measured_steps=finished,
        calibration=calibration,
        load_average=load_average,
        cores=os.cpu_count(),
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_plan(spec: StudySpec, plan: StudyPlan) -> str:
    pretraining = spec.pretraining
    lines = [
        f"study {spec.name} -> {plan.output}",
        f"pretraining: {pretraining.size} models, {pretraining.max_steps} steps x {pretraining.tokens_per_step} tokens "
        f"({pretraining.processes} process(es)), sequence length {pretraining.max_seq_length}, shared WordPiece of "
        f"{pretraining.vocab_size} tokens",
        "evaluations: "
        + ", ".join(
            [f"task {task.name}" for task in spec.tasks]
            + [name for name in ("probes", "extrapolation", "position_attention") if getattr(spec, name) is not None]
        ),
        "",
    ]
    width = max(len(unit.run) for unit in plan.units)
    for unit in plan.units:
        todo = ", ".join(unit.steps_to_run) or "nothing"
        failed = (
            f"; failed before: {', '.join(unit.steps_failed)} (--retry_failed runs them)" if unit.steps_failed else ""
        )
        if unit.timing_error:
            failed += f"; a training step failed when timed ({unit.timing_error}): this run will fail"
        duration = _duration(unit.seconds) if plan.step_seconds or plan.measured_steps else "?"
        lines.append(f"  {unit.run.ljust(width)}  seed {unit.seed}  {duration:>7}  to run: {todo}{failed}")
    to_run = sum(bool(unit.steps_to_run) for unit in plan.units)
    if plan.measured_steps:
        basis = (
            f"from the measured times of the {plan.measured_steps} steps this folder has finished, and timed "
            f"training steps x {plan.calibration:.1f} (their measured overhead) for the others"
        )
    else:
        basis = (
            "training and fine-tuning steps only, timed on random batches (data loading and evaluation not counted); "
            "it can be off either way, docs/study.md says by how much"
        )
    estimate = (
        f"estimated {_duration(plan.total_seconds)} in one invocation on this machine ({basis})."
        if plan.step_seconds or plan.measured_steps
        else "no time estimate (no step was timed)."
    )
    lines += ["", f"{to_run} of {len(plan.units)} (run, seed) units have steps to run; {estimate}"]
    if plan.load_average is not None:
        load = f"machine load while timing: {plan.load_average:.1f} (1-minute average) on {plan.cores} cores"
        if plan.cores and plan.load_average > plan.cores:
            load += (
                "; more work than cores, so the timed steps ran slower than they will on a quiet machine: time again "
                "when it is quiet for a tighter estimate"
            )
        lines.append(load + ".")
    return "\n".join(lines)
