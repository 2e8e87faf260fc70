"""Moved to `hf_posenc.analysis.kernel`; kept so `from hf_posenc import metrics_kernel` works."""

from .analysis.kernel import *  # noqa: F401,F403
