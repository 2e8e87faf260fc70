"""What ``hf-posenc study`` and ``examples/study.py`` do, as one function with typed arguments: read the spec (a
file or a preset), check it and the output folder, then print the plan (``dry_run``) or run the study."""

from __future__ import annotations

from pathlib import Path

from .claims import DEFAULT_HEARTBEAT_TIMEOUT
from .plan import format_plan, plan_study
from .presets import preset_spec
from .runner import StudyOutcome, check_study_folder, output_folder, run_study, select_runs
from .spec import StudySpec, load_spec

__all__ = ["resolve_spec", "study"]


def resolve_spec(spec: str | Path | None, preset: str | None) -> StudySpec:
    if (spec is None) == (preset is None):
        raise ValueError("give a spec file (hf-posenc study SPEC.yaml) or --preset NAME, not both and not neither.")
    return preset_spec(preset) if preset is not None else load_spec(spec)


def _can_time(spec: StudySpec, log) -> bool:
    """Timing a multi-GPU spec on a machine without a GPU would take long and estimate nothing useful."""
    import torch

    if spec.pretraining.processes > 1 and not torch.cuda.is_available():
        log(
            f"no GPU here: the steps of this {spec.pretraining.processes}-process spec are not timed; run --dry_run "
            "on the machine that will train it for a time estimate."
        )
        return False
    return True


def study(
    spec: str | Path | None = None,
    *,
    preset: str | None = None,
    output: str | Path | None = None,
    runs: list[str] | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    log=print,
) -> StudyOutcome | str:
    """Run the study (or, with ``dry_run``, return the printed plan). Every check runs before anything trains."""
    if heartbeat_timeout <= 0:
        raise ValueError(f"--heartbeat_timeout must be a number of seconds above 0; got {heartbeat_timeout}.")
    study_spec = resolve_spec(spec, preset)
    folder = output_folder(study_spec, output)
    selected = select_runs(study_spec, runs)
    if dry_run:
        for note in check_study_folder(study_spec, folder):
            log(note)
        time_steps = _can_time(study_spec, log)
        plan = plan_study(study_spec, folder, selected, retry_failed=retry_failed, time_steps=time_steps, log=log)
        text = format_plan(study_spec, plan)
        log(text)
        return text
    return run_study(
        study_spec, folder, runs=runs, retry_failed=retry_failed, heartbeat_timeout=heartbeat_timeout, log=log
    )
