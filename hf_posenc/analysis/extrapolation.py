"""Length extrapolation: masked-LM loss and attention of a trained model at sequence lengths it was not trained on.

One held-out token stream (documents joined by [SEP]) is cut into [CLS] ... [SEP] blocks of each length. Which tokens
are masked is decided once per token of the stream, not per block, so every length predicts the same tokens (except
the tail that a length cannot fill). Masked tokens are all replaced by [MASK]: a measurement, not training, needs no
80/10/10. The loss is the mean cross-entropy over all masked tokens of a length; locality and symmetry are measured on
the first blocks of each length. Encodings with a fixed position table (`learned`, `tupe`, and stock BERT models) are
reported as not run beyond their table instead of failing.

Memory is bounded: each forward holds at most `ATTENTION_BUDGET_BYTES` of attention matrices (the batch shrinks as
the length grows, down to one block, and so does the number of blocks whose attention is kept for the metrics); a
length whose single block cannot fit in the memory free on the model's device is refused before any length runs; and
with `save_to`, the result file is rewritten after each length, so the lengths done survive a later failure.

A rope model can be measured under a context-extension scaling (`rope_scaling`, transformers' `rope_parameters` form:
linear, dynamic, yarn, longrope, llama3), applied to a copy of its config at load time; its
`original_max_position_embeddings` defaults to the trained length.

Each measured length also says where it stands against the length the model was trained on (`trained_length`: the
`trained_max_length` that hf_posenc pretraining writes into config.json, else `max_seq_length` in the
posenc_results.json next to the model, else unknown): "ok" within it; beyond it, "untrained positions" when the length
reads rows of a learned position table that no training block reached, "beyond trained length" otherwise; "trained
length unknown" when nothing records it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from ..results import PretrainResult, ResultFile, json_safe, perplexity
from ..storage import require_model_folder
from .model_attention import summarize_model

__all__ = [
    "BEYOND_TRAINED_LENGTH",
    "OK",
    "TRAINED_LENGTH_KEY",
    "TRAINED_LENGTH_UNKNOWN",
    "UNTRAINED_POSITIONS",
    "ExtrapolationResult",
    "LengthMeasurement",
    "extrapolate",
    "length_status",
    "plot_extrapolation",
    "preflight",
    "scaled_config",
    "snli_test_documents",
    "trained_length",
]

# Tokens per forward pass; the batch size of each length follows from it (and from ATTENTION_BUDGET_BYTES).
TOKENS_PER_BATCH = 8192

# Attention matrices one forward may hold: [batch, heads, T, T] float32, about three at once inside a layer (logits, mask
# or bias, probabilities); for the metrics, every layer's probabilities of the metric blocks.
ATTENTION_BUDGET_BYTES = 1 << 30
MATRICES_PER_LAYER = 3

# The config attribute in which hf_posenc pretraining records the length of its training blocks ([CLS] and [SEP]
# included). It is saved in config.json, so it travels with the model to the Hub.
TRAINED_LENGTH_KEY = "trained_max_length"

# Status of a measured length against the trained length. A length that was not run has a status "not run: <why>".
OK = "ok"  # within the trained length
UNTRAINED_POSITIONS = "untrained positions"  # beyond it, reading learned position rows no training block reached
BEYOND_TRAINED_LENGTH = "beyond trained length"  # beyond it, every row it reads was trained (or there are none)
TRAINED_LENGTH_UNKNOWN = "trained length unknown"  # measured, but nothing records what the model was trained on


@dataclass
class LengthMeasurement:
    """The model at one sequence length. `status` is one of `OK`, `UNTRAINED_POSITIONS`, `BEYOND_TRAINED_LENGTH`,
    `TRAINED_LENGTH_UNKNOWN` (measured), or "not run: <why>"."""

    length: int
    status: str = "ok"
    blocks: int = 0
    masked_tokens: int = 0
    loss: float | None = None
    perplexity: float | None = None
    locality: float | None = None
    symmetry: float | None = None
    symmetry_scale_aware: float | None = None
    metric_blocks: int = 0


@dataclass
class ExtrapolationResult(ResultFile):
    """Written by `hf-posenc extrapolate`: one `LengthMeasurement` per requested length. `trained_length` is the
        sequence length the model was trained on (None when unknown) and `trained_length_source` where it was read:
        "config.json trained_max_length", "posenc_results.json max_seq_length" or "unknown". `rope_scaling`: the
    context-extension scaling the model was measured under (None: as saved). `metric_blocks` of a length: how many blocks
    its locality and symmetry were measured on (fewer than asked when their attention would exceed the budget)."""

    FILE_NAME: ClassVar[str] = "extrapolation_results.json"

    model: str
    model_type: str
    text: str
    stream_tokens: int
    mlm_probability: float
    seed: int
    position_limit: int | None = None
    trained_length: int | None = None
    trained_length_source: str = "unknown"
    rope_scaling: dict[str, Any] | None = None
    lengths: list[dict[str, Any]] = field(default_factory=list)

    @property
    def measurements(self) -> list[LengthMeasurement]:
        return [LengthMeasurement(**values) for values in self.lengths]


def snli_test_documents() -> list[list[str]]:
    """Held-out English text that no built-in pretraining corpus contains: the SNLI test set, one document per
    premise (the premise, then its distinct hypotheses)."""
    from ..data import load_snli

    documents: dict[str, list[str]] = {}
    for pair in load_snli("test", keep_unlabelled=True):
        premise = pair["sentence1"].strip()
        document = documents.setdefault(premise, [premise])
        hypothesis = pair["sentence2"].strip()
        if hypothesis and hypothesis not in document:
            document.append(hypothesis)
    return list(documents.values())


def token_stream(documents: Sequence[Sequence[str]], tokenizer, max_tokens: int) -> np.ndarray:
    """The documents' token ids joined by [SEP], at most `max_tokens` of them."""
    pieces, total = [], 0
    for document in documents:
        lines = [line for line in document if line.strip()]
        if not lines:
            continue
        ids = [token for encoded in tokenizer(lines, add_special_tokens=False)["input_ids"] for token in encoded]
        pieces.append(np.asarray(ids + [tokenizer.sep_token_id], dtype=np.int64))
        total += len(ids) + 1
        if total >= max_tokens:
            break
    return np.concatenate(pieces)[:max_tokens] if pieces else np.zeros(0, dtype=np.int64)


