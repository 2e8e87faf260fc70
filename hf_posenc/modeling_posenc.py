"""One BERT-style encoder shared by every positional encoding, its MLM and classification heads, and the three
model classes of each variant.

Hub code: copied next to every saved model (with configuration_posenc.py and the positional*.py files), so it imports only
torch, transformers and those files.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutput,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

from .configuration_posenc import HEADS, VARIANTS, PosEncConfig
from .positional import ENCODINGS, PositionalEncoding
from .positional_base import check_position_range, randomized_positions
from .positional_flex import FlexAttentionPlan, flex_attention_plan


class PosEncEmbeddings(nn.Module):
    """Word and token-type embeddings, plus the position vectors of embed-route encodings."""

    def __init__(self, config: PosEncConfig, token_embedding_scale: float = 1.0):
        super().__init__()
        self.token_embedding_scale = token_embedding_scale
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids, inputs_embeds, position_vectors) -> torch.Tensor:
        embeddings = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        if self.token_embedding_scale != 1.0:
            embeddings = embeddings * self.token_embedding_scale
        if token_type_ids is None:
            embeddings = embeddings + self.token_type_embeddings.weight[0]
        else:
            embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        if position_vectors is not None:
            embeddings = embeddings + position_vectors
        return self.dropout(self.LayerNorm(embeddings))


class PosEncSelfAttention(nn.Module):
    """Multi-head self-attention: FlexAttention when the encoder chose it (positional_flex.py), else SDPA (with the
    positional bias folded into its float mask) unless the encoding needs query/key-dependent position scores, the
    model is set to eager, or attention weights are requested."""

    def __init__(self, config: PosEncConfig, positional: PositionalEncoding, layer_index: int):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.layer_index = layer_index
        self.scaling = (positional.scale_divisor * self.head_dim) ** -0.5
        # One fused projection: a single matrix multiply for q, k and v is faster than three.
        self.query_key_value = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.dropout_prob = config.attention_probs_dropout_prob

    def forward(self, hidden_states, attention_bias, positional, layer_context, output_attentions: bool):
        batch, seq_len, _ = hidden_states.shape
        qkv = self.query_key_value(hidden_states).view(batch, seq_len, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, H, T, d]
        if positional.route == "rotate":
            rotation = layer_context[self.layer_index] if positional.per_layer_context else layer_context
            query, key = positional.rotate(query, key, rotation)
        dropout = self.dropout_prob if self.training else 0.0

        eager = output_attentions or positional.route == "score" or self.config._attn_implementation == "eager"
        if isinstance(attention_bias, FlexAttentionPlan):  # the encoder chose FlexAttention (positional_flex)
            relative = None
            if positional.route == "score":
                relative = positional.relative_scores(query, key, self.layer_index, layer_context)
            context, probabilities = attention_bias.attend(query, key, value, self.scaling, relative), None
        elif not eager:
            context = F.scaled_dot_product_attention(
                query, key, value, attn_mask=attention_bias, dropout_p=dropout, scale=self.scaling
            )
            probabilities = None
        else:
            logits = query @ key.transpose(-1, -2)
            if positional.route == "score":
                logits = logits + positional.scores(query, key, self.layer_index, layer_context)
            logits = logits * self.scaling
            if attention_bias is not None:
                logits = logits + attention_bias
            probabilities = torch.softmax(logits, dim=-1, dtype=torch.float32).to(query.dtype)
            context = F.dropout(probabilities, p=dropout, training=self.training) @ value
        context = context.transpose(1, 2).reshape(batch, seq_len, -1)
        return context, probabilities


class PosEncLayer(GradientCheckpointingLayer):
    """Attention and feed-forward blocks with residuals; post-LN as in BERT or pre-LN."""

    def __init__(self, config: PosEncConfig, positional: PositionalEncoding, layer_index: int):
        super().__init__()
        self.pre_layer_norm = config.pre_layer_norm
        self.attention = PosEncSelfAttention(config, positional, layer_index)
        self.attention_output = nn.Linear(config.hidden_size, config.hidden_size)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.output_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, attention_bias, positional, layer_context, output_attentions: bool = False):
        residual = hidden_states
        if self.pre_layer_norm:
            hidden_states = self.attention_norm(hidden_states)
        context, probabilities = self.attention(
            hidden_states, attention_bias, positional, layer_context, output_attentions
        )
        hidden_states = residual + self.dropout(self.attention_output(context))
        if not self.pre_layer_norm:
            hidden_states = self.attention_norm(hidden_states)

        residual = hidden_states
        if self.pre_layer_norm:
            hidden_states = self.output_norm(hidden_states)
        hidden_states = residual + self.dropout(self.output(self.activation(self.intermediate(hidden_states))))
        if not self.pre_layer_norm:
            hidden_states = self.output_norm(hidden_states)
        return hidden_states, probabilities


class PosEncPreTrainedModel(PreTrainedModel):
    config_class = PosEncConfig
    base_model_prefix = "posenc"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flex_attn = True  # distance biases and distance-indexed scores as a score_mod (positional_flex.py)
    _no_split_modules = ["PosEncLayer"]
    # transformers guesses from the source whether attention can be switched at run time; ours reads
    # config._attn_implementation on every call, so `set_attn_implementation("eager")` is safe.
    _can_set_attn_implementation_cached_value = True

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except Exception as error:
            # Matched by name: Hub code imports only torch and transformers, not safetensors.
            if type(error).__name__ != "SafetensorError":
                raise
            raise ValueError(
                f"The weights (*.safetensors) in {pretrained_model_name_or_path} cannot be read: {error}. The file is "
                "damaged or was cut short (an interrupted copy or download); copy or save the model again."
            ) from error

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, PositionalEncoding):
            module.reset_parameters()
        elif isinstance(module, PosEncLMHead):
            init.zeros_(module.bias)


class PosEncModel(PosEncPreTrainedModel):
    """The shared encoder: embeddings, the positional encoding of `config.variant`, and N layers."""

    _device_inputs_checked = False  # set by the first forward on an accelerator (`checks_may_synchronise`)

    def __init__(self, config: PosEncConfig):
        super().__init__(config)
        self.position = ENCODINGS[config.variant](config)
        check_position_range(self.position, config.randomized_positions_range)
        self.embeddings = PosEncEmbeddings(config, self.position.token_embedding_scale)
        # Revision 1 floored every bias at -50, which changes attention for learned biases that sit lower as a whole.
        self.bias_floor_below_row_max = config.posenc_revision >= 2
        self.layers = nn.ModuleList(
            PosEncLayer(config, self.position, index) for index in range(config.num_hidden_layers)
        )
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.pre_layer_norm else None
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def check_input_ids(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> None:
        """Refuse ids that nn.Embedding would reject with an unhelpful message (or, on a GPU, a device assert);
        ``token_type_ids`` are checked in the same host-device synchronisation. Where reading values back would cost
        a synchronisation (`checks_may_synchronise`), the ranges are asserted on the device instead."""
        if input_ids.dim() != 2 or input_ids.dtype.is_floating_point or input_ids.dtype in (torch.bool, torch.uint8):
            raise ValueError(
                f"input_ids must be a 2-D integer tensor [batch, seq_len]; got a {input_ids.dim()}-D "
                f"{input_ids.dtype} tensor of shape {tuple(input_ids.shape)}. Pass the tokenizer's input_ids "
                "(return_tensors='pt'), not embeddings or probabilities."
            )
        if input_ids.numel() == 0:
            raise ValueError(f"input_ids of shape {tuple(input_ids.shape)} hold no token; pass at least one token.")
        if token_type_ids is not None:
            self.check_token_type_shape(token_type_ids, tuple(input_ids.shape))
        if not self.checks_may_synchronise(input_ids.device):
            self.assert_ids_in_range(input_ids, token_type_ids)
            return
        extremes = tuple(input_ids.aminmax())
        if token_type_ids is not None:
            extremes += tuple(token_type_ids.aminmax())
        lowest, highest, *type_range = torch.stack([value.to(torch.long) for value in extremes]).tolist()
        if lowest < 0 or highest >= self.config.vocab_size:
            raise ValueError(
                f"input_ids hold token id {lowest if lowest < 0 else highest}, outside this model's vocabulary of "
                f"{self.config.vocab_size} tokens; use the tokenizer the model was trained with."
            )
        if type_range:
            self.check_token_type_range(*type_range)

    def check_token_type_shape(self, token_type_ids: torch.Tensor, shape: tuple[int, ...]) -> None:
        if (
            tuple(token_type_ids.shape) != shape
            or token_type_ids.dtype.is_floating_point
            or token_type_ids.dtype == torch.bool
        ):
            raise ValueError(
                f"token_type_ids must be an integer tensor shaped like the inputs {list(shape)}; got a "
                f"{token_type_ids.dtype} tensor of shape {tuple(token_type_ids.shape)}. Pass the tokenizer's "
                "token_type_ids."
            )

    def check_token_type_range(self, lowest: int, highest: int) -> None:
        if lowest < 0 or highest >= self.config.type_vocab_size:
            raise ValueError(
                f"token_type_ids hold the segment {lowest if lowest < 0 else highest}, but this model has "
                f"{self.config.type_vocab_size} segment types (0 to {self.config.type_vocab_size - 1}); pass the "
                "tokenizer's token_type_ids, or none."
            )

    def checks_may_synchronise(self, device: torch.device) -> bool:
        """Whether the input checks may read values back to the host. Always on the CPU, where that is free. On an
        accelerator each read is a host-device synchronisation that stalls the queue of kernels: allowed only until
        one forward has passed the checks (so a wrong tokenizer still gets its clear error at the first step), and
        never while torch.compile traces; afterwards the checks are asynchronous device asserts."""
        if device.type == "cpu":
            return True
        return not self._device_inputs_checked and not torch.compiler.is_compiling()

    def assert_ids_in_range(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> None:
        """The range checks of `check_input_ids` as device asserts: no synchronisation. A failure surfaces at the
        next synchronisation as a device-side assert (on the CPU, at once as a RuntimeError) with this message."""
        vocabulary = self.config.vocab_size
        torch._assert_async(
            ((input_ids >= 0) & (input_ids < vocabulary)).all(),
            f"input_ids hold a token id outside this model's vocabulary of {vocabulary} tokens; use the tokenizer "
            "the model was trained with.",
        )
        if token_type_ids is not None:
            types = self.config.type_vocab_size
            torch._assert_async(
                ((token_type_ids >= 0) & (token_type_ids < types)).all(),
                f"token_type_ids hold a segment outside this model's {types} segment types; pass the tokenizer's "
                "token_type_ids, or none.",
            )

    def real_tokens(self, attention_mask, batch: int, seq_len: int) -> torch.Tensor | None:
        """The [B, T] boolean mask of real tokens, or None when every token is real (known only where reading the
        mask back costs no synchronisation; on an accelerator an all-ones mask stays a mask, and its checks are
        device asserts)."""
        if attention_mask is None:
            return None
        if tuple(attention_mask.shape) != (batch, seq_len):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but the inputs are [batch, seq_len] = "
                f"[{batch}, {seq_len}]; pass a 0/1 mask with one entry per token (1 = real token, 0 = padding)."
            )
        if not self.checks_may_synchronise(attention_mask.device):
            real = attention_mask == 1
            torch._assert_async(
                ((attention_mask == 0) | real).all(),
                "attention_mask must hold only 0 (padding) and 1 (real token); pass the tokenizer's attention_mask.",
            )
            if self.position.absolute:
                torch._assert_async(
                    ~(real[:, 1:] & ~real[:, :-1]).any(),
                    f"attention_mask has padding before real tokens, which would shift the absolute positions of the "
                    f"'{self.position.name}' encoding; pad on the right.",
                )
            return real
        if bool((attention_mask == 1).all()):
            return None
        if bool(((attention_mask != 0) & (attention_mask != 1)).any()):
            raise ValueError(
                "attention_mask must hold only 0 (padding) and 1 (real token); it holds other values. Pass the "
                "tokenizer's attention_mask, not an additive or scaled mask."
            )
        real = attention_mask == 1
        if self.position.absolute and bool((real[:, 1:] & ~real[:, :-1]).any()):
            raise ValueError(
                f"attention_mask has padding before real tokens, which would shift the absolute positions of the "
                f"'{self.position.name}' encoding; pad on the right (tokenizer.padding_side = 'right')."
            )
        return real

    def document_layout(self, document_ids, batch: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """For blocks that pack several documents (document-aware packing): the [B, T, T] booleans "query and key
        are in the same document" and the [B, T] position of each token inside its document. A document is a run
        of equal `document_ids`; a new one starts wherever the id changes. None without `document_ids`. Computed on
        the device without reading anything back. This dense mask is the CPU path: a GPU kernel could take the same
        segments as a FlexAttention block mask or as varlen sequence offsets."""
        if document_ids is None:
            return None
        if tuple(document_ids.shape) != (batch, seq_len) or document_ids.dtype.is_floating_point:
            raise ValueError(
                f"document_ids must be an integer tensor [batch, seq_len] = [{batch}, {seq_len}], one document index "
                f"per token; got a {document_ids.dtype} tensor of shape {tuple(document_ids.shape)}."
            )
        problem = self.position.document_restart_problem()
        if problem is not None:
            raise ValueError(
                f"document_ids (document-aware packing) cannot be used with the '{self.position.name}' encoding: "
                f"{problem}. Pack without document boundaries for this variant (leave --document_aware_packing off)."
            )
        starts = torch.ones_like(document_ids, dtype=torch.bool)
        starts[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]
        segment = starts.cumsum(-1)
        positions = torch.arange(seq_len, device=document_ids.device)
        first_token = torch.where(starts, positions, 0).cummax(-1).values
        return segment[:, :, None] == segment[:, None, :], positions - first_token

    def visible_keys(self, real: torch.Tensor | None, documents) -> torch.Tensor | None:
        """The keys each query may attend to, as booleans broadcastable to [B, H, T, T]: real keys (not padding) of
        the query's own document. None when every query sees every key."""
        visible = None if real is None else real[:, None, None, :]
        if documents is not None:
            same_document = documents[0][:, None]
            visible = same_document if visible is None else visible & same_document
        return visible

    def attention_bias(self, real: torch.Tensor | None, seq_len: int, device, dtype, documents=None):
        """The float mask every layer adds to its logits: padding and other documents' keys (a large negative
        number) plus the positional bias of bias-route encodings. None when there is neither, which keeps SDPA's
        fastest kernel. With `documents` (`document_layout`), an absolute bias is read at each token's position
        inside its document; a relative one needs nothing more, since i - j is unchanged inside a document."""
        minimum = torch.finfo(dtype).min
        visible = self.visible_keys(real, documents)
        bias = None if visible is None else (~visible).to(dtype) * minimum
        if self.position.route == "bias" and not self.position.reads_hidden_states:
            if self.position.length_dependent and real is not None:
                # One bias per sequence, from its own length: padding must not change what real tokens see.
                positional = self.position.bias(seq_len, device, real_lengths=real.sum(-1))
            elif documents is not None and self.position.absolute:
                query_positions, key_positions = documents[1][:, :, None], documents[1][:, None, :]
                # [H, B, T, T] (or [L, H, B, T, T]) -> [B, H, T, T] (or [L, B, H, T, T]).
                positional = self.position.bias(seq_len, device)[..., query_positions, key_positions].movedim(-3, -4)
            else:
                positional = self.position.bias(seq_len, device)
                # [1, H, T, T] for every sequence, or [L, 1, H, T, T]: one per layer, for every sequence.
                positional = positional[:, None] if self.position.per_layer else positional[None]
            positional = self.floor_bias(positional, visible).to(dtype)
            bias = positional if bias is None else bias + positional
        # Padding plus a very negative bias could overflow to -inf in half precision; -inf rows would give NaN.
        return None if bias is None else bias.clamp(min=minimum)

    def content_bias(self, layer, index: int, hidden_states, real, padding_bias, documents=None):
        """The float mask of layer `index` for an encoding whose bias reads the hidden states: its bias from the
        layer's attention input (what queries and keys are projected from), floored as every bias, plus padding."""
        attention_input = layer.attention_norm(hidden_states) if layer.pre_layer_norm else hidden_states
        positional = self.position.bias_from_hidden_states(attention_input, index, real)
        positional = self.floor_bias(positional, self.visible_keys(real, documents)).to(hidden_states.dtype)
        bias = positional if padding_bias is None else padding_bias + positional
        return bias.clamp(min=torch.finfo(hidden_states.dtype).min)

    def floor_bias(self, positional: torch.Tensor, visible: torch.Tensor | None) -> torch.Tensor:
        """Shift each query's bias so that its largest value over the keys it sees (`visible_keys`) is 0 (softmax
        does not change), then floor it at -50. A key 50 below the row's best has a weight below e^-50 of it, zero at
        float32 precision next to the others, but exp() of logits near -90 yields denormals that slow CPU attention
        by a third."""
        if not self.bias_floor_below_row_max:
            return positional.clamp(min=-50.0)
        if visible is not None:
            row_max = positional.masked_fill(~visible, float("-inf")).amax(-1, keepdim=True)
            row_max = row_max.nan_to_num(neginf=0.0)  # a query that sees no key: nothing to shift
        else:
            row_max = positional.amax(-1, keepdim=True)
        return (positional - row_max).clamp(min=-50.0)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        inputs_embeds=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        document_ids=None,
        **kwargs,
    ):
        """`document_ids` ([B, T] integers, optional): blocks that pack several documents; attention stays inside
        each document (a run of equal ids) and positions restart at 0 at each one (`document_layout`)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        if kwargs.get("position_ids") is not None:
            raise ValueError(
                "position_ids are not supported: positions are always 0..T-1 with right padding, as BERT tokenizers "
                "produce; pad on the right instead of passing position_ids (or pass document_ids to restart them at "
                "each document of a packed block)."
            )
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        if input_ids is not None:
            self.check_input_ids(input_ids, token_type_ids)
        elif inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.config.hidden_size:
            raise ValueError(
                f"inputs_embeds must be [batch, seq_len, hidden_size={self.config.hidden_size}]; got shape "
                f"{tuple(inputs_embeds.shape)}."
            )
        elif token_type_ids is not None:
            self.check_token_type_shape(token_type_ids, tuple(inputs_embeds.shape[:2]))
            if self.checks_may_synchronise(token_type_ids.device):
                self.check_token_type_range(*(int(value) for value in token_type_ids.aminmax()))
            else:
                self.assert_ids_in_range(torch.zeros_like(token_type_ids), token_type_ids)
        batch, seq_len = (input_ids if input_ids is not None else inputs_embeds[..., 0]).shape
        device = input_ids.device if input_ids is not None else inputs_embeds.device
        self.position.check_length(seq_len)
        documents = self.document_layout(document_ids, batch, seq_len)
        positions = randomized_positions(self.config.randomized_positions_range, seq_len, self.training, device)
        if positions is not None and documents is not None:
            raise ValueError(
                "randomized_positions_range and document_ids (document-aware packing) cannot be combined: positions "
                "restart at each document. Use one of them."
            )
        # With randomized positions the tables span the whole range and each token reads its drawn row.
        table_length = seq_len if positions is None else self.config.randomized_positions_range
        token_positions = documents[1] if documents is not None else positions

        dtype = self.embeddings.word_embeddings.weight.dtype
        position_vectors = None
        if self.position.route == "embed":
            position_vectors = self.position.embeddings(table_length, device, dtype)
            if token_positions is not None:
                position_vectors = position_vectors[token_positions]  # each token's row: [T, D] or [B, T, D]
        hidden_states = self.embeddings(input_ids, token_type_ids, inputs_embeds, position_vectors)
        real = self.real_tokens(attention_mask, batch, seq_len)
        if device.type != "cpu":
            self._device_inputs_checked = True
        attention_bias = flex_attention_plan(self, real, document_ids, batch, seq_len, device, output_attentions)
        if attention_bias is None:
            attention_bias = self.attention_bias(real, seq_len, device, hidden_states.dtype, documents)
        layer_context = self.position.layer_context(table_length, device, hidden_states.dtype)
        if token_positions is not None:
            layer_context = self.position.context_at_positions(layer_context, token_positions.expand(batch, seq_len))

        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for index, layer in enumerate(self.layers):
            layer_bias = attention_bias[index] if self.position.per_layer else attention_bias
            if self.position.reads_hidden_states:
                layer_bias = self.content_bias(layer, index, hidden_states, real, layer_bias, documents)
            hidden_states, probabilities = layer(
                hidden_states, layer_bias, self.position, layer_context, output_attentions
            )
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (probabilities,)
        if self.final_norm is not None:
            hidden_states = self.final_norm(hidden_states)
            if output_hidden_states:
                all_hidden_states = all_hidden_states[:-1] + (hidden_states,)

        output = BaseModelOutput(
            last_hidden_state=hidden_states, hidden_states=all_hidden_states, attentions=all_attentions
        )
        return output if return_dict is not False else output.to_tuple()


class PosEncLMHead(nn.Module):
    """BERT's MLM head: dense, activation, LayerNorm, then a decoder tied to the word embeddings."""

    def __init__(self, config: PosEncConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states):
        return self.decoder(self.LayerNorm(self.activation(self.dense(hidden_states)))) + self.bias


