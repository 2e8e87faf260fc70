"""Built-in study specs: ``cpu-small`` runs on two CPU cores in about 50 minutes; ``gpu-base`` is the paper-scale setup
for users with GPUs (BERT-base, Wikipedia, GLUE, three seeds, eight processes per run)."""

from __future__ import annotations

from typing import Any

import hf_posenc

from .spec import StudySpec, parse_spec

__all__ = ["PRESETS", "preset_spec", "preset_values"]

# A small w x s grid around the attenuated default (w 0.05, s 1): two localities x two symmetries.
_ATTENUATED_GRID = {"attenuation_strength": [0.02, 0.2], "attenuation_symmetry": [0.5, 2.0]}


def _variant_runs() -> list[dict[str, Any]]:
    return [{"variant": variant} for variant in hf_posenc.VARIANTS] + [
        {"name": "att", "variant": "attenuated", "grid": _ATTENUATED_GRID}
    ]


def _cpu_small() -> dict[str, Any]:
    return {
        "name": "cpu-small",
        "output": "outputs/study-cpu-small",
        "seeds": [1],
        "pretraining": {
            "size": "tiny",
            "corpus": "default",
            "max_seq_length": 64,
            "vocab_size": 4000,
            "steps": 300,
            "batch_size": 12,
            "learning_rate": 1e-3,
            "measure_every": 100,
        },
        "runs": _variant_runs(),
        "evaluations": {
            "tasks": [
                {
                    "name": name,
                    "learning_rates": [3e-4],
                    "seeds": [1],
                    "max_train_samples": 1000,
                    "max_eval_samples": 300,
                    "max_steps": 50,
                    "batch_size": 32,
                    "max_seq_length": 64,
                }
                for name in ("sentiment", "bigram_shift", "tree_depth", "pos")
            ],
            "probes": {
                "max_train_samples": 3200,
                "max_eval_samples": 300,
                "max_steps": 100,
                "learning_rate": 5e-4,
                "batch_size": 32,
                "max_seq_length": 64,
                "metric_sentences": 32,
            },
            "extrapolation": {"lengths": [64, 128, 256], "max_tokens": 20000},
            "position_attention": {"seq_len": 64},
        },
        "report": {"significance": 0.05, "bootstrap": 1000},
    }


def _gpu_base() -> dict[str, Any]:
    glue = ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli-m", "qnli", "rte"]
    return {
        "name": "gpu-base",
        "output": "outputs/study-gpu-base",
        "seeds": [1, 2, 3],
        "pretraining": {
            "size": "base",
            "dataset_name": "wikimedia/wikipedia",
            "dataset_config_name": "20231101.en",
            "max_seq_length": 128,
            "vocab_size": 30522,
            "tokens": 3_276_800_000,  # 100k steps of 8 processes x 32 sequences x 128 tokens
            "batch_size": 32,
            "learning_rate": 1e-4,
            "processes": 8,
            "training": {"warmup_steps": 10000, "bf16": True, "save_steps": 5000, "dataloader_num_workers": 4},
        },
        "runs": _variant_runs(),
        "evaluations": {
            "tasks": [
                {
                    "name": name,
                    "learning_rates": [2e-5, 3e-5, 5e-5],
                    "seeds": [1, 2, 3],
                    "max_train_samples": None,
                    "max_eval_samples": None,
                    "num_train_epochs": 3.0,
                    "batch_size": 32,
                    "max_seq_length": 128,
                }
                for name in glue
            ],
            "probes": {
                "max_train_samples": None,
                "max_eval_samples": None,
                "num_train_epochs": 3.0,
                "learning_rate": 3e-5,
                "batch_size": 32,
                "max_seq_length": 128,
            },
            "extrapolation": {"lengths": [128, 256, 512, 1024], "max_tokens": 200_000},
            "position_attention": {"seq_len": 128},
        },
        "report": {"significance": 0.05, "bootstrap": 2000},
    }


PRESETS = {"cpu-small": _cpu_small, "gpu-base": _gpu_base}


def preset_values(name: str) -> dict[str, Any]:
    """The spec of a preset as plain values (what ``hf-posenc study --preset NAME --dry_run`` shows)."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; the presets are {', '.join(PRESETS)}.") from None


def preset_spec(name: str) -> StudySpec:
    return parse_spec(preset_values(name), source=f"preset {name}")
