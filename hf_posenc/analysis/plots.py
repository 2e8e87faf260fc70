"""PNG plots of the attention metrics: layer x head heatmaps, attention by signed distance (near the query, and over
the whole range in log bins), attention matrices and metric curves over training.

matplotlib is an optional extra (``pip install hf_posenc[plots]``); it is imported inside each function,
and figures are drawn on matplotlib's non-interactive Agg canvas without touching ``pyplot``'s global
state, so these functions work on headless machines and do not change a notebook's backend.
Every function writes one PNG (creating missing parent folders) and returns its path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..storage import atomic_path
from .log_keys import DEFAULT_PREFIX, parse_metric_key
from .summary import SUMMARY_METRICS

__all__ = [
    "plot_attention_matrix",
    "plot_distance_profile",
    "plot_head_heatmap",
    "plot_log_distance_profile",
    "plot_training_curves",
]

_METRIC_LABELS = {
    "locality": "locality",
    "symmetry": "symmetry (reference)",
    "symmetry_scale_aware": "symmetry (scale-aware)",
    "sink_cls": "attention to [CLS]",
    "sink_sep": "attention to [SEP]",
    "rotary_high": "share of |logit|, high RoPE frequencies",
    "rotary_medium": "share of |logit|, medium RoPE frequencies",
    "rotary_low": "share of |logit|, low RoPE frequencies",
    "rotary_unrotated": "share of |logit|, unrotated dimensions",
}
_DPI = 120


def _new_figure(width: float, height: float):
    """A matplotlib Figure on an Agg canvas; raises ImportError with the install hint if matplotlib is absent."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "hf_posenc plots need matplotlib, which is not installed: pip install hf_posenc[plots]"
        ) from error
    figure = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: str | Path) -> Path:
    """Write the PNG through a temporary file renamed into place: a half-written plot is never seen, and a
    symbolic link at `path` is replaced, never written through."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the plot a file name ending in .png")
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", bbox_inches="tight")
    return path


def _as_float(value: Any) -> float:
    return math.nan if value is None else float(value)


def plot_head_heatmap(
    summary: Mapping[str, Any], path: str | Path, metric: str = "locality", *, title: str | None = None
) -> Path:
    """Heatmap of one metric per layer (rows) and head (columns), from :func:`hf_posenc.analysis.summarize`.

    Args:
        summary: the dict ``summarize`` returns (its ``"per_head"`` entry is used).
        path: where to write the PNG.
        metric: ``"locality"``, ``"symmetry"`` or ``"symmetry_scale_aware"``.
        title: figure title; defaults to the metric name and its overall mean.

    Returns:
        The path of the PNG written.
    """
    per_head = summary.get("per_head", {}) if isinstance(summary, Mapping) else {}
    if metric not in per_head:
        raise ValueError(
            f"summary has no per-head values for {metric!r}; pass the dict from hf_posenc.analysis.summarize "
            f"and one of {', '.join(map(repr, _METRIC_LABELS))}"
        )
    grid = [[_as_float(value) for value in row] for row in per_head[metric]]
    num_layers, num_heads = len(grid), len(grid[0]) if grid else 0
    if num_layers == 0 or num_heads == 0:
        raise ValueError(f"summary['per_head'][{metric!r}] is empty; there is nothing to plot")
    import numpy

    values = numpy.ma.masked_invalid(numpy.array(grid, dtype=float))
    figure = _new_figure(min(2.0 + 0.55 * num_heads, 16.0), min(1.5 + 0.45 * num_layers, 14.0))
    axes = figure.add_subplot()
    colormap = _colormap("viridis")
    colormap = colormap.with_extremes(bad="lightgrey")
    image = axes.imshow(values, cmap=colormap, vmin=0.0, vmax=1.0, aspect="auto")
    figure.colorbar(image, ax=axes, label=_METRIC_LABELS.get(metric, metric))
    if num_layers * num_heads <= 256:
        for layer in range(num_layers):
            for head in range(num_heads):
                value = grid[layer][head]
                text = "n/a" if math.isnan(value) else f"{value:.2f}"
                if math.isnan(value):
                    color = "dimgrey"  # on the light grey of undefined cells
                else:
                    color = "black" if value > 0.6 else "white"  # readable on viridis' light and dark ends
                axes.text(head, layer, text, ha="center", va="center", fontsize=7, color=color)
    axes.set_xticks(range(num_heads))
    axes.set_yticks(range(num_layers))
    axes.set_xlabel("head")
    axes.set_ylabel("layer")
    overall = summary.get(metric)
    default_title = _METRIC_LABELS.get(metric, metric)
    if overall is not None:
        default_title += f" per layer and head (mean {float(overall):.3f})"
    axes.set_title(title if title is not None else default_title)
    return _save(figure, path)


def _colormap(name: str):
    from matplotlib import colormaps

    return colormaps[name].copy()


def _draw_profiles(axes, positions: list, layers, mean) -> None:
    """A thin line per layer (when given), the bold mean over layers, and the query's own position marked."""
    layers = layers or []
    colormap = _colormap("viridis")
    for index, profile in enumerate(layers):
        axes.plot(
            positions,
            [_as_float(v) for v in profile],
            color=colormap(index / max(len(layers) - 1, 1)),
            linewidth=1.0,
            alpha=0.8,
            label=f"layer {index}" if len(layers) <= 12 else None,
        )
    axes.plot(
        positions,
        [_as_float(v) for v in mean],
        color="black",
        linewidth=2.5,
        marker="o",
        markersize=3,
        label="mean over layers",
    )
    axes.axvline(0, color="grey", linewidth=0.8, linestyle=":")