class PosEncForMaskedLM(PosEncPreTrainedModel):
    """Encoder plus MLM head. With `labels`, the head runs only on the masked positions (labels != -100): at small
    sizes the vocabulary projection dominates the cost, and the loss is the same as the dense computation. Then
    `logits` holds those positions only, [num_masked, vocab], in row-major order of the batch. Without labels,
    `logits` is the usual [batch, seq_len, vocab] (so the fill-mask pipeline works)."""

    _tied_weights_keys = {"lm_head.decoder.weight": "posenc.embeddings.word_embeddings.weight"}

    def __init__(self, config: PosEncConfig):
        super().__init__(config)
        self.posenc = PosEncModel(config)
        self.lm_head = PosEncLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings):
        self.lm_head.decoder = new_embeddings

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        inputs_embeds=None,
        labels=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        num_items_in_batch=None,
        document_ids=None,
        **kwargs,
    ):
        # document_ids is named here so that Trainer keeps the column of document-aware packed datasets.
        outputs = self.posenc(
            input_ids,
            attention_mask,
            token_type_ids,
            inputs_embeds,
            output_attentions,
            output_hidden_states,
            document_ids=document_ids,
            **kwargs,
        )
        sequence_output = outputs.last_hidden_state
        loss = None
        if labels is None:
            logits = self.lm_head(sequence_output)
        else:
            masked = labels != -100
            # The head runs on the masked tokens only; finding them is the training step's one host-device
            # synchronisation (the count decides the shape), done once for the hidden states and the labels.
            masked_positions = masked.nonzero(as_tuple=True)
            logits = self.lm_head(sequence_output[masked_positions])
            # Trainer passes num_items_in_batch, the masked tokens of the whole step (all devices, all accumulated
            # micro-batches), so that every token weighs the same. A sum over no masked token is 0, not NaN.
            total = masked.sum() if num_items_in_batch is None else torch.as_tensor(num_items_in_batch)
            total = total.clamp(min=1)
            loss = F.cross_entropy(logits.float(), labels[masked_positions], reduction="sum") / total
        output = MaskedLMOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return output if return_dict is not False else output.to_tuple()


