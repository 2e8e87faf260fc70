"""The model config of a pretraining run: size preset, then the variant's flags, then ``--config_overrides``.

Overrides are read like transformers' `PretrainedConfig.update_from_string` ("key=value,key=value"; the field's
default gives the value's type; booleans as true/false), with two differences that make mistakes visible: a field
the config does not have is an error that names the closest field, and every value goes through the config class
again, so the model's own checks (head sizes, w and s, ...) see it.
"""

from __future__ import annotations

import difflib
from dataclasses import fields
from typing import Any

import hf_posenc

from .arguments import SIZE_PRESETS

# Fields that to_dict() reports but that describe the file, not the model: not something to override.
# What update_from_string accepts for a field, by the type of its default.
_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_NOT_OVERRIDABLE = {"model_type", "transformers_version", "_name_or_path", "architectures", "auto_map"}


def parse_config_overrides(variant: str, text: str | None) -> dict[str, Any]:
    """``"num_hidden_layers=6,pre_layer_norm=true"`` -> ``{"num_hidden_layers": 6, "pre_layer_norm": True}``,
    typed by the defaults of `variant`'s config."""
    items = [item.strip() for item in (text or "").split(",") if item.strip()]
    if not items:
        return {}
    config = hf_posenc.config_class_for(variant)()
    known = sorted(set(config.to_dict()) - _NOT_OVERRIDABLE)
    overrides = {}
    for item in items:
        key, separator, value = (part.strip() for part in item.partition("="))
        if not separator or not key or "=" in value:
            raise ValueError(f"--config_overrides item {item!r} is not key=value; write e.g. 'num_hidden_layers=6'.")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"the fields are: {', '.join(known)}."
            raise ValueError(f"--config_overrides: '{key}' is not a field of the '{variant}' config; {hint}")
        default = getattr(config, key)
        try:
            config.update_from_string(f"{key}={value}")
        except (ValueError, TypeError):
            if type(default) not in _KINDS:
                raise ValueError(
                    f"--config_overrides cannot set {key} (its default is {default!r}): it sets fields whose default "
                    "is an integer, a number, true/false or a string."
                ) from None
            raise ValueError(
                f"--config_overrides {key}={value}: {key} takes {_KINDS[type(default)]} (its default is {default!r})."
            ) from None
        overrides[key] = getattr(config, key)
    return overrides


def variant_settings(variant: str, variant_args=None) -> dict[str, Any]:
    """The variant parameters that were set (not None) in `variant_args`; one that belongs to another variant is
    an error. A one-element list (a per-head flag given one value) becomes that value."""
    if variant_args is None:
        return {}
    accepted = set(hf_posenc.config_class_for(variant)().to_dict())
    settings = {}
    for item in fields(variant_args):
        value = getattr(variant_args, item.name)
        if value is None:
            continue
        if item.name not in accepted:
            raise ValueError(f"--{item.name} is not a parameter of the '{variant}' variant.")
        settings[item.name] = value[0] if isinstance(value, list) and len(value) == 1 else value
    return settings


def saved_model_config(model_args, variant_args) -> hf_posenc.PosEncConfig:
    """The config of ``--model_name_or_path``, which must be an hf_posenc masked LM; fills in ``model_args.variant``.
    Flags that would describe another model (a variant, a size, overrides, variant parameters) are refused."""
    from transformers import AutoConfig

    path = model_args.model_name_or_path
    config = AutoConfig.from_pretrained(path)  # hf_posenc's model types are registered: no remote code runs
    variant = next((name for name, cls in hf_posenc.VARIANTS.items() if cls.model_type == config.model_type), None)
    if variant is None:
        raise ValueError(
            f"--model_name_or_path {path} is a {config.model_type!r} model; continuing pretraining takes an hf_posenc "
            f"variant ({', '.join(hf_posenc.VARIANTS)}). To start a new model, leave --model_name_or_path out."
        )
    if model_args.variant not in (None, variant):
        raise ValueError(f"--variant {model_args.variant} contradicts {path}, a '{variant}' model; drop --variant.")
    given = [
        f"--{name}"
        for name in ("size", "config_overrides", "randomized_positions_range")
        if getattr(model_args, name) is not None
    ]
    if variant_args is not None:
        given += [f"--{item.name}" for item in fields(variant_args) if getattr(variant_args, item.name) is not None]
    if given:
        raise ValueError(
            f"{', '.join(given)} would change the model saved in {path}; continuing pretraining keeps its config. "
            "Drop them, or start a new model without --model_name_or_path."
        )
    model_args.variant = variant
    return config


def build_config(model_args, variant_args, vocab_size: int, pad_token_id: int) -> hf_posenc.PosEncConfig:
    """The config to pretrain: the saved model's with ``--model_name_or_path``; otherwise `model_args.size`'s preset,
    the vocabulary, the variant's flags, the overrides."""
    if model_args.model_name_or_path is not None:
        return saved_model_config(model_args, variant_args)
    settings = {
        **SIZE_PRESETS[model_args.size],
        "vocab_size": vocab_size,
        "pad_token_id": pad_token_id,
        **variant_settings(model_args.variant, variant_args),
        **parse_config_overrides(model_args.variant, model_args.config_overrides),
    }
    if model_args.randomized_positions_range is not None:
        settings["randomized_positions_range"] = model_args.randomized_positions_range
    return hf_posenc.create_config(model_args.variant, **settings)
