"""Builds a variant around a positional-encoding class defined outside this package: its config class (the encoding's
parameters on top of BERT's), one model class per head of `HEADS`, and its entries in `VARIANTS` and `ENCODINGS`.

Hub code: copied next to every saved model of such an encoding, with the file that defines the encoding (its imports
of hf_posenc rewritten to these flat files). That file calls `register_encoding` when it is imported, so a Hub user's
`from_pretrained(..., trust_remote_code=True)` rebuilds the same classes without hf_posenc. hf_posenc's own
`register_encoding` (hf_posenc/plugins.py) checks the encoding first, then builds it here.
"""

import inspect
import re
import shutil
import sys
from pathlib import Path

from .configuration_posenc import HEADS, VARIANTS, PosEncConfig
from .modeling_posenc import variant_model_classes
from .positional import ENCODINGS

# The kinds of value an encoding parameter may have: what config.json, command-line flags and --config_overrides carry.
PARAMETER_TYPES = (bool, int, float, str)
RELATIVE_IMPORT = re.compile(r"^\s*from\s+\.(\w+)\s+import", flags=re.MULTILINE)


def register_encoding(name, encoding_class=None, *, parameters=None):
    """Make `encoding_class` the variant `name`; as a decorator, `@register_encoding(name, parameters={...})`.
    Returns the encoding class."""
    if encoding_class is None:
        return lambda decorated: register_encoding(name, decorated, parameters=parameters)
    build_variant(name, encoding_class, dict(parameters or {}))
    return encoding_class


def class_prefix(name: str) -> str:
    """ "gaussian_window" -> "PosEncGaussianWindow", the prefix of the variant's class names."""
    return "PosEnc" + "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def defining_file(encoding_class) -> Path | None:
    """The .py file whose import defines `encoding_class`, or None (an interactive session)."""
    module = sys.modules.get(encoding_class.__module__)
    file = getattr(module, "__file__", None)
    return Path(file) if file else None


def build_variant(name: str, encoding_class, parameters: dict, code_text: str | None = None):
    """Build the variant's classes, put them in the module that defines the encoding (where a saved config's
    `auto_map` looks for them) and add the variant to `VARIANTS` and `ENCODINGS`. `code_text` is the text to save as
    that module's file (by default the file as it is). Returns the config class and {Auto class name: model class}."""
    module = sys.modules[encoding_class.__module__]
    file = defining_file(encoding_class)
    code = (file.name, file.read_text(encoding="utf-8") if code_text is None else code_text)
    encoding_class.name = name
    config_class = build_config_class(name, parameters, file.stem, code)
    config_class.__module__ = config_class.model_classes_module = module.__name__
    model_classes = variant_model_classes(config_class)
    for built in (config_class, *model_classes.values()):
        built.__module__ = module.__name__
        setattr(module, built.__name__, built)
    VARIANTS[name] = config_class
    ENCODINGS[name] = encoding_class
    return config_class, model_classes


def build_config_class(name: str, parameters: dict, module_stem: str, code: tuple[str, str]):
    """The config class of variant `name`: `parameters` (field -> default) as keyword arguments whose values must
    have the default's type; it saves the encoding's code next to config.json."""
    defaults = dict(parameters)

    def __init__(self, **kwargs):
        for field, default in defaults.items():
            value = kwargs.pop(field, default)
            require_parameter_type(name, field, value, default)
            setattr(self, field, value)
        PosEncConfig.__init__(self, **kwargs)

    # A real signature (field=default, ...): the pretraining flags and the study read parameters from it.
    __init__.__signature__ = inspect.Signature(
        [
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            *(
                inspect.Parameter(
                    field, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=type(default)
                )
                for field, default in defaults.items()
            ),
            inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
        ]
    )

    @classmethod
    def hub_auto_map(cls) -> dict[str, str]:
        prefix = cls.__name__.removesuffix("Config")
        return {
            "AutoConfig": f"{module_stem}.{cls.__name__}",
            **{auto_class: f"{module_stem}.{prefix}{suffix}" for suffix, auto_class in HEADS.items()},
        }

    def save_pretrained(self, save_directory, *args, **kwargs):
        PosEncConfig.save_pretrained(self, save_directory, *args, **kwargs)
        # transformers copied the encoding's file as it is on disk, and (from hf_posenc) without the flat files it
        # needs: write the Hub form of it and its flat siblings.
        copy_encoding_code(code, Path(save_directory))

    return type(
        class_prefix(name) + "Config",
        (PosEncConfig,),
        {
            "model_type": f"posenc_{name}",
            "variant": name,
            "encoding_parameters": defaults,
            "encoding_code_file": code[0],
            "__init__": __init__,
            "hub_auto_map": hub_auto_map,
            "save_pretrained": save_pretrained,
            "__doc__": f"Config of the '{name}' encoding (registered with register_encoding); its parameters: "
            f"{', '.join(defaults) or 'none'}.",
        },
    )


def require_parameter_type(variant: str, field: str, value, default) -> None:
    expected = type(default)
    accepted = (int, float) if expected is float else (expected,)
    if isinstance(value, bool) != (expected is bool) or not isinstance(value, accepted):
        raise ValueError(
            f"{field} (a parameter of the '{variant}' encoding) must be {expected.__name__} like its default "
            f"{default!r}; got {value!r}."
        )


def hub_code_files(text: str, folder: Path) -> list[Path]:
    """The flat files of `folder` that `text` needs: its `from .x import y` imports, followed recursively."""
    needed, pending = [], RELATIVE_IMPORT.findall(text)
    while pending:
        file = folder / f"{pending.pop()}.py"
        if file in needed or not file.is_file():
            continue
        needed.append(file)
        pending += RELATIVE_IMPORT.findall(file.read_text(encoding="utf-8"))
    return needed


def copy_encoding_code(code: tuple[str, str], save_directory: Path) -> None:
    file_name, text = code
    target = save_directory / file_name
    if target.is_symlink():
        target.unlink()  # replaced, never written through
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    for needed in hub_code_files(text, Path(__file__).parent):
        if not (save_directory / needed.name).exists() or not (save_directory / needed.name).samefile(needed):
            shutil.copyfile(needed, save_directory / needed.name)