def classifier_dropout(config: PosEncConfig) -> float:
    return config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob


class PosEncForSequenceClassification(PosEncPreTrainedModel):
    """Encoder plus a classifier on the first token ([CLS]): dropout, dense + tanh, dropout, linear.
    Regression when num_labels == 1, cross-entropy otherwise (multi-label with problem_type)."""

    accepts_loss_kwargs = False  # the loss is a mean over the batch: Trainer must not rescale it by token counts

    def __init__(self, config: PosEncConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.posenc = PosEncModel(config)
        self.dropout = nn.Dropout(classifier_dropout(config))
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        inputs_embeds=None,
        labels=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        **kwargs,
    ):
        outputs = self.posenc(
            input_ids, attention_mask, token_type_ids, inputs_embeds, output_attentions, output_hidden_states, **kwargs
        )
        pooled = torch.tanh(self.pooler(self.dropout(outputs.last_hidden_state[:, 0])))
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            if self.config.problem_type is None:
                if self.num_labels == 1:
                    self.config.problem_type = "regression"
                elif labels.dtype in (torch.long, torch.int):
                    self.config.problem_type = "single_label_classification"
                else:
                    self.config.problem_type = "multi_label_classification"
            if self.config.problem_type == "regression":
                loss = F.mse_loss(logits.squeeze(-1).float(), labels.float())
            elif self.config.problem_type == "single_label_classification":
                loss = F.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1))
            else:
                loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        output = SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return output if return_dict is not False else output.to_tuple()


