"""Downstream tasks and the word-order probes, one module per job.

- :mod:`.base`: `Task`, the declaration of a downstream task (kind, columns, labels, loader, metric, splits);
  :mod:`.registry`: `TASKS` and `get_task`, every task by name: the built-in offline tasks :mod:`.snli` (the task
  the probes fine-tune on), :mod:`.sentiment`, :mod:`.pos`, :mod:`.bigram_shift`, :mod:`.tree_depth` (the last
  three built from :mod:`.snli_sentences`), and :mod:`.glue`; :mod:`.metrics`: the GLUE metrics, computed locally.
- :mod:`.parse`: Stanford constituency parses; :mod:`.shuffle`: window shuffles; :mod:`.role_swap`: subject/object
  swaps; :mod:`.probes`: the probe sets and their files; :mod:`.scoring`: accuracy, probe scores and the table.
- :mod:`.word_order`: the probe run (`run_probe`, `ProbeArguments`); import it from there (it needs
  `hf_posenc.training`, which itself reads the task declarations here).
"""

from .base import HeldOut, HubDataset, Task, TaskKind
from .metrics import f1_accuracy_scores, matthews_correlation_scores, pearson_spearman_scores, token_accuracy_scores
from .parse import ParseNode, parse_tree
from .probes import NOT_ENTAILMENT, PROBE_NAMES, STILL_ENTAILMENT, build_probes, load_probes, save_probes
from .registry import BUILTIN_TASKS, TASKS, get_task
from .role_swap import Roles, find_roles, role_swap
from .scoring import accuracy, accuracy_scores, format_table, probe_accuracy_metric, score_probes
from .shuffle import SHUFFLE_WINDOWS, join_words, shuffle_within_windows, split_words
from .snli import SNLI

__all__ = [
    "BUILTIN_TASKS",
    "HeldOut",
    "HubDataset",
    "NOT_ENTAILMENT",
    "PROBE_NAMES",
    "SHUFFLE_WINDOWS",
    "SNLI",
    "TASKS",
    "STILL_ENTAILMENT",
    "ParseNode",
    "Roles",
    "Task",
    "TaskKind",
    "accuracy",
    "accuracy_scores",
    "build_probes",
    "f1_accuracy_scores",
    "find_roles",
    "format_table",
    "get_task",
    "join_words",
    "load_probes",
    "matthews_correlation_scores",
    "parse_tree",
    "pearson_spearman_scores",
    "probe_accuracy_metric",
    "role_swap",
    "save_probes",
    "score_probes",
    "shuffle_within_windows",
    "split_words",
    "token_accuracy_scores",
]
