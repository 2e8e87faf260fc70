"""Fine-tune and score an encoder on downstream tasks: the built-in offline tasks (snli, sentiment, pos,
bigram_shift, tree_depth) and GLUE (from the Hub, or from your own files with --train_file/--validation_file).

Runs every (task, learning rate, seed) cell with transformers' Trainer, keeps the learning rate with the best mean
development score, reports the mean and standard deviation over the seeds on the task's report split, prints a
table and writes finetune_results.json (a restarted run skips the cells already done).

    python examples/finetune.py outputs/demo-attenuated --task sentiment --task pos --learning_rates 1e-4 3e-4 --seeds 1 2 3

`hf-posenc finetune MODEL ...` takes the same options. From Python: `hf_posenc.training.runner.finetune_tasks(...)`.
"""

import argparse

from hf_posenc.cli import add_finetune_arguments, exit_on_user_error, finetune_command, parse_with_trainer_flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_finetune_arguments(parser)
    finetune_command(parse_with_trainer_flags(parser))


if __name__ == "__main__":
    exit_on_user_error(main, "finetune.py")
