"""Moved to `hf_posenc.analysis.callback`; kept so `from hf_posenc.callbacks import LocalitySymmetryCallback` works."""

from .analysis.callback import *  # noqa: F401,F403
