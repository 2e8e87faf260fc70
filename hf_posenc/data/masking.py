"""Masking collators for MLM training whose masks do not depend on the global random state."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

import numpy as np
from transformers import DataCollatorForLanguageModeling, TrainerCallback

__all__ = ["EpochMaskingCollator", "MaskingEpochCallback", "StaticMaskingCollator"]


class StaticMaskingCollator(DataCollatorForLanguageModeling):
    """`DataCollatorForLanguageModeling` whose masks are a fixed function of each batch's tokens and `mask_seed`
    (static masking, as in the original BERT) instead of draws from the global RNG.

    Why: Trainer restores the global RNG when it resumes from a checkpoint, but accelerate's data loader has
    already collated the next batch when the checkpoint is written, so with global-RNG masking a resumed run
    masks that batch differently from an uninterrupted run. With static masks a resumed run is identical.
    The price: a block seen in several epochs gets the same mask each time."""

    def __init__(self, *args, mask_seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.mask_seed = mask_seed

    def torch_mask_tokens(self, inputs, special_tokens_mask=None, offset_mapping=None):
        import torch

        digest = hashlib.blake2b(inputs.numpy().tobytes(), digest_size=8, key=str(self.mask_seed).encode()).digest()
        self.generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))
        return super().torch_mask_tokens(inputs, special_tokens_mask=special_tokens_mask, offset_mapping=offset_mapping)


_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's output function: a bijective mix of 64-bit integers into well-spread 64-bit integers."""
    with np.errstate(over="ignore"):
        values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return values ^ (values >> np.uint64(31))


def _uniform(row_keys: np.ndarray, width: int, draw: int) -> np.ndarray:
    """[rows, width] uniforms in [0, 1), a fixed function of each row's key, position and draw number."""
    counters = (np.arange(width, dtype=np.uint64) * np.uint64(3) + np.uint64(draw + 1)) * _GOLDEN_GAMMA
    with np.errstate(over="ignore"):
        mixed = _splitmix64(row_keys[:, None] + counters[None, :])
    return (mixed >> np.uint64(11)).astype(np.float64) * 2.0**-53


