"""The fused C kernel behind hf_posenc.metrics on CPU: same numbers and errors as the PyTorch path, its thread
pool, and how it is built, chosen and refused. tests/analysis/test_locality_symmetry.py runs every metric test on
both paths; tests/bad_input/test_security.py checks what the kernel cache trusts."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading

import pytest
import torch

from hf_posenc.analysis import kernel as metrics_kernel
from hf_posenc.analysis import metrics

pytestmark = pytest.mark.skipif(
    not any(shutil.which(name) for name in ("cc", "gcc", "clang")), reason="no C compiler to build the kernel"
)


def attention(count: int, size: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    scores = 3.0 * torch.randn(count, size, size, generator=generator, dtype=torch.float64)
    return torch.softmax(scores, dim=-1).to(dtype)


def every_metric(attn: torch.Tensor, mask=None) -> dict:
    """All metrics of stacked attentions [layers, batch, heads, T, T]."""
    return {
        "locality": metrics.locality(attn, mask),
        "reference": metrics.symmetry(attn, mask),
        "scale_aware": metrics.symmetry(attn, mask, "scale_aware"),
        "summary": metrics.summarize(attn, mask),
    }


def on_path(monkeypatch, mode: str, compute):
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", mode)
    return compute()


@pytest.fixture
def many_threads(monkeypatch):
    """Split even small inputs among 4 threads (3 pool workers plus the caller)."""
    monkeypatch.setattr(metrics_kernel, "_ELEMENTS_PER_THREAD", 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_kernel_equals_pytorch_path_on_threaded_padded_batches(monkeypatch, many_threads, dtype):
    attn = attention(4 * 3 * 2, 40, seed=1, dtype=dtype).reshape(4, 3, 2, 40, 40)  # layers, batch, heads
    mask = torch.ones(3, 40, dtype=torch.long)
    mask[1, 30:] = 0  # right padding
    mask[2, :7] = 0  # left padding
    real = mask.bool()
    # Zero the padded keys and renormalise, as a model that masks padding would.
    attn = attn.double().masked_fill(~real[None, :, None, None, :], 0)
    attn = (attn / attn.sum(-1, keepdim=True)).to(dtype)
    for mask_or_none in (None, mask):
        kernel = on_path(monkeypatch, "require", lambda: every_metric(attn, mask_or_none))
        pytorch = on_path(monkeypatch, "off", lambda: every_metric(attn, mask_or_none))
        for key in ("locality", "reference", "scale_aware"):
            torch.testing.assert_close(kernel[key], pytorch[key], rtol=0, atol=1e-12, equal_nan=True)
        assert kernel["summary"].keys() == pytorch["summary"].keys()
        assert kernel["summary"]["distance"]["offsets"] == pytorch["summary"]["distance"]["offsets"]
        torch.testing.assert_close(
            torch.tensor(kernel["summary"]["per_head"]["symmetry"]),
            torch.tensor(pytorch["summary"]["per_head"]["symmetry"]),
            rtol=0,
            atol=1e-12,
        )
        torch.testing.assert_close(
            torch.tensor(kernel["summary"]["distance"]["per_layer"]),
            torch.tensor(pytorch["summary"]["distance"]["per_layer"]),
            rtol=0,
            atol=1e-12,
        )


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda a: a[37, 5].__setitem__(3, float("nan")), "non-finite"),
        # The row still sums to 1: only the sign gives it away.
        (lambda a: (a[37, 5, 4].add_(a[37, 5, 3] + 0.25), a[37, 5, 3].fill_(-0.25)), "negative"),
        (lambda a: a[37, 5].mul_(0.5), "sum to 1"),
    ],
)
def test_an_invalid_matrix_deep_in_a_threaded_batch_gets_the_pytorch_message(
    monkeypatch, many_threads, corrupt, message
):
    attn = attention(48, 16, seed=2)
    corrupt(attn)
    errors = {}
    for mode in ("require", "off"):
        monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", mode)
        with pytest.raises(ValueError, match=message) as caught:
            metrics.symmetry(attn)
        errors[mode] = str(caught.value)
    assert errors["require"] == errors["off"]
    assert "matrix (37,)" in errors["require"] and "row 5" in errors["require"]


def test_mass_on_padded_keys_is_caught_by_the_kernel(monkeypatch):
    attn = attention(2, 12, seed=3)
    mask = torch.ones(2, 12)
    mask[1, 9:] = 0  # the model did not mask these keys: the rows still put mass on them
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "require")
    with pytest.raises(ValueError, match="attention_mask does not match attn"):
        metrics.locality(attn, mask)


def test_concurrent_callers_share_the_pool_safely(monkeypatch, many_threads):
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "require")
    inputs = [attention(24, 32, seed=10 + index) for index in range(6)]
    expected = [metrics.symmetry(attn) for attn in inputs]
    found: dict[int, torch.Tensor] = {}

    def measure(index: int) -> None:
        for _ in range(5):
            found[index] = metrics.symmetry(inputs[index])

    workers = [threading.Thread(target=measure, args=(index,)) for index in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for index, values in enumerate(expected):
        assert torch.equal(found[index], values)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_pool(monkeypatch, many_threads):
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "require")
    attn = attention(16, 24, seed=4)
    expected = metrics.symmetry(attn)  # the parent's pool is running now
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        status = 0 if torch.equal(metrics.symmetry(attn), expected) else 3
        os._exit(status)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_mode_is_read_at_every_call_and_checked(monkeypatch):
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "off")
    assert metrics_kernel.load() is None
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "require")
    assert metrics_kernel.load() is not None
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "fast")
    with pytest.raises(ValueError, match="HF_POSENC_METRICS_KERNEL='fast' is not one of auto, off, require"):
        metrics.locality(torch.eye(3))


def test_without_a_compiler_auto_falls_back_with_one_warning_and_require_refuses(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("HF_POSENC_CACHE", str(tmp_path / "cache"))  # nothing built there yet
    monkeypatch.setenv("PATH", str(tmp_path))  # no compiler on it
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(metrics_kernel, "_warned", set())
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "auto")
    with caplog.at_level(logging.WARNING, logger="hf_posenc.analysis.kernel"):
        values = [metrics.symmetry(attention(3, 9, seed=5)) for _ in range(2)]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "pure-PyTorch path" in warnings[0] and "no C compiler" in warnings[0]
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "off")
    torch.testing.assert_close(values[0], metrics.symmetry(attention(3, 9, seed=5)), rtol=0, atol=0)
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "require")
    with pytest.raises(metrics_kernel.KernelUnavailable, match="require, but no C compiler found"):
        metrics.symmetry(attention(3, 9, seed=5))


def test_a_failing_compiler_is_reported_with_its_output(monkeypatch, tmp_path):
    compiler = tmp_path / "broken-cc"
    compiler.write_text("#!/bin/sh\necho 'fatal: this compiler is broken' >&2\nexit 1\n")
    compiler.chmod(0o755)
    monkeypatch.setenv("HF_POSENC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(compiler))
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "require")
    with pytest.raises(metrics_kernel.KernelUnavailable, match="this compiler is broken"):
        metrics.locality(torch.eye(4))
    assert not list((tmp_path / "cache" / "kernels").glob("*.so"))  # no half-built library left behind


def test_a_clean_process_builds_the_kernel_into_its_cache(tmp_path):
    script = (
        "import torch\n"
        "from hf_posenc import metrics\n"
        "attn = torch.softmax(torch.arange(64.0, dtype=torch.float64).reshape(4, 4, 4).sin() * 3, -1)\n"
        "print(repr(metrics.symmetry(attn, method='scale_aware').tolist()))\n"
    )
    environment = {**os.environ, "HF_POSENC_CACHE": str(tmp_path), "HF_POSENC_METRICS_KERNEL": "require"}
    built = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert len(list((tmp_path / "kernels").glob("attention_stats-*.so"))) == 1
    assert len(list((tmp_path / "kernels").glob("attention_stats-*.sha256"))) == 1  # its digest, to check on load
    environment["HF_POSENC_METRICS_KERNEL"] = "off"
    reference = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr
    assert [round(v, 12) for v in eval(built.stdout)] == [round(v, 12) for v in eval(reference.stdout)]
