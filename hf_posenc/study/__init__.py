"""The study: train many positional encodings at equal budget, measure and evaluate them, and report how their
locality and symmetry correlate with their downstream scores.

- `spec`: the study spec (YAML/JSON), checked with line numbers, grids expanded (`load_spec`, `StudySpec`);
- `presets`: the built-in specs ``cpu-small`` and ``gpu-base`` (`preset_spec`);
- `claims`: lock files that let several invocations share one output folder;
- `runner`: `run_study`, every (run, seed): pretrain, then each evaluation, each step skipped when done;
- `pretrain_job`: one pretraining under ``accelerate launch -m hf_posenc.study.pretrain_job``;
- `plan`: the plan and time estimate of ``--dry_run``;
- `report`: ``study_results.csv``/``.json``, correlations with bootstrap intervals, plots, ``study_report.md``.
"""

from .plan import StudyPlan, format_plan, plan_study
from .presets import PRESETS, preset_spec
from .report import collect_rows, correlations, write_report
from .runner import StudyOutcome, run_study, select_runs
from .spec import EXAMPLE_SPEC, SpecError, StudySpec, load_spec, parse_spec, spec_from_text

__all__ = [
    "EXAMPLE_SPEC",
    "PRESETS",
    "SpecError",
    "StudyOutcome",
    "StudyPlan",
    "StudySpec",
    "collect_rows",
    "correlations",
    "format_plan",
    "load_spec",
    "parse_spec",
    "plan_study",
    "preset_spec",
    "run_study",
    "select_runs",
    "spec_from_text",
    "write_report",
]