def plot_distance_profile(
    summary: Mapping[str, Any],
    path: str | Path,
    *,
    per_layer: bool = True,
    log_scale: bool = False,
    title: str | None = None,
) -> Path:
    """Mean attention against the signed distance ``j - i`` from query to key, from ``summarize``.

    A symmetric profile means attention looks left and right alike; a peak at 0 that falls fast means
    local attention.

    Args:
        summary: the dict ``summarize`` returns (its ``"distance"`` entry is used).
        path: where to write the PNG.
        per_layer: draw one thin line per layer besides the bold mean over layers.
        log_scale: logarithmic y axis (useful when the peak at 0 dwarfs the rest).
        title: figure title.

    Returns:
        The path of the PNG written.
    """
    distance = summary.get("distance") if isinstance(summary, Mapping) else None
    if not distance or "offsets" not in distance or "mean" not in distance:
        raise ValueError("summary has no 'distance' entry; pass the dict from hf_posenc.analysis.summarize")
    offsets = list(distance["offsets"])
    figure = _new_figure(7.0, 4.0)
    axes = figure.add_subplot()
    _draw_profiles(axes, offsets, distance.get("per_layer") if per_layer else None, distance["mean"])
    if log_scale:
        axes.set_yscale("log")
    axes.set_xlabel("signed distance j - i (key position - query position)")
    axes.set_ylabel("mean attention")
    axes.set_xticks(offsets if len(offsets) <= 21 else offsets[:: max(1, len(offsets) // 10)])
    axes.set_title(title if title is not None else "attention by signed distance")
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside, clear of the lines
    axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_log_distance_profile(
    summary: Mapping[str, Any], path: str | Path, *, per_layer: bool = True, title: str | None = None
) -> Path:
    """Mean attention per key against the signed distance ``j - i`` over the whole range, in the log bins of
    ``summarize``'s ``"distance_bins"`` (0, 1, 2-3, 4-7, ... on each side), on a log scale: where attention rises
    again far from the query (the U-shape reported for RoPE), the ends of the curve turn up.

    Args:
        summary: the dict ``summarize`` returns.
        path: where to write the PNG.
        per_layer: draw one thin line per layer besides the bold mean over layers.
        title: figure title.

    Returns:
        The path of the PNG written.
    """
    bins = summary.get("distance_bins") if isinstance(summary, Mapping) else None
    if not bins or "ranges" not in bins or "mean" not in bins:
        raise ValueError("summary has no 'distance_bins' entry; pass the dict from hf_posenc.analysis.summarize")
    reach = (len(bins["ranges"]) - 1) // 2
    positions = list(range(-reach, reach + 1))
    labels = [str(low) if low == high else f"{low}..{high}" for low, high in bins["ranges"]]
    figure = _new_figure(max(7.0, 0.55 * len(positions)), 4.0)
    axes = figure.add_subplot()
    _draw_profiles(axes, positions, bins.get("per_layer") if per_layer else None, bins["mean"])
    if any(_as_float(v) > 0 for v in bins["mean"]):
        axes.set_yscale("log")
    axes.set_xticks(positions, labels=labels, rotation=60, fontsize=7)
    axes.set_xlabel("signed distance j - i, log bins (left: keys before the query)")
    axes.set_ylabel("mean attention per key")
    axes.set_title(title if title is not None else "attention by distance, full range")
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_attention_matrix(
    matrix: Any,
    path: str | Path,
    *,
    title: str | None = None,
    tokens: Sequence[str] | None = None,
) -> Path:
    """Heatmap of one ``[T, T]`` attention matrix (rows = queries, columns = keys).

    Args:
        matrix: a 2-D tensor, numpy array or nested list.
        path: where to write the PNG.
        title: figure title.
        tokens: optional ``T`` token strings to label the axes (used when ``T <= 64``).

    Returns:
        The path of the PNG written.
    """
    import numpy

    if hasattr(matrix, "detach"):
        matrix = matrix.detach().to("cpu").double().numpy()
    values = numpy.asarray(matrix, dtype=float)
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ValueError(f"plot_attention_matrix needs one square [T, T] matrix; got shape {values.shape}")
    size = values.shape[0]
    if tokens is not None and len(tokens) != size:
        raise ValueError(f"tokens has {len(tokens)} entries but the matrix is {size} x {size}")
    figure = _new_figure(6.5, 5.5)
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="magma", vmin=0.0, aspect="equal", interpolation="nearest")
    figure.colorbar(image, ax=axes, label="attention")
    if tokens is not None and size <= 64:
        axes.set_xticks(range(size), labels=list(tokens), rotation=90, fontsize=6)
        axes.set_yticks(range(size), labels=list(tokens), fontsize=6)
    axes.set_xlabel("key position j")
    axes.set_ylabel("query position i")
    axes.set_title(title if title is not None else f"attention ({size} x {size})")
    return _save(figure, path)


def _history_points(history: Iterable[Any]) -> list[tuple[float, Mapping[str, Any]]]:
    points = []
    for index, entry in enumerate(history):
        if isinstance(entry, Mapping):
            if "step" not in entry:
                raise ValueError(
                    f"history entry {index} has no 'step' key; pass Trainer.state.log_history or (step, dict) pairs"
                )
            points.append((float(entry["step"]), entry))
        elif isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[1], Mapping):
            points.append((float(entry[0]), entry[1]))
        else:
            raise ValueError(
                f"history entry {index} is a {type(entry).__name__}; expected a dict with 'step' (a Trainer "
                "log_history entry) or a (step, dict) pair"
            )
    return points


def plot_training_curves(
    history: Iterable[Any],
    path: str | Path,
    *,
    metrics: Sequence[str] = SUMMARY_METRICS,
    prefix: str = DEFAULT_PREFIX + "/",
    title: str | None = None,
) -> Path:
    """Locality and symmetry against the training step, one panel per metric.

    Reads keys ``f"{prefix}{metric}"`` (the overall value, bold line) and ``f"{prefix}layer_{i}/{metric}"``
    (one thin line per layer) from each entry; entries without them (loss logs, for instance) are skipped.

    Args:
        history: ``Trainer.state.log_history`` (dicts with a ``"step"`` key) or a list of ``(step, dict)``.
        path: where to write the PNG.
        metrics: which metrics to draw, one panel each.
        prefix: the key prefix the values were logged under.
        title: figure title.

    Returns:
        The path of the PNG written.

    Raises:
        ValueError: for a malformed entry, or when no entry holds any of the requested metrics.
    """
    points = _history_points(history)
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metrics is empty; name at least one, e.g. ('locality', 'symmetry')")
    overall: dict[str, list[tuple[float, float]]] = {metric: [] for metric in metrics}
    by_layer: dict[str, dict[int, list[tuple[float, float]]]] = {metric: {} for metric in metrics}
    for step, values in points:
        for key, value in values.items():
            if value is None or not isinstance(value, (int, float)):
                continue
            named = parse_metric_key(key, prefix)
            if named is None or named.head is not None or named.metric not in overall:
                continue
            if named.layer is None:
                overall[named.metric].append((step, float(value)))
            else:
                by_layer[named.metric].setdefault(named.layer, []).append((step, float(value)))
    if not any(overall[m] or by_layer[m] for m in metrics):
        wanted = ", ".join(f"{prefix}{m}" for m in metrics)
        raise ValueError(f"no history entry holds any of {wanted} (or per-layer {prefix}layer_<i>/<metric>)")
    figure = _new_figure(4.2 * len(metrics), 3.6)
    colormap = _colormap("viridis")
    for panel, metric in enumerate(metrics):
        axes = figure.add_subplot(1, len(metrics), panel + 1)
        layers = by_layer[metric]
        for order, layer in enumerate(sorted(layers)):
            steps, values = zip(*sorted(layers[layer]))
            axes.plot(
                steps,
                values,
                color=colormap(order / max(len(layers) - 1, 1)),
                linewidth=1.0,
                alpha=0.8,
                label=f"layer {layer}" if len(layers) <= 12 else None,
            )
        if overall[metric]:
            steps, values = zip(*sorted(overall[metric]))
            axes.plot(steps, values, color="black", linewidth=2.2, marker="o", markersize=3, label="mean")
        axes.set_title(_METRIC_LABELS.get(metric, metric))
        axes.set_xlabel("training step")
        axes.set_ylim(0.0, 1.02)
        axes.grid(alpha=0.3)
        if panel == 0 and (layers or overall[metric]):
            axes.legend(fontsize=7)
    if title is not None:
        figure.suptitle(title)
    figure.tight_layout()
    return _save(figure, path)
