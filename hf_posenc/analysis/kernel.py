"""The fused CPU kernel behind hf_posenc.analysis.metrics: build it once, check it, call it from many threads.

``attention_stats.c`` validates each attention matrix and computes the totals behind locality, both
symmetries and the distance profile in one read of every row. It is compiled with the system C compiler
(``$CC``, else ``cc``, ``gcc`` or ``clang``) the first time it is needed and loaded with ctypes: no PyTorch
headers and no build step at install time. The kernel splits the matrices among ``torch.get_num_threads()``
threads of its own.

Loading a shared library runs its code, so the cache is treated as a trust boundary:

* the libraries live in ``$HF_POSENC_CACHE/kernels``, created private (0700) whatever the umask; a folder that
  another user owns or can write to is refused (the PyTorch path is used, with one warning that says how to fix
  the folder);
* each build is recorded in ``attention_stats-<key>.sha256`` (``sha256sum`` format: the digest and the library's
  file name), where ``<key>`` hashes the source, compiler, flags and platform. The library is named after its
  digest and written before its record, both atomically, so concurrent builders (one process per GPU under
  accelerate) never leave a record that names a different file;
* before ctypes loads a library, the library and its record must belong to the current user, be writable by no
  one else, and the library's sha256 must equal the recorded one. Otherwise the library is not loaded: it is
  rebuilt. A library that passes the checks but does not load is rebuilt once; if that fails too, the metrics
  take the PyTorch path with one warning (``require`` raises instead).

``HF_POSENC_METRICS_KERNEL`` picks the path, read at every call:

* ``auto`` (default): the kernel for CPU tensors when it builds; otherwise the pure-PyTorch path, with one
  warning saying why.
* ``off``: always the pure-PyTorch path (GPU tensors always take it).
* ``require``: the kernel or a ``RuntimeError`` (for benchmarks and tests that must measure it).

Both paths give the same numbers (tests/analysis/test_metrics_kernel.py holds them to 1e-12 of each other, and
tests/analysis/test_locality_symmetry.py runs every metric test on both) and the same error messages: when the
kernel finds an invalid matrix, metrics.py re-runs the PyTorch validation to name the problem.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch
from torch import Tensor

from ..storage import atomic_path, cache_dir, check_private, private_folder

__all__ = [
    "MODES",
    "RESULT_FIXED",
    "SOURCE",
    "WANT_DISTANCES",
    "WANT_LOCALITY",
    "WANT_REFERENCE",
    "WANT_SCALE_AWARE",
    "KernelUnavailable",
    "attention_totals",
    "forget_loaded",
    "kernel_folder",
    "load",
    "mode",
]

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
    """The kernel could not be built or loaded (no C compiler, a compile error, a cache folder that is not private
    or not writable, a library that does not load)."""


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


def kernel_folder(cache_folder: Path) -> Path:
    """``<cache_folder>/kernels``, created private; KernelUnavailable (saying how to fix it) when it is not."""
    try:
        return private_folder(Path(cache_folder) / "kernels")
    except PermissionError as error:
        raise KernelUnavailable(f"the kernel cache is not private: {error}") from None
    except OSError as error:
        raise KernelUnavailable(
            f"could not create the kernel cache {Path(cache_folder) / 'kernels'}: {error}"
        ) from None


def _build_key(compiler: str) -> str:
    """What the library is built from: the source, the compiler, its flags and the platform."""
    recipe = SOURCE.read_bytes() + " ".join((compiler, *COMPILE_FLAGS, platform.platform())).encode()
    return hashlib.sha256(recipe).hexdigest()[:16]


def _record_path(folder: Path, key: str) -> Path:
    return folder / f"attention_stats-{key}.sha256"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _recorded_library(folder: Path, key: str) -> tuple[Path | None, str | None]:
    """The library the record names, if it and its record pass every check; else (None, why not) -- (None, None)
    when nothing was built yet."""
    record = _record_path(folder, key)
    if not record.exists() and not record.is_symlink():
        return None, None
    try:
        check_private(record)
        digest, name = record.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError, ValueError) as error:  # PermissionError is an OSError
        return None, f"its build record {record.name} is unusable ({error})"
    library = folder / name
    if Path(name).name != name or not name.endswith(".so"):
        return None, f"its build record {record.name} names {name!r}, not a library in {folder}"
    try:
        check_private(library)
        found = _sha256(library)
    except OSError as error:
        return None, f"{library.name} is unusable ({error})"
    if found != digest:
        return (
            None,
            f"{library.name} is not the library that was built (sha256 {found[:16]}..., recorded {digest[:16]}...)",
        )
    return library, None


def _build(compiler: str, folder: Path, key: str) -> Path:
    """Compile the source into a library named after its digest, then write the record. Both are renamed into
    place when complete, the library first, so a concurrent process sees either no record or a record whose
    library is whole (two builders that race write the same names, or records naming whole libraries)."""
    descriptor, temporary_name = tempfile.mkstemp(dir=folder, prefix=f".attention_stats-{key}.", suffix=".so.tmp")
    os.close(descriptor)
    temporary = Path(temporary_name)
    try:
        result = subprocess.run(
            [compiler, *COMPILE_FLAGS, str(SOURCE), "-o", str(temporary), "-lm"], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise KernelUnavailable(f"{compiler} failed on {SOURCE.name}:\n{result.stderr.strip()}")
        digest = _sha256(temporary)
        library = folder / f"attention_stats-{key}-{digest[:16]}.so"
        os.chmod(temporary, 0o700)
        os.replace(temporary, library)
    finally:
        temporary.unlink(missing_ok=True)
    with atomic_path(_record_path(folder, key), mode=0o600) as record:
        record.write_text(f"{digest}  {library.name}\n", encoding="ascii")
    return library


def _bind(library: Path) -> ctypes.CDLL:
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


def _load_checked(cache_folder: Path) -> ctypes.CDLL:
    """Load the recorded library after checking it, or build it; rebuild once when a checked library fails to
    load. Raises KernelUnavailable."""
    folder = kernel_folder(cache_folder)
    compiler = _compiler()
    key = _build_key(compiler)
    library, problem = _recorded_library(folder, key)
    if library is not None:
        try:
            return _bind(library)
        except (OSError, AttributeError) as error:  # not a shared library, or not this one (no symbol)
            problem = f"{library.name} does not load ({error})"
            library.unlink(missing_ok=True)
    try:
        library = _build(compiler, folder, key)
    except OSError as error:
        raise KernelUnavailable(f"could not build the kernel in {folder}: {error}") from None
    try:
        loaded = _bind(library)
    except (OSError, AttributeError) as error:
        raise KernelUnavailable(f"the freshly built {library} does not load ({error})") from None
    if problem is not None:
        logger.warning("hf_posenc rebuilt its metrics kernel in %s: %s", folder, problem)
    return loaded


# One outcome per cache folder and process, failures included: a kernel that cannot be built is not retried on
# every metrics call (a training run measures thousands of times). Point HF_POSENC_CACHE elsewhere to retry.
_outcomes: dict[Path, ctypes.CDLL | KernelUnavailable] = {}
_outcomes_lock = threading.Lock()


def _load_cached(cache_folder: Path) -> ctypes.CDLL:
    outcome = _outcomes.get(cache_folder)  # every metrics call comes here: no lock once the outcome is known
    if outcome is None:
        with _outcomes_lock:
            outcome = _outcomes.get(cache_folder)
            if outcome is None:
                try:
                    outcome = _load_checked(cache_folder)
                except KernelUnavailable as error:
                    outcome = error
                _outcomes[cache_folder] = outcome
    if isinstance(outcome, KernelUnavailable):
        raise KernelUnavailable(str(outcome))
    return outcome


def forget_loaded() -> None:
    """Forget what this process loaded or failed to load, so the next call checks the cache again."""
    with _outcomes_lock:
        _outcomes.clear()


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
