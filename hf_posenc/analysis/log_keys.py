"""The names under which the training callback logs the metrics, and how the plots read them back.

One place for the ``posenc/locality``, ``posenc/layer_0/symmetry``, ``posenc/layer_0/head_1/...`` scheme: the
callback writes keys with `metric_key`, `plots.plot_training_curves` parses them with `parse_metric_key`, so the
two cannot drift apart. (TensorBoard adds the Trainer's ``train/`` in front; ``log_history`` keeps these names.)
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["DEFAULT_PREFIX", "MetricKey", "metric_key", "parse_metric_key"]

DEFAULT_PREFIX = "posenc"


class MetricKey(NamedTuple):
    """What a logged key names: a metric, overall (layer None) or of one layer, and of one head of it."""

    metric: str
    layer: int | None = None
    head: int | None = None


def metric_key(metric: str, layer: int | None = None, head: int | None = None, prefix: str = DEFAULT_PREFIX) -> str:
    """``posenc/<metric>``, ``posenc/layer_<layer>/<metric>`` or ``posenc/layer_<layer>/head_<head>/<metric>``."""
    if head is not None and layer is None:
        raise ValueError("a head's metric needs its layer too; pass layer=...")
    parts = [prefix]
    if layer is not None:
        parts.append(f"layer_{layer}")
    if head is not None:
        parts.append(f"head_{head}")
    return "/".join((*parts, metric))


_SCOPES = re.compile(r"^(?:layer_(\d+)/)?(?:head_(\d+)/)?([^/]+)$")


def parse_metric_key(key: str, prefix: str = DEFAULT_PREFIX) -> MetricKey | None:
    """The inverse of `metric_key`; None for a key it did not write (a loss, a learning rate, ...)."""
    start = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    if not key.startswith(start):
        return None
    match = _SCOPES.match(key[len(start) :])
    if match is None or (match.group(2) is not None and match.group(1) is None):
        return None
    layer, head, metric = match.groups()
    return MetricKey(metric, None if layer is None else int(layer), None if head is None else int(head))
