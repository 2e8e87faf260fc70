"""Length extrapolation: masked-LM loss and attention of a trained model at sequence lengths it was not trained on.

One held-out token stream (documents joined by [SEP]) is cut into [CLS] ... [SEP] blocks of each length. Which tokens
are masked is decided once per token of the stream, not per block, so every length predicts the same tokens (except
the tail that a length cannot fill). Masked tokens are all replaced by [MASK]: a measurement, not training, needs no
80/10/10. The loss is the mean cross-entropy over all masked tokens of a length; locality and symmetry are measured on
the first blocks of each length. Encodings with a fixed position table (`learned`, `tupe`, and stock BERT models) are
reported as not run beyond their table instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..results import ResultFile, json_safe, perplexity
from ..storage import require_model_folder
from .model_attention import summarize_model

__all__ = ["ExtrapolationResult", "LengthMeasurement", "extrapolate", "plot_extrapolation", "snli_test_documents"]

# Tokens per forward pass; the batch size of each length follows from it.
TOKENS_PER_BATCH = 8192


@dataclass
class LengthMeasurement:
    """The model at one sequence length. `status` is "ok" or says why the length was not run."""

    length: int
    status: str = "ok"
    blocks: int = 0
    masked_tokens: int = 0
    loss: float | None = None
    perplexity: float | None = None
    locality: float | None = None
    symmetry: float | None = None
    symmetry_scale_aware: float | None = None


@dataclass
class ExtrapolationResult(ResultFile):
    """Written by `hf-posenc extrapolate`: one `LengthMeasurement` per requested length."""

    FILE_NAME: ClassVar[str] = "extrapolation_results.json"

    model: str
    model_type: str
    text: str
    stream_tokens: int
    mlm_probability: float
    seed: int
    position_limit: int | None = None
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


def position_limit(model) -> int | None:
    """The longest sequence the model can encode, or None when its encoding extrapolates."""
    from ..positional import ENCODINGS

    variant = getattr(model.config, "variant", None)
    if variant in ENCODINGS and ENCODINGS[variant].extrapolates:
        return None
    # hf_posenc's fixed tables, and stock encoders (BERT, RoBERTa, ...) whose learned table we cannot see past.
    return getattr(model.config, "max_position_embeddings", None)


def _measure(model, stream, masked, length, tokenizer, metric_blocks) -> LengthMeasurement:
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
    batch_size = max(1, TOKENS_PER_BATCH // length)
    model.eval()
    with torch.no_grad():
        for start in range(0, blocks, batch_size):
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
    summary = summarize_model(model, {"input_ids": inputs[:metric_blocks].to(device)})
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
) -> ExtrapolationResult:
    """Masked-LM loss, perplexity, locality and symmetry of the model in `model_dir` at each of `lengths`, on the
    same held-out tokens (`documents`, by default `snli_test_documents()`, capped at `max_tokens`)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    lengths = check_lengths(lengths)
    if not 0 < mlm_probability < 1:
        raise ValueError(f"mlm_probability must be between 0 and 1; got {mlm_probability}.")
    folder = require_model_folder(model_dir)
    model = AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    if tokenizer.mask_token_id is None or tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise ValueError(f"The tokenizer in {folder} has no [MASK], [CLS] or [SEP] token; give a BERT-style model.")
    stream = token_stream(snli_test_documents() if documents is None else documents, tokenizer, max_tokens)
    if len(stream) < lengths[0] - 2:
        raise ValueError(
            f"The held-out text has {len(stream)} tokens, fewer than one block of the shortest length "
            f"{lengths[0]}; give more text or shorter lengths."
        )
    masked = np.random.default_rng(seed).random(len(stream)) < mlm_probability
    masked &= stream != tokenizer.sep_token_id  # document separators are structure, not text to predict

    limit = position_limit(model)
    measurements = []
    for length in lengths:
        if limit is not None and length > limit:
            status = f"not run: {length} tokens exceed the {limit}-position table, which cannot extrapolate"
            measurements.append(LengthMeasurement(length=length, status=status))
        else:
            measurements.append(_measure(model, stream, masked, length, tokenizer, metric_blocks))
    return ExtrapolationResult(
        model=str(model_dir),
        model_type=model.config.model_type,
        text=text_name,
        stream_tokens=len(stream),
        mlm_probability=mlm_probability,
        seed=seed,
        position_limit=limit,
        lengths=[json_safe(asdict(measurement)) for measurement in measurements],
    )


def plot_extrapolation(results: Sequence[ExtrapolationResult], path: str | Path, names: Sequence[str] | None = None):
    """Masked-LM loss against sequence length, one line per model (lengths that did not run are left out)."""
    from .plots import _new_figure, _save

    figure = _new_figure(6.0, 4.0)
    axis = figure.add_subplot()
    for index, result in enumerate(results):
        points = [(item.length, item.loss) for item in result.measurements if item.loss is not None]
        if points:
            label = names[index] if names else Path(result.model).name
            axis.plot(*zip(*points), marker="o", label=label)
    axis.set_xscale("log", base=2)
    axis.set_xlabel("sequence length (tokens)")
    axis.set_ylabel("masked-LM loss")
    axis.set_title("Length extrapolation")
    axis.grid(True, alpha=0.3)
    if any(item.loss is not None for result in results for item in result.measurements):
        axis.legend(fontsize=8)
    return _save(figure, path)


def format_table(results: Sequence[ExtrapolationResult]) -> str:
    lines = ["| model | length | loss | perplexity | locality | symmetry | status |", "|---|---|---|---|---|---|---|"]
    for result in results:
        for item in result.measurements:
            cells = [
                "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"
                for value in (item.loss, item.perplexity, item.locality, item.symmetry)
            ]
            lines.append(f"| {Path(result.model).name} | {item.length} | {' | '.join(cells)} | {item.status} |")
    return "\n".join(lines)
