"""`python -m hf_posenc ...` is the `hf-posenc` command; on several GPUs without a clone of the repository:
``accelerate launch -m hf_posenc pretrain --variant alibi ...``."""

import sys

from .cli import main

sys.exit(main())
