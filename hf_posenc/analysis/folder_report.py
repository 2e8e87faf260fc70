"""The `hf-posenc analyze` job: measure the attention of a saved model folder on sentences and write a report.

Nothing in the folder runs unless the caller trusts it: the model loads with ``trust_remote_code=False`` unless
`trust_remote_code=True` is passed. hf_posenc's own variants need no remote code (importing hf_posenc registers
them with the Auto classes), so their folders load from the installed package, never from the folder's copy of
the code.

A causal decoder (GPT-2, Llama, ...) is measured, but its report says that its attention is causal: each token
sees only earlier tokens, so left and right cannot be compared and symmetry means nothing there. Its symmetry
values are reported as None (undefined) rather than as numbers a reader might take at face value; locality and
the distance profile still describe how far back it looks. Encoder-decoders are refused: the job measures one
stack's self-attention, and theirs needs decoder inputs.

The sentences run in batches of `batch_size` (default 16): memory stays that of one batch (its attentions are about
batch x layers x heads x T^2 x 4 bytes, 150 MB for BERT-base at T = 128), whatever the number of sentences, and
the metrics, accumulated as sums and counts (`hf_posenc.analysis.summary`), are those of one batch holding them all.
Every sentence's length is checked against the model's position limit before the first batch runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..results import json_safe
from ..storage import atomic_path, require_model_folder
from .model_attention import measure_model
from .summary import SUMMARY_METRICS, AttentionAccumulator

__all__ = [
    "BUILTIN_SENTENCES",
    "DEFAULT_BATCH_SIZE",
    "FolderReport",
    "analyze_folder",
    "format_table",
    "metric_label",
    "read_sentences",
]

# Varied English sentences of 8 to 25 words: enough distances for the metrics, no data download.
BUILTIN_SENTENCES = [
    "The old fisherman pulled his boat onto the sand before the storm reached the village.",
    "A small dog chased the red ball across the garden while the children laughed.",
    "Scientists measured the temperature of the lake every morning for three years.",
    "She opened the letter slowly, afraid of what her brother might have written.",
    "The committee approved the new budget after a long and difficult debate.",
    "Heavy rain flooded the main road, so the bus took a longer route through the hills.",
    "In the museum, a guide explained how the ancient map had been drawn by hand.",
    "The students who finished early helped their classmates with the last exercise.",
    "After the concert, the musicians packed their instruments and drove back to the city.",
    "A man is playing a guitar on the corner of a busy street.",
    "The company announced that it would open two new factories in the north next year.",
    "When the lights went out, everyone in the theatre stayed calm and waited quietly.",
    "The farmer sold his apples at the market and bought a new pair of boots.",
    "Two women are walking along the beach while the sun sets behind the cliffs.",
    "The report shows that most patients recovered faster with the new treatment.",
    "Birds gathered on the wires above the station as the first train arrived.",
]
SUMMARY_FILE = "summary.json"
DEFAULT_BATCH_SIZE = 16
# Mass a query may put on later keys in float32 softmax noise and still count as causal (masked logits give 0).
_CAUSAL_TOLERANCE = 1e-6
_SYMMETRY_METRICS = tuple(name for name in SUMMARY_METRICS if name.startswith("symmetry"))


@dataclass
class FolderReport:
    """What `analyze_folder` measured: the `summarize` dict, whether attention is causal, and what it wrote."""

    model: str
    num_sentences: int
    summary: dict[str, Any]
    attention: str  # "bidirectional" or "causal"
    warnings: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    batch_size: int = DEFAULT_BATCH_SIZE

    def to_dict(self) -> dict[str, Any]:
        """The JSON written as summary.json: the `summarize` keys plus model, attention, warnings and the batch size
        the sentences ran in (``"batch_size"`` is the `summarize` key: the number of sentences measured)."""
        run = {"model": self.model, "attention": self.attention, "warnings": self.warnings}
        return json_safe({**run, "sentences_per_batch": self.batch_size, **self.summary})


def read_sentences(path: str | os.PathLike, flag: str = "--texts") -> list[str]:
    """The non-blank lines of a UTF-8 text file, stripped; errors name `flag` and say what to give instead."""
    file = Path(path)
    if file.is_dir():
        raise ValueError(f"{flag} {file} is a folder; give a text file with one sentence per line.")
    if not file.is_file():
        raise FileNotFoundError(f"{flag} {file} does not exist; give a text file with one sentence per line.")
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{flag} {file} is not UTF-8 text (byte {error.start} cannot be decoded); give a UTF-8 text file with "
            "one sentence per line."
        ) from None
    if "\x00" in text:
        raise ValueError(f"{flag} {file} holds NUL bytes, so it is binary, not text; give a text file.")
    sentences = [line.strip() for line in text.splitlines() if line.strip()]
    if not sentences:
        raise ValueError(f"{flag} {file} holds no sentence; write one sentence per line.")
    return sentences


def _check_output_folder(output: Path, model_folder: Path, overwrite: bool) -> None:
    if output.is_symlink():
        raise ValueError(
            f"--output {output} is a symbolic link; give a real folder (hf-posenc does not write through links)."
        )
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"--output {output} is a file; give a folder for the report.")
    try:
        earlier = json.loads((output / SUMMARY_FILE).read_text(encoding="utf-8")).get("model")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return  # no report there (or not one of ours): nothing to protect
    if not overwrite and earlier is not None and Path(earlier).resolve() != model_folder.resolve():
        raise FileExistsError(
            f"--output {output} holds the report of {earlier}, not of {model_folder}; choose another --output "
            "(the default is named after the model) or pass --overwrite to replace it."
        )


def _config_needing_no_code(folder: Path, trust_remote_code: bool):
    """The folder's config, loaded without running its code unless trusted; a clear error for what the job cannot
    measure (encoder-decoders) or may not run (code in the folder, untrusted)."""
    from transformers import CONFIG_MAPPING, AutoConfig

    try:
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{folder / 'config.json'} is not valid JSON ({error}); save the model again.") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{folder / 'config.json'} does not hold a JSON object; save the model again.")
    auto_map = raw.get("auto_map")
    if auto_map and raw.get("model_type") not in CONFIG_MAPPING and not trust_remote_code:
        code = ", ".join(sorted({str(path).split(".")[0] + ".py" for path in dict(auto_map).values()}))
        raise ValueError(
            f"{folder} asks to run its own code ({code}, model type {raw.get('model_type')!r}), and hf-posenc runs "
            "no code it was not told to trust; read that code, then pass --trust_remote_code if you trust it."
        )
    config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
    if getattr(config, "is_encoder_decoder", False):
        raise ValueError(
            f"{folder} holds an encoder-decoder ({config.model_type}); hf-posenc analyze measures the self-attention "
            "of one encoder or decoder. Measure its encoder from Python: hf_posenc.analysis.summarize("
            "model.get_encoder()(**batch, output_attentions=True).attentions, batch['attention_mask'])."
        )
    return config


def _load_tokenizer(folder: Path, trust_remote_code: bool):
    from transformers import AutoTokenizer

    missing = FileNotFoundError(
        f"{folder} has no tokenizer (no tokenizer.json or tokenizer_config.json); save it next to the model with "
        "tokenizer.save_pretrained(folder)."
    )
    if not any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        raise missing
    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except OSError as error:
        raise FileNotFoundError(f"{missing} ({str(error).splitlines()[0]})") from None
    except ValueError as error:
        if "trust_remote_code" in str(error):  # the tokenizer's config points at code in the folder
            raise ValueError(
                f"{folder}'s tokenizer asks to run its own code, and hf-posenc runs no code it was not told to "
                "trust; read that code, then pass --trust_remote_code if you trust it."
            ) from None
        raise ValueError(f"{folder}'s tokenizer does not load: {' '.join(str(error).split())}") from None


def _causal_evidence(attentions, attention_mask) -> tuple[bool, bool]:
    """(whether some sequence has two real tokens, so that there was a later key to look at; whether a real query of
    some layer or head put mass on a later real key). Attention is causal when every batch says (.., False) and one
    says (True, ..)."""
    first = attentions[0]
    seq_len = first.shape[-1]
    if attention_mask is None:
        real = torch.ones(first.shape[0], seq_len, dtype=torch.bool, device=first.device)
    else:
        real = attention_mask.to(first.device) != 0
    if int(real.sum(-1).max()) < 2:
        return False, False
    later = torch.ones(seq_len, seq_len, dtype=torch.bool, device=first.device).triu(1)
    watched = later & real[:, None, :, None] & real[:, None, None, :]  # [batch, 1, T, T]
    looked_later = any(float(layer.float().masked_fill(~watched, 0).amax()) > _CAUSAL_TOLERANCE for layer in attentions)
    return True, looked_later


def _without_symmetry(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary with every symmetry value undefined (None), at every level."""

    def undefined(values: Any) -> Any:
        return [undefined(value) for value in values] if isinstance(values, list) else None

    cleared = dict(summary)
    for name in _SYMMETRY_METRICS:
        cleared[name] = None
        for level in ("per_layer", "per_head"):
            cleared[level] = {**cleared[level], name: undefined(cleared[level][name])}
    return cleared


