"""FlexAttention (positional_flex.py) for distance biases and distance-indexed scores (shaw, huang, deberta): the
per-distance tables equal the dense biases they replace (values and gradients), FlexAttention's compiled forward
equals eager attention with padding and with document_ids for every variant that has a FlexAttention form (the
forward runs on the CPU in this torch; its backward does not), the kernel each variant gets on CPU and CUDA, the
fallback of a request that cannot be honoured, and `attn_implementation="flex_attention"` through from_pretrained.
The CUDA test at the end runs forward and backward against the dense path; it is skipped without a GPU.

Compiling FlexAttention takes 10-30 s on a loaded 2-core CPU; every model here has the same shapes (4 heads, 16
tokens) so that the compiled kernel is reused."""

import shutil

import pytest
import torch
from conftest import ALL, random_ids, tiny_config, tiny_mlm
from transformers import AutoModelForMaskedLM
from transformers.testing_utils import CaptureLogger

from hf_posenc import positional_flex
from hf_posenc.positional_base import signed_distance
from hf_posenc.positional_flex import FLEX_ATTENTION, FlexAttentionPlan, choose_attention_kernel, has_flex_form

# FlexAttention compiles its CPU kernel with inductor, which builds C++.
needs_cxx = pytest.mark.skipif(
    not any(shutil.which(name) for name in ("g++", "c++", "clang++")),
    reason="FlexAttention's CPU kernel is compiled to C++ and no C++ compiler (g++) is installed",
)

SEQ_LEN = 16
# Every variant with its defaults, plus the settings that change what its bias depends on.
CASES = [(variant, {}) for variant in ALL] + [
    ("alibi", {"alibi_symmetric": False, "alibi_learnable_slopes": True}),
    ("kerple", {"kerple_kernel": "power"}),
    ("attenuated", {"attenuation_form": "learned_table"}),
    ("deberta", {"deberta_position_to_content": "paper"}),
    ("attenuated", {"attenuation_form": "probability"}),
    (
        "attenuated",
        {"attenuation_strength": [0.5, 0.1, 0.05, 0.01], "attenuation_symmetry": 0.5, "attenuation_learnable": True},
    ),
]
# Bias-route encodings whose bias is not a function of i - j alone: absolute (fire's normaliser reads the query's
# position, tupe's correlation), normalised by the sequence's length (attenuated's probability form), or
# content-dependent (forgetting).
NO_DISTANCE_TABLE = {
    ("fire", ()),
    ("tupe", ()),
    ("forgetting", ()),
    ("attenuated", (("attenuation_form", "probability"),)),
}


def case_id(case) -> str:
    variant, overrides = case
    return "-".join([variant, *(f"{key}={value}" for key, value in overrides.items())])


def key(case) -> tuple:
    variant, overrides = case
    return variant, tuple(sorted((name, value) for name, value in overrides.items() if isinstance(value, str)))


def encoder(case):
    variant, overrides = case
    return tiny_mlm(variant, **overrides).posenc


def cases_with_table() -> list:
    return [case for case in CASES if encoder(case).position.bias_by_distance(SEQ_LEN, "cpu") is not None]


def flex_cases() -> list:
    return [case for case in CASES if has_flex_form(encoder(case).position)]


def test_the_score_route_encodings_looked_up_by_distance_have_a_flex_form():
    with_form = {case[0] for case in flex_cases() if encoder(case).position.route == "score"}
    assert with_form == {"shaw", "huang", "deberta"}  # cope's positions are counted from the content


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_which_encodings_give_a_distance_table(case):
    position = encoder(case).position
    table = position.bias_by_distance(SEQ_LEN, "cpu")
    expected = position.route == "bias" and key(case) not in NO_DISTANCE_TABLE
    assert (table is not None) == expected
    if table is not None:
        layers = (tiny_config(case[0]).num_hidden_layers,) if position.per_layer else ()
        assert table.shape == (*layers, position.num_heads, 2 * SEQ_LEN - 1) and table.dtype == torch.float32


@pytest.mark.parametrize("case", cases_with_table(), ids=case_id)
def test_the_distance_table_equals_the_dense_bias_and_its_gradients(case):
    position = encoder(case).position
    parameters = [parameter for parameter in position.parameters() if parameter.requires_grad]
    # Each gradient is taken before the next bias is built: kerple clamps its parameters in place at every use.
    gathered = position.bias_by_distance(SEQ_LEN, "cpu")[..., signed_distance(SEQ_LEN, "cpu") + SEQ_LEN - 1]
    weights = torch.randn_like(gathered)
    through_table = torch.autograd.grad((gathered * weights).sum(), parameters) if parameters else ()
    dense = position.bias(SEQ_LEN, "cpu")
    through_dense = torch.autograd.grad((dense * weights).sum(), parameters) if parameters else ()
    torch.testing.assert_close(gathered, dense, atol=1e-6, rtol=1e-6)  # pow() may round differently by a ulp
    for table_gradient, dense_gradient in zip(through_table, through_dense):  # learned values keep their gradients
        assert table_gradient.abs().sum() > 0
        torch.testing.assert_close(table_gradient, dense_gradient, atol=1e-6, rtol=1e-5)


