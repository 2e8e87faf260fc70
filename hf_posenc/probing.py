"""The word-order probes under the names earlier versions documented; the code lives in `hf_posenc.tasks` (probe
construction and scoring), `hf_posenc.tasks.word_order` (the probe run) and `hf_posenc.training.finetune`."""

from .cli import add_probe_arguments
from .tasks.parse import ParseNode, parse_tree
from .tasks.probes import NOT_ENTAILMENT, PROBE_NAMES, STILL_ENTAILMENT, build_probes, load_probes, save_probes
from .tasks.role_swap import Roles, find_roles, role_swap
from .tasks.scoring import accuracy, format_table, probe_accuracy_metric, score_probes
from .tasks.shuffle import SHUFFLE_WINDOWS, join_words, shuffle_within_windows, split_words
from .tasks.word_order import ProbeArguments, attention_summary, run_probe
from .training.finetune import FinetuneArguments, load_sequence_classifier

__all__ = [
    "NOT_ENTAILMENT",
    "PROBE_NAMES",
    "SHUFFLE_WINDOWS",
    "STILL_ENTAILMENT",
    "FinetuneArguments",
    "ParseNode",
    "ProbeArguments",
    "Roles",
    "accuracy",
    "add_probe_arguments",
    "attention_summary",
    "build_probes",
    "find_roles",
    "format_table",
    "join_words",
    "load_probes",
    "load_sequence_classifier",
    "parse_tree",
    "probe_accuracy_metric",
    "role_swap",
    "run_probe",
    "save_probes",
    "score_probes",
    "shuffle_within_windows",
    "split_words",
]
