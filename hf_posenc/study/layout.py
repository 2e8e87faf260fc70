"""Where a study keeps its files. One place, so the runner, the report and the tests agree.

<output>/study_spec.json                 the spec the folder was run with (checked on every start)
<output>/tokenizer/                      WordPiece trained once, shared by every run
<output>/runs/<run>/seed-<seed>/         one unit of work (claimed by one invocation at a time)
    pretrain/                            the model, posenc_results.json, training_log.json
    tasks/<task>/finetune_results.json   one folder per downstream task
    probes/probe_results.json
    extrapolation/extrapolation_results.json
    position_attention/position_attention.json
    <step>/error.json                    a step that failed: its error (skipped on reruns, see --retry_failed)
<output>/study_results.csv, .json, study_correlations.csv, study_report.md, plots/
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..storage import atomic_output

SPEC_FILE = "study_spec.json"
TOKENIZER_FOLDER = "tokenizer"
RUNS_FOLDER = "runs"
ERROR_FILE = "error.json"
TRAINING_LOG = "training_log.json"
STEP_TIMES = "step_seconds.json"  # per unit: seconds each finished step took (the dry run's estimates read them)
POSITION_FILE = "position_attention.json"
PLOTS_FOLDER = "plots"


def unit_folder(output: Path, run: str, seed: int) -> Path:
    return Path(output) / RUNS_FOLDER / run / f"seed-{seed}"


def step_folders(unit: Path, tasks: list[str]) -> dict[str, Path]:
    """Step name -> folder, in the order the steps run."""
    return {
        "pretrain": unit / "pretrain",
        **{f"task:{task}": unit / "tasks" / task for task in tasks},
        "probes": unit / "probes",
        "extrapolation": unit / "extrapolation",
        "position_attention": unit / "position_attention",
    }


def write_json(path: Path, values: Any) -> None:
    with atomic_output(Path(path), encoding="utf-8") as handle:
        handle.write(json.dumps(values, indent=2, default=str) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
