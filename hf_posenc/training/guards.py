"""Guards that stop a pretraining run with one clear line, keeping what it saved, instead of a traceback later.

- `DivergenceGuard`: a `TrainerCallback` that stops the run when its training loss is logged as NaN or inf, or when
  its weights are no longer finite at a step that logs, evaluates or saves (checked before the save, so a diverged
  model is never written as a checkpoint). The message names the step, what to change and the last checkpoint whose
  weights are finite. Install it with ``DivergenceGuard.install(trainer)`` before the locality/symmetry callback,
  whose measurement of a diverged model would otherwise fail first.
- `CheckpointSpaceGuard`: a `transformers.Trainer` mixin. When a checkpoint save runs out of disk space, the
  half-written ``checkpoint-N`` folder is removed (a resumed run would otherwise pick it as the latest checkpoint and
  fail to load it) and the run stops with the folder, the space a checkpoint takes and the space free.
"""

from __future__ import annotations

import errno
import math
import re
import shutil
from pathlib import Path

import torch
from transformers import TrainerCallback

__all__ = [
    "CheckpointSpaceGuard",
    "DivergenceGuard",
    "OutOfDiskSpace",
    "TrainingDiverged",
    "last_finite_checkpoint",
]

_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
# What a full disk says when it reaches Python as another error: safetensors' Rust writer and torch.save's
# stream writer wrap the OSError of the failed write in their own messages.
_OUT_OF_SPACE_WORDS = ("No space left on device", "Disk quota exceeded", "StorageFull")


class TrainingDiverged(RuntimeError):
    """The training loss or the weights became NaN or inf."""


class OutOfDiskSpace(RuntimeError):
    """A checkpoint could not be saved for want of disk space."""


def _checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """The ``checkpoint-N`` folders of a run, latest step first."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        match = _CHECKPOINT.fullmatch(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return sorted(found, reverse=True)


def _weights_are_finite(checkpoint: Path) -> bool:
    """Every tensor of the checkpoint's safetensors files is finite (read one tensor at a time); False when it holds
    no such file or one cannot be read."""
    from safetensors import safe_open

    files = sorted(checkpoint.glob("*.safetensors"))
    if not files:
        return False
    try:
        for file in files:
            with safe_open(str(file), framework="pt") as weights:
                for name in weights.keys():  # noqa: SIM118 (safe_open has keys(), not iteration)
                    tensor = weights.get_tensor(name)
                    if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
                        return False
    except Exception:  # a damaged file (any of safetensors' errors) is no checkpoint to resume from
        return False
    return True


def last_finite_checkpoint(output_dir: str | Path, before_step: int) -> Path | None:
    """The latest ``checkpoint-N`` of ``output_dir`` with ``N < before_step`` whose weights are all finite."""
    for step, checkpoint in _checkpoints(output_dir):
        if step < before_step and _weights_are_finite(checkpoint):
            return checkpoint
    return None


def _model_is_finite(model) -> bool:
    flags = [parameter.detach().isfinite().all() for parameter in model.parameters() if parameter.is_floating_point()]
    return bool(torch.stack(flags).all()) if flags else True  # one host-device synchronisation


class DivergenceGuard(TrainerCallback):
    """Stop a run whose loss or weights went NaN or inf; see the module docstring. Raises `TrainingDiverged`."""

    @classmethod
    def install(cls, trainer) -> DivergenceGuard:
        # Trainer's logging_nan_inf_filter logs a NaN step's loss as the mean of the steps before it (or 0 right
        # after a log): the divergence this guard looks for would never reach the logs.
        trainer.args.logging_nan_inf_filter = False
        guard = cls()
        trainer.add_callback(guard)
        return guard

    def on_step_end(self, args, state, control, model=None, **kwargs):
        # Trainer's own flow callback has already decided whether this step logs, evaluates or saves; the weights
        # are checked only then (not every step, to spare the synchronisation), and always at the last step.
        watched = control.should_log or control.should_save or control.should_evaluate
        if model is not None and (watched or state.global_step >= state.max_steps) and not _model_is_finite(model):
            self.stop(args, state.global_step, "the weights hold NaN or inf")

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if isinstance(loss, (int, float)) and not math.isfinite(loss):
            self.stop(args, state.global_step, f"loss {loss}")

    @staticmethod
    def stop(args, step: int, what: str) -> None:
        checkpoint = last_finite_checkpoint(args.output_dir, before_step=step + 1)
        kept = (
            f"the last good checkpoint is {checkpoint} (continue from it with --resume_from_checkpoint {checkpoint})"
            if checkpoint is not None
            else "no checkpoint with finite weights was saved before it"
        )
        raise TrainingDiverged(
            f"training diverged at step {step}: {what}; lower --learning_rate (now {args.learning_rate:g}), warm up "
            f"longer (--warmup_ratio) or clip gradients harder (--max_grad_norm, now {args.max_grad_norm:g}); {kept}."
        )


def _is_out_of_space(error: BaseException) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(words in str(error) for words in _OUT_OF_SPACE_WORDS):
            return True
        error = error.__cause__ or error.__context__
    return False


def _folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


class CheckpointSpaceGuard:
    """A `transformers.Trainer` mixin (list it before Trainer) whose checkpoint saves clean up after a full disk; see
    the module docstring. Raises `OutOfDiskSpace`."""

    def _save_checkpoint(self, model, trial):
        run_dir = Path(self._get_output_dir(trial=trial))
        folder = run_dir / f"checkpoint-{self.state.global_step}"
        existed = folder.exists()
        earlier = [checkpoint for _, checkpoint in _checkpoints(run_dir) if checkpoint != folder]
        try:
            return super()._save_checkpoint(model, trial)
        except Exception as error:
            if not _is_out_of_space(error):
                raise
            if not existed:
                shutil.rmtree(folder, ignore_errors=True)
            free = shutil.disk_usage(run_dir).free
            needed = _folder_size(earlier[0]) if earlier else self._checkpoint_estimate()
            resume = (
                f"continue from {earlier[0]} with --resume_from_checkpoint {earlier[0]}"
                if earlier
                else "then run again"
            )
            removed = "it held files before this save, so it was left as it is" if existed else "removed it"
            raise OutOfDiskSpace(
                f"the disk is full: saving {folder} failed half-way ({removed}); a checkpoint takes about "
                f"{_megabytes(needed)} and {_megabytes(free)} is free under {run_dir}. Free some space or keep fewer "
                f"checkpoints (--save_total_limit), and {resume}."
            ) from error

    def _checkpoint_estimate(self) -> int:
        """The bytes of the weights plus the optimizer's state: what a checkpoint mostly holds."""
        tensors = list(self.model.parameters())
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None:
            for state in optimizer.state.values():
                tensors.extend(value for value in state.values() if isinstance(value, torch.Tensor))
        return sum(tensor.numel() * tensor.element_size() for tensor in tensors)
