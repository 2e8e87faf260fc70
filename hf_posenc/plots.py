"""Moved to `hf_posenc.analysis.plots`; kept so `from hf_posenc import plots` works."""

from .analysis.plots import *  # noqa: F401,F403