class EpochMaskingCollator(DataCollatorForLanguageModeling):
    """MLM masking (BERT's: ``mlm_probability`` of the tokens, of which 80% become ``[MASK]``, 10% a random token,
    10% stay) whose mask of each sequence is a fixed function of ``(mask_seed, epoch, the sequence's tokens)``.

    - Masks differ between epochs: the epoch enters the function. Tell the collator the epoch with the callback from
      :meth:`epoch_callback` (``Trainer(..., data_collator=collator, callbacks=[collator.epoch_callback()])``);
      it reads the epoch from the Trainer's state, so a resumed run masks every batch as the uninterrupted run did,
      even the batch that the data loader had already collated when the checkpoint was written.
    - Masks do not depend on the batch a sequence lands in, on the global random state or on the data loader worker.
    - Evaluation always uses the same masks (the callback switches to them while the Trainer evaluates, and after
      training), so validation losses of different epochs and runs compare.
    - ``[CLS]``, ``[SEP]`` and padding are never masked (nor whatever a ``special_tokens_mask`` column marks), so
      datasets need only an ``input_ids`` column (the prepared datasets of :mod:`hf_posenc.data.prepare`).

    Two identical sequences get the same mask in the same epoch; with packed blocks of real text that is rare and
    harmless.

    Batches for the model's fast path: an attention mask with no padding is left out (the model treats a missing
    mask as all ones; finding that out itself would cost it a host-device synchronisation per step on a GPU), and a
    ``document_ids`` column (document-aware packing) is passed on as a [B, T] tensor, padding marked -1.
    """

    def __init__(self, *args, mask_seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.mlm or self.whole_word_mask:
            raise ValueError(
                "EpochMaskingCollator masks single tokens for MLM; mlm=False and whole_word_mask=True "
                "are not supported (use DataCollatorForLanguageModeling for those)."
            )
        self.mask_seed = mask_seed
        self.epoch: int | None = None  # None: the evaluation masks
        self._never_masked = [
            token
            for token in (self.tokenizer.cls_token_id, self.tokenizer.sep_token_id, self.tokenizer.pad_token_id)
            if token is not None
        ]

    def torch_call(self, examples):
        document_ids = None
        if examples and isinstance(examples[0], Mapping) and "document_ids" in examples[0]:
            examples = [dict(example) for example in examples]
            document_ids = [example.pop("document_ids") for example in examples]
        batch = super().torch_call(examples)
        if document_ids is not None:
            import torch

            width = batch["input_ids"].shape[1]
            batch["document_ids"] = torch.full((len(document_ids), width), -1, dtype=torch.long)
            for row, owners in enumerate(document_ids):
                batch["document_ids"][row, : len(owners)] = torch.as_tensor(owners, dtype=torch.long)
        attention_mask = batch.get("attention_mask")
        if attention_mask is not None and bool(attention_mask.all()):
            del batch["attention_mask"]
        return batch

    def set_epoch(self, epoch: int | None) -> None:
        """Mask with the masks of training epoch ``epoch`` (0, 1, ...), or with the evaluation masks (None)."""
        self.epoch = None if epoch is None else int(epoch)

    def epoch_callback(self) -> MaskingEpochCallback:
        """The TrainerCallback that keeps this collator's epoch in step with the Trainer."""
        return MaskingEpochCallback(self)

    def _row_keys(self, inputs) -> np.ndarray:
        import torch

        stream = f"{self.mask_seed}/{'eval' if self.epoch is None else self.epoch}".encode()
        rows = inputs.to(dtype=torch.long).numpy()
        return np.array(
            [
                int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8, key=stream).digest(), "little")
                for row in rows
            ],
            dtype=np.uint64,
        ).reshape(len(rows))

    def torch_mask_tokens(self, inputs, special_tokens_mask=None, offset_mapping=None):
        import torch

        keys = self._row_keys(inputs)
        width = inputs.shape[1]
        no_mask = torch.isin(inputs, torch.tensor(self._never_masked, dtype=inputs.dtype))
        if special_tokens_mask is not None:
            no_mask |= torch.as_tensor(special_tokens_mask, dtype=torch.bool)
        masked = torch.from_numpy(_uniform(keys, width, 0) < self.mlm_probability) & ~no_mask
        labels = inputs.clone()
        labels[~masked] = -100
        choice = torch.from_numpy(_uniform(keys, width, 1))
        replaced = masked & (choice < self.mask_replace_prob)
        randomised = masked & ~replaced & (choice < self.mask_replace_prob + self.random_replace_prob)
        inputs[replaced] = self.tokenizer.convert_tokens_to_ids(self.tokenizer.mask_token)
        random_words = (_uniform(keys, width, 2) * len(self.tokenizer)).astype(np.int64)
        inputs[randomised] = torch.from_numpy(random_words).to(inputs.dtype)[randomised]
        return inputs, labels


class MaskingEpochCallback(TrainerCallback):
    """Keeps an :class:`EpochMaskingCollator` on the Trainer's epoch, and on the evaluation masks while it evaluates.

    The epoch comes from ``state.epoch`` (restored from the checkpoint on resume; exactly an integer at an epoch's
    start), so it is the same in a resumed and an uninterrupted run."""

    def __init__(self, collator: EpochMaskingCollator):
        self.collator = collator
        self.training = False
        self.epoch = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if args.dataloader_num_workers > 0 and args.dataloader_persistent_workers:
            raise ValueError(
                "Epoch-varying masks need fresh data loader workers each epoch (they copy the collator when they "
                "start); set dataloader_persistent_workers=False, or dataloader_num_workers=0."
            )
        self.training = True

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.epoch = math.floor(state.epoch or 0)
        self.collator.set_epoch(self.epoch)

    def _before_evaluation(self, control):
        if control.should_evaluate:
            self.collator.set_epoch(None)

    def on_step_end(self, args, state, control, **kwargs):
        self._before_evaluation(control)

    def on_epoch_end(self, args, state, control, **kwargs):
        self._before_evaluation(control)

    def on_evaluate(self, args, state, control, **kwargs):
        if self.training:
            self.collator.set_epoch(self.epoch)

    def on_train_end(self, args, state, control, **kwargs):
        self.training = False
        self.collator.set_epoch(None)
