"""The base of the callbacks that log through `trainer.log`."""

from __future__ import annotations

from transformers import TrainerCallback


class TrainerLoggingCallback(TrainerCallback):
    """A callback that logs through `trainer.log`, so its values land in `log_history` and in every reporter
    (TensorBoard, ...): changing `logs` in `on_log` would not reach the reporters, which run before user callbacks.
    It therefore needs its trainer: add it with `install(trainer, ...)`, and call `require_trainer` on train begin."""

    trainer = None
    install_arguments = "..."  # what `install` takes besides the trainer, for the error message

    @classmethod
    def install(cls, trainer, **options):
        callback = cls(**options)
        callback.trainer = trainer
        trainer.add_callback(callback)
        return callback

    def require_trainer(self) -> None:
        if self.trainer is None:
            name = type(self).__name__
            raise RuntimeError(
                f"{name} was added without its trainer, so it cannot log; add it with "
                f"{name}.install(trainer, {self.install_arguments}) instead of trainer.add_callback."
            )