class PosEncForTokenClassification(PosEncPreTrainedModel):
    """Encoder plus a linear classifier on every token (dropout, linear), for tagging tasks such as part-of-speech
    tagging or NER. Labels of -100 (sub-words after the first, special tokens, padding) are ignored by the loss."""

    accepts_loss_kwargs = False  # the loss is a mean over labelled tokens: Trainer must not rescale it

    def __init__(self, config: PosEncConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.posenc = PosEncModel(config)
        self.dropout = nn.Dropout(classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        inputs_embeds=None,
        labels=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        **kwargs,
    ):
        outputs = self.posenc(
            input_ids, attention_mask, token_type_ids, inputs_embeds, output_attentions, output_hidden_states, **kwargs
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1), ignore_index=-100)
        output = TokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return output if return_dict is not False else output.to_tuple()


# The shared class behind each head of HEADS (configuration_posenc): suffix -> class.
SHARED_HEADS = {
    "Model": PosEncModel,
    "ForMaskedLM": PosEncForMaskedLM,
    "ForSequenceClassification": PosEncForSequenceClassification,
    "ForTokenClassification": PosEncForTokenClassification,
}


def variant_model_classes(config_class: type[PosEncConfig]) -> dict[str, type]:
    """The classes of one variant, one per head of HEADS: the shared class bound to the variant's config, named so
    that the `auto_map` of a saved config finds it (e.g. PosEncRopeForMaskedLM). Keyed by Auto class name."""
    prefix = config_class.__name__.removesuffix("Config")
    return {
        auto_class: type(
            prefix + suffix,
            (SHARED_HEADS[suffix],),
            {
                "config_class": config_class,
                "_auto_class": auto_class,
                "__module__": __name__,
                "__doc__": f"{SHARED_HEADS[suffix].__doc__}\n\nPositional encoding: {config_class.variant}.",
            },
        )
        for suffix, auto_class in HEADS.items()
    }


# Module-level names (PosEncRopeModel, PosEncRopeForMaskedLM, ...): the saved `auto_map` finds classes by these names.
for _config_class in VARIANTS.values():
    for _model_class in variant_model_classes(_config_class).values():
        globals()[_model_class.__name__] = _model_class
