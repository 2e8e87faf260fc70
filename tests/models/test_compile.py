"""torch.compile for every variant: the compiled training step (loss and gradients, with padding) equals eager.

Every variant is compiled with the ``aot_eager`` backend (dynamo's graph capture and AOTAutograd's joint forward and
backward graph, run without generated code), and one variant per route with the default inductor backend, which
generates and compiles C++ kernels on the CPU. On the CPU the encoder's input checks read values back (clear
ValueErrors), which splits the graph; on an accelerator, and while compiling there, they are device asserts. The
inductor tests and the graph-break count take that accelerator path, which is what a GPU run compiles.
"""

import shutil

import pytest
import torch
from conftest import ALL, random_ids, tiny_mlm
from torch._dynamo.testing import CompileCounterWithBackend

import hf_posenc

SEQ_LEN = 16
# The first variant of each route in the registry: the four code paths of attention.
ROUTE_EXAMPLES = {
    route: next(variant for variant in ALL if hf_posenc.ENCODINGS[variant].route == route)
    for route in ("embed", "rotate", "bias", "score")
}
HAS_CXX = any(shutil.which(name) for name in ("g++", "c++", "clang++"))


@pytest.fixture(autouse=True)
def fresh_dynamo():
    # Each test compiles new models: without a reset, dynamo's per-function cache fills up and later variants
    # would silently run eagerly.
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def padded_batch():
    ids = random_ids(2, SEQ_LEN)
    mask = torch.ones_like(ids)
    mask[1, -5:] = 0
    labels = ids.clone()
    labels[:, ::3] = -100
    labels[mask == 0] = -100
    return ids, mask, labels


def training_step(model, ids, mask, labels, forward=None):
    """The loss and every parameter's gradient of one step of `model`, run through `forward` (default: itself)."""
    model.zero_grad(set_to_none=True)
    loss = (model if forward is None else forward)(ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    return loss.detach(), {name: parameter.grad.clone() for name, parameter in model.named_parameters()}


def assert_compiled_step_equals_eager(model, backend):
    ids, mask, labels = padded_batch()
    eager_loss, eager_grads = training_step(model, ids, mask, labels)
    counter = CompileCounterWithBackend(backend)
    compiled_loss, compiled_grads = training_step(model, ids, mask, labels, torch.compile(model, backend=counter))
    assert counter.frame_count >= 1, "nothing was compiled"
    torch.testing.assert_close(compiled_loss, eager_loss, atol=1e-6, rtol=1e-6)
    assert compiled_grads.keys() == eager_grads.keys()
    for name, gradient in compiled_grads.items():
        torch.testing.assert_close(gradient, eager_grads[name], atol=1e-6, rtol=1e-5, msg=name)


def as_on_an_accelerator(model):
    """The encoder's checks as after a first forward on an accelerator: device asserts, no reads to the host."""
    model.posenc.checks_may_synchronise = lambda device: False
    return model


@pytest.mark.parametrize("variant", ALL)
def test_aot_eager_compiled_training_step_equals_eager(variant):
    assert_compiled_step_equals_eager(tiny_mlm(variant), "aot_eager")


@pytest.mark.skipif(not HAS_CXX, reason="inductor's CPU backend compiles C++ and no C++ compiler (g++) is installed")
@pytest.mark.parametrize("route", ROUTE_EXAMPLES)
def test_inductor_compiled_training_step_equals_eager(route):
    assert_compiled_step_equals_eager(as_on_an_accelerator(tiny_mlm(ROUTE_EXAMPLES[route])), "inductor")


@pytest.mark.parametrize("variant", ALL)
def test_on_the_accelerator_path_only_the_sparse_head_breaks_the_graph(variant):
    """The sparse MLM head's nonzero has a data-dependent shape: one graph break with labels, none without."""
    model = as_on_an_accelerator(tiny_mlm(variant))
    ids, mask, labels = padded_batch()
    with_labels = torch._dynamo.explain(model)(ids, attention_mask=mask, labels=labels)
    assert with_labels.graph_break_count == 1, [reason.reason for reason in with_labels.break_reasons]
    assert "nonzero" in str(with_labels.break_reasons[0].reason)
    assert torch._dynamo.explain(model)(ids, attention_mask=mask).graph_break_count == 0