def position_encoding(model):
    """The model's positional-encoding module (an hf_posenc encoding, also when its class was loaded from a folder's
    code with trust_remote_code), or None for a model that has none (stock BERT, RoBERTa, ...)."""
    for module in model.modules():
        if hasattr(type(module), "route") and hasattr(type(module), "extrapolates"):
            return module
    return None


def position_limit(model) -> int | None:
    """The longest sequence the model can encode, or None when its encoding extrapolates. The encoding module is
    asked, not its class: one setting can fix a table (attenuated's `learned_table` form)."""
    encoding = position_encoding(model)
    if encoding is not None and encoding.extrapolates:
        return None
    # hf_posenc's fixed tables, and stock encoders (BERT, RoBERTa, ...) whose learned table we cannot see past.
    return getattr(model.config, "max_position_embeddings", None)


def _checked_length(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 3:
        raise ValueError(
            f"{where} is {value!r}, not a sequence length (a whole number >= 3); fix or remove it to measure the model."
        )
    return value


def trained_length(folder: str | Path, config) -> tuple[int | None, str]:
    """The sequence length the model in `folder` (with `config`) was trained on, and where it was read:
    `config.trained_max_length` (written by hf_posenc pretraining; it travels with config.json to the Hub), else
    `max_seq_length` in the posenc_results.json next to the model (pretraining runs older than that attribute);
    `(None, "unknown")` when neither says, as for a foreign model: the length is not guessed (a stock BERT's
    max_position_embeddings says how long its table is, not how long its training blocks were)."""
    folder = Path(folder)
    value = getattr(config, TRAINED_LENGTH_KEY, None)
    if value is not None:
        source = f"config.json {TRAINED_LENGTH_KEY}"
        return _checked_length(value, f"{folder / 'config.json'} {TRAINED_LENGTH_KEY}"), source
    results = PretrainResult.path_in(folder)
    if results.is_file():
        try:
            values = json.loads(results.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{results} is not valid JSON ({error}); fix or remove it to measure the model.") from None
        value = values.get("max_seq_length") if isinstance(values, dict) else None
        if value is not None:
            return _checked_length(value, f"{results} max_seq_length"), "posenc_results.json max_seq_length"
    return None, "unknown"


def _table_rows(encoding, has_table: bool, length: int) -> set[int] | None:
    """The learned position rows a sequence of `length` tokens reads (`PositionalEncoding.table_rows`); a stock model
    with a fixed table (`has_table`) is taken to read absolute rows."""
    if encoding is not None:
        return encoding.table_rows(length)
    return set(range(length)) if has_table else None


def length_status(length: int, trained: int | None, encoding, has_table: bool = False) -> str:
    """The status of a measured `length` of a model whose positional-encoding module is `encoding` (None for a stock
    model), trained on `trained` tokens (None: unknown): `OK` within the trained length; beyond it,
    `UNTRAINED_POSITIONS` when the length reads learned position rows that the trained length never read, else
    `BEYOND_TRAINED_LENGTH`; `TRAINED_LENGTH_UNKNOWN` without a trained length. `has_table`: the model has a fixed
    position table."""
    if trained is None:
        return TRAINED_LENGTH_UNKNOWN
    if length <= trained:
        return OK
    rows = _table_rows(encoding, has_table, length)
    if rows is not None and rows - _table_rows(encoding, has_table, trained):
        return UNTRAINED_POSITIONS
    return BEYOND_TRAINED_LENGTH


def attention_matrix_bytes(config, length: int) -> int:
    """Bytes of one block's [heads, T, T] float32 attention matrix in one layer."""
    return getattr(config, "num_attention_heads", 12) * length * length * 4


def block_limits(config, length: int, metric_blocks: int) -> tuple[int, int]:
    """The blocks per loss forward and the blocks whose attention the metrics keep at `length`, within
    ATTENTION_BUDGET_BYTES (at least one of each)."""
    matrix = attention_matrix_bytes(config, length)
    loss_batch = max(1, min(TOKENS_PER_BATCH // length, ATTENTION_BUDGET_BYTES // (MATRICES_PER_LAYER * matrix)))
    layers = getattr(config, "num_hidden_layers", 12)
    metric_batch = max(1, min(metric_blocks, ATTENTION_BUDGET_BYTES // ((layers + MATRICES_PER_LAYER) * matrix)))
    return loss_batch, metric_batch


def minimum_bytes(config, length: int) -> int:
    """What one block of `length` needs at least: every layer's attention kept for the metrics, plus one layer's
    working matrices."""
    return (getattr(config, "num_hidden_layers", 12) + MATRICES_PER_LAYER) * attention_matrix_bytes(config, length)


def available_memory(device) -> int | None:
    """Free bytes on `device` (a GPU's free memory; the host's MemAvailable), or None when the system does not say."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(config, lengths: Sequence[int], device="cpu", name: str = "the model") -> None:
    """Refuse, before anything runs, the lengths of which a single block cannot fit in the memory free on `device`."""
    free = available_memory(device)
    if free is None:
        return
    too_long = [length for length in lengths if minimum_bytes(config, length) > free]
    if too_long:
        gib = minimum_bytes(config, too_long[0]) / 2**30
        fitting = [length for length in lengths if length not in too_long]
        raise ValueError(
            f"--lengths {' '.join(map(str, too_long))}: one block of {too_long[0]} tokens of {name} needs at least "
            f"{gib:.1f} GiB for its attention matrices ({getattr(config, 'num_hidden_layers', 12)} layers x "
            f"{getattr(config, 'num_attention_heads', 12)} heads x {too_long[0]}^2 x 4 bytes, plus a layer's working "
            f"copies), more than the {free / 2**30:.1f} GiB free on {torch.device(device).type}; drop "
            + ("them" if len(too_long) > 1 else "it")
            + (f" (the others, {' '.join(map(str, fitting))}, fit)" if fitting else "")
            + " or run on a machine with more memory."
        )


def _measure(model, stream, masked, length, tokenizer, metric_blocks, name: str = "") -> LengthMeasurement:
    body = length - 2
    blocks = len(stream) // body
    measurement = LengthMeasurement(length=length, blocks=blocks)
    if blocks == 0:
        measurement.status = f"not run: the text holds {len(stream)} tokens, fewer than one block of {length}"
        return measurement
    device = next(model.parameters()).device
    ids = torch.from_numpy(stream[: blocks * body].reshape(blocks, body))
    is_masked = torch.from_numpy(masked[: blocks * body].reshape(blocks, body))
    cls = torch.full((blocks, 1), tokenizer.cls_token_id)
    sep = torch.full((blocks, 1), tokenizer.sep_token_id)
    unlabelled = torch.full((blocks, 1), -100)
    inputs = torch.cat((cls, ids.masked_fill(is_masked, tokenizer.mask_token_id), sep), dim=1)
    labels = torch.cat((unlabelled, ids.masked_fill(~is_masked, -100), unlabelled), dim=1)
    total_loss, total_masked = 0.0, 0
    batch_size, measurement.metric_blocks = block_limits(model.config, length, min(metric_blocks, blocks))
    model.eval()
    # A long length can take minutes: a bar per length says what runs and how far it is (stderr, like Trainer's).
    progress = tqdm(range(0, blocks, batch_size), desc=f"{name} at {length} tokens".strip(), unit="batch", leave=False)
    with torch.no_grad():
        for start in progress:
            batch_labels = labels[start : start + batch_size].to(device)
            count = int((batch_labels != -100).sum())
            if count == 0:
                continue
            loss = model(input_ids=inputs[start : start + batch_size].to(device), labels=batch_labels).loss
            total_loss += float(loss) * count  # the loss is a mean over the batch's masked tokens
            total_masked += count
    measurement.masked_tokens = total_masked
    if total_masked:
        measurement.loss = total_loss / total_masked
        measurement.perplexity = perplexity(measurement.loss)
    summary = summarize_model(model, {"input_ids": inputs[: measurement.metric_blocks].to(device)})
    measurement.locality = summary["locality"]
    measurement.symmetry = summary["symmetry"]
    measurement.symmetry_scale_aware = summary["symmetry_scale_aware"]
    return measurement


def check_lengths(lengths: Sequence[int]) -> list[int]:
    if not lengths:
        raise ValueError("Give at least one sequence length, e.g. --lengths 128 256 512.")
    bad = [length for length in lengths if isinstance(length, bool) or not isinstance(length, int) or length < 3]
    if bad:
        raise ValueError(
            f"--lengths {' '.join(map(str, bad))}: a block needs at least 3 tokens ([CLS], one token, [SEP]); "
            "give lengths >= 3."
        )
    return sorted(set(lengths))


def scaled_config(folder: str | Path, rope_scaling: dict[str, Any], trust_remote_code: bool = False):
    """The config of the model in `folder` with `rope_scaling` as its `rope_context_scaling` (checked by the config
    class itself), `original_max_position_embeddings` defaulting to the trained length (else
    max_position_embeddings). ValueError for a model whose encoding has no such setting."""
    from transformers import AutoConfig

    folder = require_model_folder(folder)
    config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
    if not hasattr(config, "rope_context_scaling"):
        raise ValueError(
            f"--rope_scaling applies to rope models; {folder} is a {config.model_type} model, whose encoding has no "
            "rotary frequencies to scale. Leave it out of this command or drop --rope_scaling."
        )
    if not isinstance(rope_scaling, dict):
        raise ValueError(f'--rope_scaling must be a JSON object such as {{"rope_type": "yarn", "factor": 4}}; got '
                         f"{rope_scaling!r}.")  # fmt: skip
    scaling = dict(rope_scaling)
    if scaling.get("rope_type") != "linear":
        trained, _ = trained_length(folder, config)
        scaling.setdefault("original_max_position_embeddings", trained or config.max_position_embeddings)
    values = config.to_dict()
    values["rope_context_scaling"] = scaling
    return type(config).from_dict(values)


def preflight(
    model_dir: str | Path,
    lengths: Sequence[int],
    rope_scaling: dict[str, Any] | None = None,
    trust_remote_code: bool = False,
    device="cpu",
) -> None:
    """What `extrapolate` would refuse, checked without loading weights (the model is built on the meta device), so
    that a command over several models fails before measuring any of them: a bad scaling, a scaling for a model that
    has no rotary frequencies, a length whose single block cannot fit in the memory free on `device`."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    lengths = check_lengths(lengths)
    folder = require_model_folder(model_dir)
    if rope_scaling is not None:
        config = scaled_config(folder, rope_scaling, trust_remote_code)
    else:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        model = AutoModelForMaskedLM.from_config(config, trust_remote_code=trust_remote_code)
    limit = position_limit(model)
    check_memory(config, [length for length in lengths if limit is None or length <= limit], device, str(model_dir))


def extrapolate(
    model_dir: str | Path,
    lengths: Sequence[int],
    documents: Sequence[Sequence[str]] | None = None,
    *,
    text_name: str = "SNLI test set",
    max_tokens: int = 200_000,
    mlm_probability: float = 0.15,
    seed: int = 0,
    metric_blocks: int = 4,
    trust_remote_code: bool = False,
    rope_scaling: dict[str, Any] | None = None,
    save_to: str | Path | None = None,
) -> ExtrapolationResult:
    """Masked-LM loss, perplexity, locality and symmetry of the model in `model_dir` at each of `lengths`, on the
    same held-out tokens (`documents`, by default `snli_test_documents()`, capped at `max_tokens`). `rope_scaling`
    measures a rope model under that context-extension scaling (see `scaled_config`). With `save_to`, the result
    is saved in that folder after each length (the lengths measured so far)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    lengths = check_lengths(lengths)
    if not 0 < mlm_probability < 1:
        raise ValueError(f"mlm_probability must be between 0 and 1; got {mlm_probability}.")
    folder = require_model_folder(model_dir)
    load_options = {"trust_remote_code": trust_remote_code}
    if rope_scaling is not None:
        load_options["config"] = scaled_config(folder, rope_scaling, trust_remote_code)
    model = AutoModelForMaskedLM.from_pretrained(folder, **load_options)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    if tokenizer.mask_token_id is None or tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise ValueError(f"The tokenizer in {folder} has no [MASK], [CLS] or [SEP] token; give a BERT-style model.")
    limit = position_limit(model)
    runnable = [length for length in lengths if limit is None or length <= limit]
    check_memory(model.config, runnable, next(model.parameters()).device, name=str(model_dir))
    stream = token_stream(snli_test_documents() if documents is None else documents, tokenizer, max_tokens)
    if len(stream) < lengths[0] - 2:
        raise ValueError(
            f"The held-out text has {len(stream)} tokens, fewer than one block of the shortest length "
            f"{lengths[0]}; give more text or shorter lengths."
        )
    masked = np.random.default_rng(seed).random(len(stream)) < mlm_probability
    masked &= stream != tokenizer.sep_token_id  # document separators are structure, not text to predict

    trained, trained_source = trained_length(folder, model.config)
    result = ExtrapolationResult(
        model=str(model_dir),
        model_type=model.config.model_type,
        text=text_name,
        stream_tokens=len(stream),
        mlm_probability=mlm_probability,
        seed=seed,
        position_limit=limit,
        trained_length=trained,
        trained_length_source=trained_source,
        rope_scaling=getattr(model.config, "rope_context_scaling", None) if rope_scaling is not None else None,
    )
    for length in lengths:
        if limit is not None and length > limit:
            status = f"not run: {length} tokens exceed the {limit}-position table, which cannot extrapolate"
            measurement = LengthMeasurement(length=length, status=status)
        else:
            measurement = _measure(model, stream, masked, length, tokenizer, metric_blocks, Path(model_dir).name)
            if measurement.status == OK:  # measured (not "not run: the text is too short")
                measurement.status = length_status(length, trained, position_encoding(model), limit is not None)
        result.lengths.append(json_safe(asdict(measurement)))
        if save_to is not None:
            result.save(save_to)
    return result


# How a measured length is drawn, by status: (marker, filled).
_MARKERS = {
    OK: ("o", True),
    TRAINED_LENGTH_UNKNOWN: ("o", True),
    BEYOND_TRAINED_LENGTH: ("o", False),
    UNTRAINED_POSITIONS: ("X", False),
}
# Legend entries of the markers (a model whose trained length is unknown says so in its own entry).
_LEGEND = {
    OK: "within trained length",
    BEYOND_TRAINED_LENGTH: "beyond trained length",
    UNTRAINED_POSITIONS: "untrained positions",
}


def plot_extrapolation(results: Sequence[ExtrapolationResult], path: str | Path, names: Sequence[str] | None = None):
    """Masked-LM loss against sequence length, one colour per model (lengths that did not run are left out). Within
    the trained length the line is solid with filled circles; beyond it the line is dashed, with hollow circles
    ("beyond trained length") or crosses ("untrained positions"), and a dotted vertical line in the model's colour
    marks its trained length. A model whose trained length is unknown is drawn solid, "(trained length unknown)" in
    its legend entry."""
    from .plots import _new_figure, _save

    figure = _new_figure(6.0, 4.0)
    from matplotlib.lines import Line2D  # matplotlib is there: _new_figure checked

    axis = figure.add_subplot()
    statuses = set()
    for index, result in enumerate(results):
        points = [item for item in result.measurements if item.loss is not None]
        if not points:
            continue
        color = f"C{index % 10}"
        label = names[index] if names else Path(result.model).name
        if result.trained_length is None:
            label += " (trained length unknown)"
        within = [item for item in points if item.status in (OK, TRAINED_LENGTH_UNKNOWN)]
        beyond = [item for item in points if item.status not in (OK, TRAINED_LENGTH_UNKNOWN)]
        if within:
            axis.plot([item.length for item in within], [item.loss for item in within], color=color, label=label)
        if beyond:
            line = within[-1:] + beyond  # the dashed part starts at the last length within the trained length
            axis.plot(
                [item.length for item in line],
                [item.loss for item in line],
                color=color,
                linestyle="--",
                label=None if within else label,
            )
        if result.trained_length is not None:
            axis.axvline(result.trained_length, color=color, linestyle=":", linewidth=1, alpha=0.7)
        for status, (marker, filled) in _MARKERS.items():
            group = [item for item in points if item.status == status]
            if group:
                statuses.add(status)
                axis.plot(
                    [item.length for item in group],
                    [item.loss for item in group],
                    linestyle="none",
                    marker=marker,
                    color=color,
                    markerfacecolor=color if filled else "none",
                )
    axis.set_xscale("log", base=2)
    axis.set_xlabel("sequence length (tokens)")
    axis.set_ylabel("masked-LM loss")
    axis.set_title("Length extrapolation")
    axis.grid(True, alpha=0.3)
    handles, labels = axis.get_legend_handles_labels()
    if handles:
        for status, (marker, filled) in _MARKERS.items():
            if status in statuses and status in _LEGEND:
                face = "gray" if filled else "none"
                handles.append(Line2D([], [], color="gray", linestyle="none", marker=marker, markerfacecolor=face))
                labels.append(_LEGEND[status])
        if any(result.trained_length is not None for result in results):
            handles.append(Line2D([], [], color="gray", linestyle=":"))
            labels.append("trained length")
        axis.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # beside the lines
    return _save(figure, path)


def format_table(results: Sequence[ExtrapolationResult], names: Sequence[str] | None = None) -> str:
    """A Markdown table: one row per model and length, with the model's trained length ("unknown" when nothing
    records it) and the length's status. `names` label the results (default: their model folders' names)."""
    lines = [
        "| model | trained length | length | loss | perplexity | locality | symmetry | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for index, result in enumerate(results):
        name = names[index] if names else Path(result.model).name
        trained = "unknown" if result.trained_length is None else str(result.trained_length)
        for item in result.measurements:
            cells = [
                "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"
                for value in (item.loss, item.perplexity, item.locality, item.symmetry)
            ]
            lines.append(f"| {name} | {trained} | {item.length} | {' | '.join(cells)} | {item.status} |")
    return "\n".join(lines)