def layouts() -> dict:
    """Inputs without padding, with padding, and packed documents with padding (document ids -1 as the collator)."""
    ids = random_ids(2, SEQ_LEN)
    padding = torch.ones(2, SEQ_LEN, dtype=torch.long)
    padding[1, 11:] = 0
    documents = torch.tensor([[0] * 5 + [1] * 2 + [2] * 9, [3] * 7 + [4] * 4 + [-1] * 5])
    return {
        "none": dict(input_ids=ids),
        "padding": dict(input_ids=ids, attention_mask=padding),
        "documents": dict(input_ids=ids, attention_mask=padding, document_ids=documents),
    }


@needs_cxx
@pytest.mark.parametrize("case", flex_cases(), ids=case_id)
def test_flex_forward_equals_eager_with_padding_and_documents(case):
    model = tiny_mlm(case[0], **case[1]).eval()
    for layout, inputs in layouts().items():
        real = inputs.get("attention_mask", torch.ones(2, SEQ_LEN)).bool()
        with torch.no_grad():
            model.set_attn_implementation("eager")
            eager = model(**inputs).logits
            model.set_attn_implementation(FLEX_ATTENTION)
            assert choose_attention_kernel(model.posenc, torch.device("cpu"), False, True) == (FLEX_ATTENTION, None)
            flex = model(**inputs).logits
        assert not flex.isnan().any(), layout
        torch.testing.assert_close(flex[real], eager[real], atol=1e-5, rtol=1e-5, msg=layout)


@needs_cxx
@pytest.mark.parametrize(
    "case",
    [
        case
        for case in CASES
        if not has_flex_form(encoder(case).position) and encoder(case).position.document_restart_problem() is None
    ],
    ids=case_id,
)
def test_packed_documents_without_a_position_term_run_on_the_block_mask_alone(case):
    """nope, learned, sinusoidal, rope, comrope: FlexAttention with the block mask of documents (and padding), no
    score_mod; the bias- and score-route encodings without a FlexAttention form keep their default path."""
    model = tiny_mlm(case[0], **case[1]).eval()
    inputs = layouts()["documents"]
    with torch.no_grad():
        model.set_attn_implementation("eager")
        eager = model(**inputs).logits
        model.set_attn_implementation(FLEX_ATTENTION)
        flex = model(**inputs).logits
        plan = positional_flex.flex_attention_plan(
            model.posenc, None, inputs["document_ids"], 2, SEQ_LEN, torch.device("cpu"), False
        )
    real = inputs["attention_mask"].bool()
    torch.testing.assert_close(flex[real], eager[real], atol=1e-5, rtol=1e-5)
    position = model.posenc.position
    if position.route in ("none", "embed", "rotate"):
        assert isinstance(plan, FlexAttentionPlan) and plan.table is None and plan.block_mask is not None
    else:
        assert plan is None


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_the_form_is_found_where_the_encoding_lives(case):
    """`has_flex_form` builds its two-token table on the encoding's device (here meta, standing for a GPU): a CPU
    table next to GPU parameters would fail."""
    with torch.device("meta"):
        position = tiny_mlm(case[0], **case[1]).posenc.position
    assert has_flex_form(position) == has_flex_form(encoder(case).position)


def reference_kernel(position) -> str:
    return "eager" if position.route == "score" else "sdpa"


def kernel(
    case, device: str, implementation: str = "sdpa", training=False, output_attentions=False, documents=False, **config
):
    variant, overrides = case
    # 4 heads of 16 dimensions: FlexAttention's CUDA kernel needs at least 16.
    model = tiny_mlm(variant, **{**overrides, "hidden_size": 64, **config}).train(training)
    model.set_attn_implementation(implementation)
    flex_form = has_flex_form(model.posenc.position, packed_documents=documents)
    return choose_attention_kernel(model.posenc, torch.device(device), output_attentions, flex_form)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_the_automatic_choice_on_cpu_and_cuda(case):
    position = encoder(case).position
    flex = FLEX_ATTENTION if has_flex_form(position) else reference_kernel(position)
    reference = reference_kernel(position)
    assert kernel(case, "cpu") == (reference, None)  # on the CPU the default is always today's path
    assert kernel(case, "cuda") == (flex, None)
    assert kernel(case, "cuda", training=True) == (flex, None)  # no dropout
    # Packed documents: FlexAttention's block mask also serves the encodings that add nothing to the scores.
    with_documents = FLEX_ATTENTION if has_flex_form(position, packed_documents=True) else reference
    assert kernel(case, "cuda", documents=True) == (with_documents, None)
    assert has_flex_form(position, packed_documents=True) == (
        has_flex_form(position) or position.route in ("none", "embed", "rotate")
    )
    assert kernel(case, "cuda", training=True, attention_probs_dropout_prob=0.1) == (reference, None)
    assert kernel(case, "cuda", output_attentions=True) == ("eager", None)
    assert kernel(case, "cuda", "eager") == ("eager", None)
    assert kernel(case, "cuda", hidden_size=32) == (reference, None)  # heads of 8 dimensions


