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
    """Multi-head self-attention. SDPA (with the positional bias folded into its float mask) unless the encoding
    needs query/key-dependent position scores, the model is set to eager, or attention weights are requested."""

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
            query, key = positional.rotate(query, key, layer_context)
        dropout = self.dropout_prob if self.training else 0.0

        eager = output_attentions or positional.route == "score" or self.config._attn_implementation == "eager"
        if not eager:
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

    def __init__(self, config: PosEncConfig):
        super().__init__(config)
        self.position = ENCODINGS[config.variant](config)
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

    def check_input_ids(self, input_ids: torch.Tensor) -> None:
        """Refuse ids that nn.Embedding would reject with an unhelpful message (or, on a GPU, a device assert)."""
        if input_ids.dim() != 2 or input_ids.dtype.is_floating_point or input_ids.dtype in (torch.bool, torch.uint8):
            raise ValueError(
                f"input_ids must be a 2-D integer tensor [batch, seq_len]; got a {input_ids.dim()}-D "
                f"{input_ids.dtype} tensor of shape {tuple(input_ids.shape)}. Pass the tokenizer's input_ids "
                "(return_tensors='pt'), not embeddings or probabilities."
            )
        if input_ids.numel() == 0:
            raise ValueError(f"input_ids of shape {tuple(input_ids.shape)} hold no token; pass at least one token.")
        lowest, highest = (int(value) for value in input_ids.aminmax())
        if lowest < 0 or highest >= self.config.vocab_size:
            raise ValueError(
                f"input_ids hold token id {lowest if lowest < 0 else highest}, outside this model's vocabulary of "
                f"{self.config.vocab_size} tokens; use the tokenizer the model was trained with."
            )

    def real_tokens(self, attention_mask, batch: int, seq_len: int) -> torch.Tensor | None:
        """The [B, T] boolean mask of real tokens, or None when every token is real."""
        if attention_mask is None:
            return None
        if tuple(attention_mask.shape) != (batch, seq_len):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but the inputs are [batch, seq_len] = "
                f"[{batch}, {seq_len}]; pass a 0/1 mask with one entry per token (1 = real token, 0 = padding)."
            )
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

    def attention_bias(self, real: torch.Tensor | None, seq_len: int, device, dtype):
        """The float mask every layer adds to its logits: padding (a large negative number on padded keys) plus the
        positional bias of bias-route encodings. None when there is neither, which keeps SDPA's fastest kernel."""
        minimum = torch.finfo(dtype).min
        bias = None if real is None else (~real)[:, None, None, :].to(dtype) * minimum
        if self.position.route == "bias":
            if self.position.length_dependent and real is not None:
                # One bias per sequence, from its own length: padding must not change what real tokens see.
                positional = self.position.bias(seq_len, device, real_lengths=real.sum(-1))
            else:
                positional = self.position.bias(seq_len, device)
                # [1, H, T, T] for every sequence, or [L, 1, H, T, T]: one per layer, for every sequence.
                positional = positional[:, None] if self.position.per_layer else positional[None]
            positional = self.floor_bias(positional, real).to(dtype)
            bias = positional if bias is None else bias + positional
        # Padding plus a very negative bias could overflow to -inf in half precision; -inf rows would give NaN.
        return None if bias is None else bias.clamp(min=minimum)

    def floor_bias(self, positional: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        """Shift each query's bias so that its largest value over real keys is 0 (softmax does not change), then
        floor it at -50. A key 50 below the row's best has a weight below e^-50 of it, zero at float32 precision
        next to the others, but exp() of logits near -90 yields denormals that slow CPU attention by a third."""
        if not self.bias_floor_below_row_max:
            return positional.clamp(min=-50.0)
        if real is not None:
            row_max = positional.masked_fill(~real[:, None, None, :], float("-inf")).amax(-1, keepdim=True)
            row_max = row_max.nan_to_num(neginf=0.0)  # a sequence with no real key: nothing to shift
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
        **kwargs,
    ):
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        if kwargs.get("position_ids") is not None:
            raise ValueError(
                "position_ids are not supported: positions are always 0..T-1 with right padding, as BERT tokenizers "
                "produce; pad on the right instead of passing position_ids."
            )
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        if input_ids is not None:
            self.check_input_ids(input_ids)
        elif inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.config.hidden_size:
            raise ValueError(
                f"inputs_embeds must be [batch, seq_len, hidden_size={self.config.hidden_size}]; got shape "
                f"{tuple(inputs_embeds.shape)}."
            )
        batch, seq_len = (input_ids if input_ids is not None else inputs_embeds[..., 0]).shape
        device = input_ids.device if input_ids is not None else inputs_embeds.device
        self.position.check_length(seq_len)

        dtype = self.embeddings.word_embeddings.weight.dtype
        position_vectors = self.position.embeddings(seq_len, device, dtype) if self.position.route == "embed" else None
        hidden_states = self.embeddings(input_ids, token_type_ids, inputs_embeds, position_vectors)
        real = self.real_tokens(attention_mask, batch, seq_len)
        attention_bias = self.attention_bias(real, seq_len, device, hidden_states.dtype)
        layer_context = self.position.layer_context(seq_len, device, hidden_states.dtype)

        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for index, layer in enumerate(self.layers):
            layer_bias = attention_bias[index] if self.position.per_layer else attention_bias
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
        **kwargs,
    ):
        outputs = self.posenc(
            input_ids, attention_mask, token_type_ids, inputs_embeds, output_attentions, output_hidden_states, **kwargs
        )
        sequence_output = outputs.last_hidden_state
        loss = None
        if labels is None:
            logits = self.lm_head(sequence_output)
        else:
            masked = labels != -100
            logits = self.lm_head(sequence_output[masked])
            # Trainer passes num_items_in_batch, the masked tokens of the whole step (all devices, all accumulated
            # micro-batches), so that every token weighs the same. A sum over no masked token is 0, not NaN.
            total = masked.sum() if num_items_in_batch is None else torch.as_tensor(num_items_in_batch)
            total = total.clamp(min=1)
            loss = F.cross_entropy(logits.float(), labels[masked], reduction="sum") / total
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
