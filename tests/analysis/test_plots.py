"""The PNG plots, the log keys they read back from the training callback, and the imports without matplotlib."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from hf_posenc.analysis import log_keys, metrics
from hf_posenc.analysis.callback import distance_bin_name, flatten_for_logging, split_for_console


def softmax_layers(count: int, heads: int, size: int, seed: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(
        torch.softmax(torch.randn(2, heads, size, size, generator=generator, dtype=torch.float64), dim=-1)
        for _ in range(count)
    )


def test_modules_import_without_matplotlib():
    # A real process: matplotlib must be absent from the start, and the old module paths must still import.
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from hf_posenc import metrics, plots, callbacks, metrics_kernel\n"
        "from hf_posenc.analysis import plots as new_plots\n"
        "import torch\n"
        "assert plots.plot_attention_matrix is new_plots.plot_attention_matrix\n"
        "assert callbacks.LocalitySymmetryCallback and metrics_kernel.load and metrics.SUMMARY_METRICS\n"
        "print(metrics.locality(torch.eye(3)).item())\n"
        "try:\n"
        "    plots.plot_attention_matrix(torch.eye(3), 'never.png')\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "1.0" in result.stdout
    assert "pip install hf_posenc[plots]" in result.stdout


def test_log_keys_written_by_the_callback_are_the_ones_the_plots_read():
    layers = softmax_layers(3, 2, 9, seed=3)
    input_ids = torch.tensor([[1, 5, 5, 5, 2, 5, 5, 5, 2], [1, 5, 5, 5, 5, 5, 5, 5, 2]])
    summary = metrics.summarize(layers, input_ids=input_ids, special_token_ids={"cls": 1, "sep": 2})
    logs = flatten_for_logging(summary, per_head=True)
    profile = summary["distance_bins"]
    bins = {distance_bin_name(*limits): value for limits, value in zip(profile["ranges"], profile["mean"])}
    assert list(bins)[:5] == [
        "distance_left_8",
        "distance_left_4-7",
        "distance_left_2-3",
        "distance_left_1",
        "distance_self",
    ]
    parsed = {key: log_keys.parse_metric_key(key) for key in logs}
    assert all(named is not None for named in parsed.values())
    assert parsed["posenc/locality"] == log_keys.MetricKey("locality")
    assert parsed["posenc/layer_2/symmetry"] == log_keys.MetricKey("symmetry", 2)
    assert parsed["posenc/layer_1/head_0/symmetry_scale_aware"] == log_keys.MetricKey("symmetry_scale_aware", 1, 0)
    for key, named in parsed.items():
        assert log_keys.metric_key(*named) == key
        if named.metric in bins:
            expected = bins[named.metric]
        elif named.layer is None:
            expected = summary[named.metric]
        elif named.head is None:
            expected = summary["per_layer"][named.metric][named.layer]
        else:
            expected = summary["per_head"][named.metric][named.layer][named.head]
        assert logs[key] == pytest.approx(expected)
    assert {"posenc/sink_cls", "posenc/layer_2/head_1/sink_sep", "posenc/distance_right_4-7"} <= set(logs)
    # The console (trainer.log) gets every overall value and the per-layer values of the paper's three metrics.
    headline, detail = split_for_console({**logs, "loss": 1.0})
    assert {"loss", "posenc/sink_cls", "posenc/layer_0/locality", "posenc/layer_1/head_0/symmetry"} <= set(headline)
    assert {"posenc/layer_0/sink_cls", "posenc/distance_self"} <= set(detail) and not set(headline) & set(detail)
    assert log_keys.parse_metric_key("loss") is None
    assert log_keys.parse_metric_key("posenc/head_1/locality") is None  # a head needs its layer
    assert log_keys.parse_metric_key("train/posenc/locality", prefix="train/posenc") == log_keys.MetricKey("locality")


def _is_png(path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plots_write_png_files(tmp_path):
    pytest.importorskip("matplotlib")
    from hf_posenc.analysis import plots

    layers = softmax_layers(3, 4, 16, seed=13)
    summary = metrics.summarize(layers, max_distance=4)
    history = []
    for step in (0, 10, 20):
        history.append({"step": step, "loss": 2.0})
        entry = {"step": step, "posenc/locality": 0.2, "posenc/symmetry": 0.6, "posenc/symmetry_scale_aware": 0.4}
        entry.update({f"posenc/layer_{i}/locality": 0.1 * i for i in range(3)})
        history.append(entry)
    written = [
        plots.plot_head_heatmap(summary, tmp_path / "heads.png", metric="symmetry_scale_aware"),
        plots.plot_distance_profile(summary, tmp_path / "sub" / "distance.png", log_scale=True),
        plots.plot_log_distance_profile(summary, tmp_path / "log_distance.png"),
        plots.plot_attention_matrix(layers[0][0, 0], tmp_path / "matrix.png", tokens=[str(i) for i in range(16)]),
        plots.plot_training_curves(history, tmp_path / "curves.png"),
        plots.plot_training_curves(
            [(0, {"posenc/locality": 0.3}), (5, {"posenc/locality": 0.4})],
            tmp_path / "pairs.png",
            metrics=("locality",),
        ),
        # What the callback logs, read back through the same key functions.
        plots.plot_training_curves(
            [(1, flatten_for_logging(summary)), (2, flatten_for_logging(summary))], tmp_path / "logged.png"
        ),
    ]
    for path in written:
        assert path.exists() and path.stat().st_size > 1000 and _is_png(path), path
    assert sorted(item.name for item in tmp_path.iterdir()) == sorted(
        ["heads.png", "sub", "log_distance.png", "matrix.png", "curves.png", "pairs.png", "logged.png"]
    )  # no temporary file left behind


def test_plots_reject_bad_input(tmp_path):
    pytest.importorskip("matplotlib")
    from hf_posenc.analysis import plots

    with pytest.raises(ValueError, match="no per-head values for 'entropy'"):
        plots.plot_head_heatmap({"per_head": {}}, tmp_path / "x.png", metric="entropy")
    with pytest.raises(ValueError, match="no 'distance' entry"):
        plots.plot_distance_profile({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="no 'distance_bins' entry"):
        plots.plot_log_distance_profile({"distance": {}}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="square"):
        plots.plot_attention_matrix(torch.ones(2, 3), tmp_path / "x.png")
    with pytest.raises(ValueError, match="no history entry holds"):
        plots.plot_training_curves([{"step": 1, "loss": 2.0}], tmp_path / "x.png")
    with pytest.raises(ValueError, match="no 'step' key"):
        plots.plot_training_curves([{"posenc/locality": 0.2}], tmp_path / "x.png")
