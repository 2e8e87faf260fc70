"""No host-device synchronisation in the encoder's forward on an accelerator: the input checks read values back only
at the first forward there (so a wrong tokenizer still gets a clear error), then assert on the device; on the CPU
they stay synchronous ValueErrors. The CUDA test counts synchronisations with CUDA's sync debug mode."""

import pytest
import torch
from conftest import ALL, random_ids, tiny_mlm

CUDA = torch.device("cuda")


def test_on_the_cpu_the_checks_always_read_values_and_errors_stay_clear():
    model = tiny_mlm("learned").eval()
    encoder = model.posenc
    assert encoder.checks_may_synchronise(torch.device("cpu"))
    encoder._device_inputs_checked = True  # as after a first forward on an accelerator: changes nothing on the CPU
    assert encoder.checks_may_synchronise(torch.device("cpu"))
    with pytest.raises(ValueError, match="outside this model's vocabulary of 120 tokens"):
        model(torch.tensor([[5, 120]]))
    with pytest.raises(ValueError, match="pad on the right"):
        model(random_ids(1, 4), attention_mask=torch.tensor([[0, 1, 1, 1]]))
    with pytest.raises(ValueError, match="only 0 \\(padding\\) and 1"):
        model(random_ids(1, 4), attention_mask=torch.tensor([[1, 2, 1, 1]]))


def test_on_an_accelerator_only_the_first_forward_may_synchronise():
    encoder = tiny_mlm("rope").posenc
    assert encoder.checks_may_synchronise(CUDA)  # the first forward: the clear errors of the CPU
    encoder._device_inputs_checked = True  # what a forward on an accelerator records once its checks passed
    assert not encoder.checks_may_synchronise(CUDA)
    assert encoder.checks_may_synchronise(torch.device("cpu"))
    assert not tiny_mlm("rope").posenc._device_inputs_checked  # per model, not per class


@pytest.fixture
def asserting_model():
    """A model whose checks take the accelerator's path (device asserts), which on the CPU fail at once."""
    model = tiny_mlm("learned").eval()
    model.posenc.checks_may_synchronise = lambda device: False
    return model


def test_the_device_asserts_catch_what_the_synchronous_checks_catch(asserting_model):
    with pytest.raises(RuntimeError, match="outside this model's vocabulary of 120 tokens"):
        asserting_model(torch.tensor([[5, 120]]))
    with pytest.raises(RuntimeError, match="outside this model's vocabulary"):
        asserting_model(torch.tensor([[5, -1]]))
    with pytest.raises(RuntimeError, match="segment outside this model's 2 segment types"):
        asserting_model(random_ids(1, 4), token_type_ids=torch.tensor([[0, 0, 2, 0]]))
    with pytest.raises(RuntimeError, match="pad on the right"):
        asserting_model(random_ids(1, 4), attention_mask=torch.tensor([[0, 1, 1, 1]]))
    with pytest.raises(RuntimeError, match="only 0 \\(padding\\) and 1"):
        asserting_model(random_ids(1, 4), attention_mask=torch.tensor([[1, 2, 1, 1]]))


def test_the_device_path_computes_what_the_synchronous_path_computes(asserting_model):
    synchronous = tiny_mlm("learned").eval()
    synchronous.load_state_dict(asserting_model.state_dict())
    ids = random_ids(2, 12)
    for mask in (torch.ones(2, 12, dtype=torch.long), torch.tensor([[1] * 12, [1] * 7 + [0] * 5])):
        with torch.no_grad():
            expected = synchronous(ids, attention_mask=mask).logits
            # An all-ones mask stays a mask on this path (a mask of zeros added to the logits): the same outputs.
            torch.testing.assert_close(asserting_model(ids, attention_mask=mask).logits, expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="counts CUDA synchronisations: needs a CUDA device")
@pytest.mark.parametrize("variant", ALL)
def test_a_forward_on_cuda_never_synchronises_after_the_first(variant):
    model = tiny_mlm(variant).to(CUDA).eval()
    ids = random_ids(2, 16).to(CUDA)
    mask = torch.tensor([[1] * 16, [1] * 11 + [0] * 5], device=CUDA)
    documents = torch.tensor([[0] * 9 + [1] * 7, [0] * 4 + [1] * 12], device=CUDA)
    restarts = model.posenc.position.document_restart_problem() is None
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    with torch.no_grad():
        model(ids, attention_mask=mask)  # the first forward checks synchronously, for its clear errors
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            model(ids)
            model(ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
            if restarts:
                model(ids, document_ids=documents)
            # The sparse MLM head must learn how many tokens are masked: the training step's one synchronisation.
            with pytest.raises(RuntimeError, match="synchroniz"):
                model(ids, labels=labels)
        finally:
            torch.cuda.set_sync_debug_mode("default")
