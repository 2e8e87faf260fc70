"""The fused CPU kernel behind hf_posenc.metrics: build it once, call it from many threads.

``attention_stats.c`` validates each attention matrix and computes the totals behind locality, both
symmetries and the distance profile in one read of every row. It is compiled with the system C compiler
(``$CC``, else ``cc``, ``gcc`` or ``clang``) the first time it is needed, into the hf_posenc cache
(``$HF_POSENC_CACHE/kernels``, keyed by the source and the platform), and loaded with ctypes: no PyTorch
headers and no build step at install time. The kernel splits the matrices among
``torch.get_num_threads()`` threads of its own.

``HF_POSENC_METRICS_KERNEL`` picks the path, read at every call:

* ``auto`` (default): the kernel for CPU tensors when it builds; otherwise the pure-PyTorch path, with one
  warning saying why.
* ``off``: always the pure-PyTorch path (GPU tensors always take it).
* ``require``: the kernel or a ``RuntimeError`` (for benchmarks and tests that must measure it).

Both paths give the same numbers (tests/test_metrics_kernel.py holds them to 1e-12 of each other, and
tests/test_metrics.py runs every metric test on both) and the same error messages: when the kernel finds an
invalid matrix, metrics.py re-runs the PyTorch validation to name the problem.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from .data import atomic_path, cache_dir

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("attention_stats.c")
MODES = ("auto", "off", "require")
# -fopenmp-simd honours the source's `omp simd` reductions without linking an OpenMP runtime (PyTorch ships
# its own). No -march=native: the source picks AVX2 at load time where the CPU has it, so a cache shared by
# different machines never holds an illegal instruction.
COMPILE_FLAGS = ("-O3", "-std=c11", "-fPIC", "-shared", "-pthread", "-fopenmp-simd", "-fno-math-errno")
# Per matrix: locality, reference and asymmetric totals, mirrored mass, then 2k+1 diagonal sums.
RESULT_FIXED = 4
WANT_LOCALITY, WANT_REFERENCE, WANT_SCALE_AWARE, WANT_DISTANCES = 1, 2, 4, 8
# Waking a sleeping worker costs about as much as measuring ten 128 x 128 matrices (70 us on a 2-core VM), so
# each thread gets at least this many elements (32 such matrices).
_ELEMENTS_PER_THREAD = 1 << 19


class KernelUnavailable(RuntimeError):
    """The kernel could not be built or loaded (no C compiler, a compile error, an unwritable cache)."""


def mode() -> str:
    value = os.environ.get("HF_POSENC_METRICS_KERNEL", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(
            f"HF_POSENC_METRICS_KERNEL={value!r} is not one of {', '.join(MODES)}; unset it for the default (auto)"
        )
    return value


def _compiler() -> str:
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate):
            return candidate
    raise KernelUnavailable("no C compiler found (set CC, or install gcc or clang)")


def _library_path(compiler: str, cache_folder: Path) -> Path:
    key = hashlib.sha256(
        SOURCE.read_bytes() + " ".join((compiler, *COMPILE_FLAGS, platform.platform())).encode()
    ).hexdigest()[:16]
    return cache_folder / "kernels" / f"attention_stats-{key}.so"


def _build(compiler: str, library: Path) -> None:
    # Written under a temporary name and renamed, so concurrent processes (one per GPU under accelerate) never
    # load a half-written library.
    with atomic_path(library) as temporary:
        result = subprocess.run(
            [compiler, *COMPILE_FLAGS, str(SOURCE), "-o", str(temporary), "-lm"], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise KernelUnavailable(f"{compiler} failed on {SOURCE.name}:\n{result.stderr.strip()}")


@lru_cache(maxsize=4)
def _load_cached(cache_folder: Path) -> ctypes.CDLL:
    compiler = _compiler()
    library = _library_path(compiler, cache_folder)
    if not library.exists():
        try:
            _build(compiler, library)
        except OSError as error:
            raise KernelUnavailable(f"could not build {library}: {error}") from None
    loaded = ctypes.CDLL(str(library))
    loaded.posenc_attention_stats.argtypes = [
        ctypes.c_void_p,  # matrices
        ctypes.c_int,  # is_float32
        ctypes.c_int64,  # count
        ctypes.c_int64,  # size
        ctypes.c_void_p,  # lengths or NULL
        ctypes.c_int,  # flags
        ctypes.c_int64,  # max_distance
        ctypes.c_double,  # row_sum_tolerance
        ctypes.c_double,  # symmetry_tolerance
        ctypes.c_double,  # constant_range
        ctypes.c_void_p,  # results
        ctypes.c_int,  # threads
    ]
    loaded.posenc_attention_stats.restype = ctypes.c_int64
    return loaded


_warned: set[str] = set()


def load() -> ctypes.CDLL | None:
    """The loaded kernel, or None when the mode is ``off`` or (in ``auto``) it cannot be built."""
    current = mode()
    if current == "off":
        return None
    try:
        # Keyed by the cache folder, so pointing HF_POSENC_CACHE elsewhere builds there.
        return _load_cached(cache_dir())
    except KernelUnavailable as error:
        if current == "require":
            raise KernelUnavailable(f"HF_POSENC_METRICS_KERNEL=require, but {error}") from None
        if str(error) not in _warned:
            _warned.add(str(error))
            logger.warning("hf_posenc.metrics uses its pure-PyTorch path (slower on CPU): %s", error)
        return None


def attention_totals(
    kernel: ctypes.CDLL,
    matrices: Tensor,
    lengths: Tensor | None,
    flags: int,
    max_distance: int,
    row_sum_tolerance: float,
    symmetry_tolerance: float,
    constant_range: float,
) -> tuple[Tensor, int | None]:
    """Run the kernel on CPU ``[N, T, T]`` float32/float64 matrices (other dtypes are widened to float32).

    Returns the float64 totals ``[N, RESULT_FIXED + 2 * max_distance + 1]`` and the index of the first
    invalid matrix (None when all are valid)."""
    if matrices.dtype not in (torch.float32, torch.float64):
        matrices = matrices.to(torch.float32)
    matrices = matrices.contiguous()
    count, size, _ = matrices.shape
    if lengths is not None:
        lengths = lengths.to(device="cpu", dtype=torch.int64).contiguous()
    results = torch.empty(count, RESULT_FIXED + 2 * max_distance + 1, dtype=torch.float64)
    threads = max(1, min(torch.get_num_threads(), matrices.numel() // _ELEMENTS_PER_THREAD))
    status = kernel.posenc_attention_stats(
        matrices.data_ptr(),
        int(matrices.dtype == torch.float32),
        count,
        size,
        None if lengths is None else lengths.data_ptr(),
        flags,
        max_distance,
        row_sum_tolerance,
        symmetry_tolerance,
        constant_range,
        results.data_ptr(),
        threads,
    )
    if status == -2:
        raise MemoryError("hf_posenc.metrics kernel: out of memory for its buffers")
    return results, (None if status == -1 else int(status))