def analyze_folder(
    model_folder: str | os.PathLike,
    *,
    sentences: list[str] | None = None,
    output: str | os.PathLike | None = None,
    max_length: int = 128,
    plots: bool = True,
    trust_remote_code: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    overwrite: bool = False,
) -> FolderReport:
    """Locality and symmetry of the model saved in `model_folder` (any Hugging Face encoder, or a decoder, whose
    symmetry is then undefined), on `sentences` (default: `BUILTIN_SENTENCES`) truncated to `max_length` tokens and
    run `batch_size` at a time; with the attention sinks of the tokenizer's [CLS] and [SEP] (those it has), the
    log-binned distance profile and, for an hf_posenc rotary encoding, its frequency bands (see `summarize`).

    With `output`, writes ``summary.json`` there (`FolderReport.to_dict`) and, with `plots`, PNG heatmaps and the
    attention-by-distance profile (needs matplotlib). Files are renamed into place: a symbolic link in the folder
    is replaced, never written through, and an `output` that is itself a link is refused, and so is an `output`
    holding another model's report, unless `overwrite`.

    Raises ValueError (also for code in the folder that is not trusted), FileNotFoundError or FileExistsError,
    each saying what to fix."""
    from transformers import AutoModel

    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise ValueError(f"--max_length must be a whole number of tokens >= 1; got {max_length!r}.")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"--batch_size must be a whole number of sentences >= 1; got {batch_size!r}.")
    sentences = BUILTIN_SENTENCES if sentences is None else list(sentences)
    if not sentences or not all(isinstance(text, str) and text.strip() for text in sentences):
        raise ValueError("sentences must be a non-empty list of non-blank strings.")
    output = None if output is None else Path(output)
    if output is not None:
        _check_output_folder(output, Path(model_folder), overwrite)
    folder = require_model_folder(model_folder, flag="model")
    config = _config_needing_no_code(folder, trust_remote_code)
    tokenizer = _load_tokenizer(folder, trust_remote_code)
    try:
        model = AutoModel.from_pretrained(folder, config=config, trust_remote_code=trust_remote_code)
    except OSError as error:  # no weights file, or one that cannot be opened
        raise FileNotFoundError(
            f"{folder} holds no model weights transformers can load ({' '.join(str(error).split())}); save the "
            "model with save_pretrained."
        ) from None
    limit = getattr(config, "max_position_embeddings", None)
    longest = max(len(ids) for ids in tokenizer(sentences, truncation=True, max_length=max_length)["input_ids"])
    if isinstance(limit, int) and longest > limit:
        raise ValueError(
            f"the sentences are up to {longest} tokens long, but {folder} takes at most {limit} positions; pass "
            f"--max_length {limit} or less."
        )
    # A tokenizer without [CLS] or [SEP] (GPT-2's) has None there: that sink is not reported.
    special_token_ids = {
        "cls": getattr(tokenizer, "cls_token_id", None),
        "sep": getattr(tokenizer, "sep_token_id", None),
    }
    accumulator = AttentionAccumulator()
    saw_pairs = looked_later = False
    for start in range(0, len(sentences), batch_size):
        batch = tokenizer(
            sentences[start : start + batch_size],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        result = measure_model(model, dict(batch), special_token_ids)
        accumulator.add(result.measured, result.seq_len, result.details)
        pairs, later = _causal_evidence(result.attentions, result.attention_mask)
        saw_pairs, looked_later = saw_pairs or pairs, looked_later or later
        del result  # the batch's attentions go before the next batch's arrive
    summary = accumulator.summary()
    report = FolderReport(str(model_folder), len(sentences), summary, attention="bidirectional", batch_size=batch_size)
    if saw_pairs and not looked_later:
        report.attention = "causal"
        report.summary = _without_symmetry(summary)
        report.warnings.append(
            f"{folder} has causal attention ({config.model_type}): each token attends only to earlier tokens, so "
            "symmetry (left against right) is meaningless and is reported as n/a; locality and the distance "
            "profile still describe how far back it looks."
        )
    if output is not None:
        report.written = _write_report(report, output, plots)
    return report


def _write_report(report: FolderReport, output: Path, plots: bool) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    summary_path = output / SUMMARY_FILE
    with atomic_path(summary_path) as temporary:
        temporary.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    written = [summary_path]
    if plots:
        from . import plots as drawing

        shown = _metric_names(report.summary)
        if report.attention == "causal":
            shown = [name for name in shown if name not in _SYMMETRY_METRICS]
        for name in shown:
            written.append(drawing.plot_head_heatmap(report.summary, output / f"heatmap_{name}.png", metric=name))
        written.append(drawing.plot_distance_profile(report.summary, output / "attention_by_distance.png"))
        written.append(drawing.plot_log_distance_profile(report.summary, output / "attention_by_log_distance.png"))
    return written


def _metric_names(summary: dict[str, Any]) -> list[str]:
    return list(summary.get("metrics") or SUMMARY_METRICS)


def metric_label(name: str) -> str:
    """A metric's column title: "locality", "symmetry (scale-aware)", "to [CLS]", "RoPE high", ..."""
    if name.startswith("sink_"):
        return f"to [{name[len('sink_') :].upper()}]"
    if name.startswith("rotary_"):
        return f"RoPE {name[len('rotary_') :]}"
    return {"symmetry_scale_aware": "symmetry (scale-aware)"}.get(name, name)


def _table(names: list[str], rows: list[tuple[str, list[Any]]], number: str = ".4f") -> list[str]:
    titles = ["layer", *(metric_label(name) for name in names)]
    widths = [5, *(max(len(title), 8) for title in titles[1:])]
    lines = ["| " + " | ".join(title.rjust(width) for title, width in zip(titles, widths)) + " |"]
    lines.append("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for label, values in rows:
        cells = [label, *("n/a" if value is None else format(value, number) for value in values)]
        lines.append("| " + " | ".join(cell.rjust(width) for cell, width in zip(cells, widths)) + " |")
    return lines


def format_table(report: FolderReport) -> str:
    """What `hf-posenc analyze` prints (Markdown): the metrics per layer (locality and both symmetries; then the
    attention sinks and rotary frequency bands, when measured) and the attention per key by log distance."""
    summary = report.summary
    lines = [
        f"{report.model}: {report.num_sentences} sentences, {summary['num_layers']} layers x "
        f"{summary['num_heads']} heads, {report.attention} attention",
    ]
    names = _metric_names(summary)
    extra = [name for name in names if name not in SUMMARY_METRICS]
    for group in (list(SUMMARY_METRICS), extra):
        if not group:
            continue
        per_layer = summary["per_layer"]
        rows = [(str(layer), [per_layer[name][layer] for name in group]) for layer in range(summary["num_layers"])]
        rows.append(("mean", [summary[name] for name in group]))
        lines += ["", *_table(group, rows)] if group is extra else _table(group, rows)
    bins = summary.get("distance_bins")
    if bins:
        reach = (len(bins["ranges"]) - 1) // 2
        lines += [
            "",
            "attention per key by distance |j - i| (log bins, mean over layers; left: keys before the query; "
            "x uniform: times the sequence's length, 1 = uniform attention)",
            f"| {'distance':>9} | {'left':>10} | {'right':>10} | {'left x uniform':>14} | {'right x uniform':>15} |",
            f"|{'-' * 11}|{'-' * 12}|{'-' * 12}|{'-' * 16}|{'-' * 17}|",
        ]
        for bin_index in range(reach + 1):
            low, high = bins["ranges"][reach + bin_index]
            values = [bins[key][reach + side * bin_index] for key in ("mean", "relative_mean") for side in (-1, 1)]
            cells = [
                "n/a" if value is None else format(value, ".4g" if index < 2 else ".3f")
                for index, value in enumerate(values)
            ]
            label = str(low) if low == high else f"{low}-{high}"
            lines.append(f"| {label:>9} | {cells[0]:>10} | {cells[1]:>10} | {cells[2]:>14} | {cells[3]:>15} |")
    return "\n".join(lines)
