"""Run a study: train many positional encodings at equal budget, measure their locality and symmetry, evaluate them
downstream, and report how the properties correlate with the scores (with bootstrap intervals).

    python examples/study.py my_study.yaml                  # run (or continue) the study
    python examples/study.py my_study.yaml --dry_run        # the plan and a time estimate
    python examples/study.py --preset cpu-small             # the built-in spec for two CPU cores (about an hour)
    CUDA_VISIBLE_DEVICES=3 python examples/study.py my_study.yaml   # one of several invocations sharing the folder

`hf-posenc study` takes the same options. From Python: `hf_posenc.study.run_study(hf_posenc.study.load_spec(path))`.
"""

import argparse

from hf_posenc.cli import add_study_arguments, exit_on_user_error, study_command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_study_arguments(parser)
    study_command(parser.parse_args())


if __name__ == "__main__":
    exit_on_user_error(main, "study.py")
