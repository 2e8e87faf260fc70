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
  rebuilt. The bytes are read once through one checked file descriptor, hashed, and copied into a new file in a
  fresh private folder, and that copy is what ctypes loads: nothing switched in at the library's name after the
  check is ever loaded;
* once loaded, the library's totals on a small known sample must equal the pure-PyTorch path's (and it must flag
  a matrix whose rows do not sum to 1). A library that passes the checks but does not load, or computes wrong
  results, is rebuilt once; if that fails too, the metrics take the PyTorch path with one warning (``require``
  raises instead).

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
import math
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch
from torch import Tensor

from ..storage import atomic_path, cache_dir, private_folder, read_private_bytes

__all__ = [
    "MODES",
    "RESULT_FIXED",
    "SOURCE",
    "WANT_DISTANCES",
    "WANT_LOCALITY",
    "WANT_LOG_BINS",
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
# Per matrix: locality, reference and asymmetric totals, mirrored mass, then 2k+1 diagonal sums, then (with
# WANT_LOG_BINS) the 2M+1 sums of the log-spaced distance bins, M = (T - 1).bit_length().
RESULT_FIXED = 4
WANT_LOCALITY, WANT_REFERENCE, WANT_SCALE_AWARE, WANT_DISTANCES, WANT_LOG_BINS = 1, 2, 4, 8, 16
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


def _recorded_library(folder: Path, key: str) -> tuple[Path | None, str | None, str | None]:
    """The library the record names and its recorded digest; else (None, None, why not) -- all None when nothing
    was built yet. The library itself is checked by `_load_verified`, on the bytes it loads."""
    record = _record_path(folder, key)
    if not record.exists() and not record.is_symlink():
        return None, None, None
    try:
        digest, name = read_private_bytes(record).decode("ascii").split()
    except (OSError, UnicodeDecodeError, ValueError) as error:  # PermissionError is an OSError
        return None, None, f"its build record {record.name} is unusable ({error})"
    library = folder / name
    if Path(name).name != name or not name.endswith(".so"):
        return None, None, f"its build record {record.name} names {name!r}, not a library in {folder}"
    return library, digest, None


class _Refused(Exception):
    """Why a library of the cache was not loaded, or was loaded but gives wrong results (`remove`: delete it)."""

    def __init__(self, message: str, remove: bool = False):
        super().__init__(message)
        self.remove = remove


def _load_verified(library: Path, digest: str) -> ctypes.CDLL:
    """Load `library` only if its bytes have the sha256 `digest`, and keep it only if it computes what the PyTorch
    path computes.

    The bytes are read once, through one checked descriptor (the user's file, writable by no one else, no link),
    hashed, and written to a fresh file in a new private folder, which is what ctypes loads: a file switched in at
    `library`'s name after the check is never loaded (hashing a path and then loading the path would load it)."""
    try:
        content = read_private_bytes(library)
    except OSError as error:
        raise _Refused(f"{library.name} is unusable ({error})") from None
    found = hashlib.sha256(content).hexdigest()
    if found != digest:
        raise _Refused(
            f"{library.name} is not the library that was built (sha256 {found[:16]}..., recorded {digest[:16]}...)"
        )
    try:
        loaded = _bind_private_copy(content, library.parent)
    except (OSError, AttributeError) as error:  # not a shared library, or not this one (no symbol)
        raise _Refused(f"{library.name} does not load ({error})", remove=True) from None
    mismatch = _differs_from_reference(loaded)
    if mismatch is not None:
        raise _Refused(f"{library.name} computes wrong results ({mismatch})", remove=True)
    return loaded


def _bind_private_copy(content: bytes, folder: Path) -> ctypes.CDLL:
    # In the (checked, private) kernel folder rather than the system's temporary folder, which may be mounted
    # noexec; a new name every time, so the dynamic loader never hands back a library it loaded earlier by name.
    private = tempfile.mkdtemp(dir=folder, prefix=".load-")
    try:
        copy = os.path.join(private, "attention_stats.so")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        with os.fdopen(os.open(copy, flags, 0o700), "wb") as handle:
            handle.write(content)
        return _bind(Path(copy))
    finally:  # the loader keeps its own mapping of the file
        shutil.rmtree(private, ignore_errors=True)


def _reference_sample() -> tuple[Tensor, Tensor]:
    """Three 37 x 37 attention matrices (an odd size, so that vector loops and their remainders both run), the
    second with 23 real tokens, in float64."""
    generator = torch.Generator().manual_seed(20231)
    size, lengths = 37, torch.tensor([37, 23, 37])
    scores = torch.randn(3, size, size, generator=generator, dtype=torch.float64) * 3
    padded_keys = torch.arange(size)[None, None, :] >= lengths[:, None, None]
    return torch.softmax(scores.masked_fill(padded_keys, -math.inf), dim=-1), lengths


def _differs_from_reference(loaded: ctypes.CDLL) -> str | None:
    """None when the library's totals on a small known sample equal those of the pure-PyTorch path (in float64 and
    float32, every total the metrics can ask for) and it flags a matrix whose row sums to 2; else what differs. A
    library that loads can still be wrong (a miscompiled vector path, a source edited by hand), and its numbers
    would reach every report unnoticed."""
    import inspect

    from . import metrics  # the PyTorch path is the reference; imported here, as metrics imports this module
    from .attention_input import prepare

    # Every measurement switched on, by the names the two paths share (a measurement added later defaults to on).
    everything = {
        "want_locality": True,
        "symmetry_methods": tuple(metrics.SYMMETRY_METHODS),
        "tolerance": metrics.DEFAULT_SYMMETRY_TOLERANCE,
        "max_distance": 3,
    }
    names = list(inspect.signature(metrics._torch_totals).parameters)[1:]
    options = {name: everything.get(name, True) for name in names}
    sample, lengths = _reference_sample()
    mask = (torch.arange(sample.shape[-1]) < lengths[:, None]).long()
    for dtype in (torch.float64, torch.float32):
        prepared = prepare(sample.to(dtype), mask, None)
        found = metrics._kernel_totals(loaded, prepared, **options)
        if found is None:
            return f"it calls a valid {dtype} sample invalid"
        expected = metrics._torch_totals(prepared, **options)
        for key, value in expected.items():
            if key not in found or found[key].shape != value.shape:
                return f"it gives no {key} totals of the expected shape"
            if not torch.allclose(found[key], value, rtol=1e-9, atol=1e-9):
                difference = (found[key] - value).abs().max().item()
                return f"its {key} totals on a known {dtype} sample differ from PyTorch's by {difference:.3g}"
        broken = prepared._replace(matrices=prepared.matrices.clone())
        broken.matrices[1, 0] *= 2  # the first row of the second matrix sums to 2
        if metrics._kernel_totals(loaded, broken, **options) is not None:
            return f"it does not flag a {dtype} matrix whose row sums to 2"
    return None


def _build(compiler: str, folder: Path, key: str) -> tuple[Path, str]:
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
        os.chmod(temporary, 0o700)  # the linker may have created it anew, with the umask's mode
        digest = hashlib.sha256(read_private_bytes(temporary)).hexdigest()
        library = folder / f"attention_stats-{key}-{digest[:16]}.so"
        os.replace(temporary, library)
    finally:
        temporary.unlink(missing_ok=True)
    with atomic_path(_record_path(folder, key), mode=0o600) as record:
        record.write_text(f"{digest}  {library.name}\n", encoding="ascii")
    return library, digest


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
    """Load the recorded library after checking it (see `_load_verified`), or build it; rebuild once when a checked
    library fails to load or computes wrong results. Raises KernelUnavailable."""
    folder = kernel_folder(cache_folder)
    compiler = _compiler()
    key = _build_key(compiler)
    library, digest, problem = _recorded_library(folder, key)
    if library is not None:
        try:
            return _load_verified(library, digest)
        except _Refused as refused:
            problem = str(refused)
            if refused.remove:
                library.unlink(missing_ok=True)
    try:
        library, digest = _build(compiler, folder, key)
    except OSError as error:
        raise KernelUnavailable(f"could not build the kernel in {folder}: {error}") from None
    try:
        loaded = _load_verified(library, digest)
    except _Refused as refused:
        raise KernelUnavailable(f"the freshly built kernel in {folder} is refused: {refused}") from None
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

    Returns the float64 totals ``[N, RESULT_FIXED + 2 * max_distance + 1 (+ 2 * M + 1 with WANT_LOG_BINS, M =
    (T - 1).bit_length())]`` and the index of the first invalid matrix (None when all are valid)."""
    if matrices.dtype not in (torch.float32, torch.float64):
        matrices = matrices.to(torch.float32)
    matrices = matrices.contiguous()
    count, size, _ = matrices.shape
    if lengths is not None:
        lengths = lengths.to(device="cpu", dtype=torch.int64).contiguous()
    log_bins = 2 * (size - 1).bit_length() + 1 if flags & WANT_LOG_BINS else 0
    results = torch.empty(count, RESULT_FIXED + 2 * max_distance + 1 + log_bins, dtype=torch.float64)
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