@needs_cxx
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_an_explicit_request_runs_flex_where_it_can_and_says_why_not_elsewhere(case):
    position = encoder(case).position
    with torch.no_grad():
        chosen, reason = kernel(case, "cpu", FLEX_ATTENTION)
    if has_flex_form(position):
        assert (chosen, reason) == (FLEX_ATTENTION, None)
        assert kernel(case, "cuda", FLEX_ATTENTION) == (FLEX_ATTENTION, None)
        assert kernel(case, "cpu", FLEX_ATTENTION)[1].startswith("on the CPU FlexAttention runs forward only")
        dropout = kernel(case, "cuda", FLEX_ATTENTION, training=True, attention_probs_dropout_prob=0.1)
        assert dropout[0] == reference_kernel(position) and "attention dropout" in dropout[1]
        small_heads = kernel(case, "cuda", FLEX_ATTENTION, hidden_size=32)
        assert small_heads[0] == reference_kernel(position) and "head dimension of at least 16" in small_heads[1]
    else:
        assert chosen == reference_kernel(position)
        assert position.name in reason and "\n" not in reason
    assert kernel(case, "cuda", FLEX_ATTENTION, output_attentions=True)[0] == "eager"


@needs_cxx
def test_a_request_that_cannot_be_honoured_warns_once_and_gives_the_default_results():
    model = tiny_mlm("alibi").eval()
    inputs = layouts()["padding"]
    expected = model(**inputs).logits  # SDPA with the dense bias
    model.set_attn_implementation(FLEX_ATTENTION)
    type(positional_flex.logger).warning_once.cache_clear()
    with CaptureLogger(positional_flex.logger) as captured:
        first = model(**inputs).logits  # autograd is on: the CPU kernel has no backward
        second = model(**inputs).logits
    message = captured.out.strip()
    assert message.count("\n") == 0 and "torch.no_grad()" in message and "runs on sdpa instead" in message
    torch.testing.assert_close(first, expected, atol=0, rtol=0)
    torch.testing.assert_close(second, expected, atol=0, rtol=0)


@needs_cxx
def test_from_pretrained_with_flex_attention(tmp_path):
    model = tiny_mlm("t5").eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path, attn_implementation=FLEX_ATTENTION).eval()
    assert loaded.config._attn_implementation == FLEX_ATTENTION
    assert loaded.posenc.config._attn_implementation == FLEX_ATTENTION
    inputs = layouts()["padding"]
    with torch.no_grad():
        flex = loaded(**inputs).logits
        assert isinstance(
            positional_flex.flex_attention_plan(loaded.posenc, None, None, 2, SEQ_LEN, torch.device("cpu"), False),
            FlexAttentionPlan,
        )
        model.set_attn_implementation("eager")
        eager = model(**inputs).logits
    real = inputs["attention_mask"].bool()
    torch.testing.assert_close(flex[real], eager[real], atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="FlexAttention's backward needs CUDA")
@pytest.mark.parametrize(
    "case", [case for case in CASES if has_flex_form(encoder(case).position, packed_documents=True)], ids=case_id
)
def test_cuda_flex_forward_and_backward_equal_the_dense_path(case):
    """Run where a GPU is: `pytest tests/models/test_flex_attention.py -k cuda`."""
    torch.manual_seed(0)
    flex_model = tiny_mlm(case[0], **case[1], hidden_size=64).cuda().train()  # heads of 16 dimensions, the least
    dense_model = tiny_mlm(case[0], **case[1], hidden_size=64).cuda().train()
    dense_model.load_state_dict(flex_model.state_dict())
    flex_model.set_attn_implementation(FLEX_ATTENTION)
    dense_model.set_attn_implementation("eager")
    for layout, inputs in layouts().items():
        if not has_flex_form(flex_model.posenc.position, packed_documents="document_ids" in inputs):
            continue  # an encoding without a position term runs FlexAttention for packed documents only
        inputs = {name: value.cuda() for name, value in inputs.items()}
        labels = torch.where(
            inputs.get("attention_mask", torch.ones_like(inputs["input_ids"])).bool(), inputs["input_ids"], -100
        )
        assert choose_attention_kernel(flex_model.posenc, torch.device("cuda"), False, True)[0] == FLEX_ATTENTION
        losses = []
        for model in (flex_model, dense_model):
            model.zero_grad()
            loss = model(**inputs, labels=labels).loss
            loss.backward()
            losses.append(loss)
        torch.testing.assert_close(losses[0], losses[1], atol=1e-5, rtol=1e-5, msg=layout)
        for (name, flex_parameter), dense_parameter in zip(flex_model.named_parameters(), dense_model.parameters()):
            if dense_parameter.grad is not None:
                torch.testing.assert_close(
                    flex_parameter.grad, dense_parameter.grad, atol=1e-4, rtol=1e-3, msg=f"{layout} {name}"
                )
