"""Your own positional encoding, without editing hf_posenc: `register_encoding` and the modules that call it.

In your own file, subclass the base class of the encoding's route and register it::

    from hf_posenc import register_encoding
    from hf_posenc.positional_bias import BiasEncoding

    @register_encoding("gaussian_window", parameters={"gaussian_window_init_width": 4.0})
    class GaussianWindowBias(BiasEncoding):
        ...

Registration checks the class (its route's methods, their shapes on a tiny model, the modules its file imports)
and makes the variant exactly like a built-in one: a config class and a model class per head, registered with the
Auto classes, in `hf_posenc.VARIANTS` and `hf_posenc.ENCODINGS`. A saved model carries the file (its imports of
hf_posenc rewritten to the flat Hub-code files), so it loads with `trust_remote_code=True` where neither hf_posenc
nor your module is installed.

The commands find your module through the environment variable `HF_POSENC_ENCODINGS` (module names or .py paths,
separated by the path separator `:`), imported by `import hf_posenc`; processes started from there inherit it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import sys
import tempfile
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig
from transformers.dynamic_module_utils import get_imports
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from . import encoding_registry
from .configuration_posenc import VARIANTS, PosEncConfig
from .positional import ENCODINGS, PositionalEncoding, RelativeScoreEncoding, ScoreEncoding
from .positional_bias import BiasEncoding

ENVIRONMENT_VARIABLE = "HF_POSENC_ENCODINGS"
BUILTIN_VARIANTS = frozenset(VARIANTS)
PACKAGE_FOLDER = Path(__file__).parent
# The flat files a saved model carries: the registration module and everything it imports from its folder.
HUB_CODE_MODULES = tuple(
    file.stem for file in encoding_registry.hub_code_files("from .encoding_registry import x", PACKAGE_FOLDER)
)
# The method each route's encoder calls, and the classes whose version of it only raises NotImplementedError.
ROUTE_METHODS = {"none": (), "embed": ("embeddings",), "rotate": ("rotate",), "bias": ("bias",), "score": ("scores",)}
ROUTE_BASES = (PositionalEncoding, BiasEncoding, ScoreEncoding, RelativeScoreEncoding)
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
# The tiny model every registration runs (sizes of the test suite's models).
CHECK_SIZES = dict(
    vocab_size=64,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=48,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
CHECK_LENGTH = 7


def register_encoding(name: str, encoding_class: type[PositionalEncoding] | None = None, *, parameters=None):
    """Make `encoding_class` the variant `name` (model type `posenc_<name>`), as a call or as a decorator
    (``@register_encoding(name, parameters=...)``); returns the class.

    `parameters` maps each config field of the encoding to its default, a bool, int, float or str
    (``{"gaussian_window_init_width": 4.0}``); the encoding reads them from the config it is built with, and they are
    flags of ``hf-posenc pretrain`` when the module is imported first (``HF_POSENC_ENCODINGS``). Registering the same
    class again (a module imported twice) replaces it. A malformed encoding raises a ValueError that names the problem:
    a name taken by a built-in variant or another encoding, a missing method of its route, a result of the wrong
    shape on a tiny model, an import that a Hub user would not have."""
    if encoding_class is None:
        return lambda decorated: register_encoding(name, decorated, parameters=parameters)
    where = f"register_encoding({name!r})"
    check_name(name, encoding_class, where)
    parameters = check_parameters(dict(parameters or {}) if isinstance(parameters, dict) else parameters, where)
    check_route(encoding_class, where)
    file = check_defining_file(encoding_class, where)
    code_text = hub_form(file.read_text(encoding="utf-8"), file, where)
    if not registers_itself(code_text, name):
        code_text += registration_footer(name, encoding_class, parameters)
    check_hub_imports(code_text, file, where)
    previous = VARIANTS.get(name), ENCODINGS.get(name)
    config_class, model_classes = encoding_registry.build_variant(name, encoding_class, parameters, code_text)
    try:
        check_on_tiny_model(encoding_class, config_class, model_classes["AutoModelForMaskedLM"], where)
    except ValueError:
        for registry, entry in zip((VARIANTS, ENCODINGS), previous):
            registry.pop(name) if entry is None else registry.__setitem__(name, entry)
        raise
    register_with_auto_classes(config_class, model_classes)
    return encoding_class


def register_with_auto_classes(config_class: type[PosEncConfig], model_classes: dict[str, type]) -> None:
    """Register a variant's config with AutoConfig and each model class with its Auto class: the built-in variants
    (at `import hf_posenc`) and yours alike."""
    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    for auto_name, model_class in model_classes.items():
        getattr(transformers, auto_name).register(config_class, model_class, exist_ok=True)


# ----------------------------------------------------------------------------------------------------- checks
def check_name(name, encoding_class, where: str) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{where}: the name must be lowercase letters, digits and underscores, starting with a letter (it becomes "
            "the model type posenc_<name>); e.g. 'gaussian_window'."
        )
    if name in BUILTIN_VARIANTS:
        raise ValueError(
            f"{where}: '{name}' is a built-in variant of hf_posenc; choose another name for your encoding "
            f"(the built-in ones: {', '.join(sorted(BUILTIN_VARIANTS))})."
        )
    registered = ENCODINGS.get(name)
    if registered is not None and not same_class(registered, encoding_class):
        raise ValueError(
            f"{where}: '{name}' is already the name of {registered.__qualname__} from {registered.__module__}; choose "
            "another name for this encoding."
        )
    model_type = f"posenc_{name}"
    # A model type of transformers or another library; one of ours is a registration of this name being replaced.
    if model_type in CONFIG_MAPPING and not issubclass(CONFIG_MAPPING[model_type], PosEncConfig):
        raise ValueError(f"{where}: transformers already has a model type {model_type!r}; choose another name.")


def same_class(registered: type, candidate: type) -> bool:
    """The same class defined by the same file: a module imported twice (under its module name and as a path)."""
    return registered.__qualname__ == candidate.__qualname__ and encoding_registry.defining_file(
        registered
    ) == encoding_registry.defining_file(candidate)


def check_parameters(parameters, where: str) -> dict:
    if not isinstance(parameters, dict):
        raise ValueError(f"{where}: parameters must be a dict of field name -> default value; got {parameters!r}.")
    taken = set(PosEncConfig().to_dict())
    for field, default in parameters.items():
        if not isinstance(field, str) or not field.isidentifier():
            raise ValueError(f"{where}: parameter name {field!r} is not a Python identifier; e.g. 'window_width'.")
        if field in taken or hasattr(PosEncConfig, field):
            raise ValueError(
                f"{where}: parameter {field!r} is already a field of every hf_posenc config; give it a name of its own "
                "(prefix it with the encoding's name)."
            )
        if not isinstance(default, encoding_registry.PARAMETER_TYPES):
            raise ValueError(
                f"{where}: parameter {field!r} has the default {default!r}; a default must be a bool, int, float or "
                "str (what config.json and the command-line flags carry)."
            )
    return parameters


def check_route(encoding_class, where: str) -> None:
    if not (isinstance(encoding_class, type) and issubclass(encoding_class, PositionalEncoding)):
        raise ValueError(
            f"{where}: {encoding_class!r} is not a subclass of a route's base class; subclass BiasEncoding "
            "(hf_posenc.positional_bias), ScoreEncoding (hf_posenc.positional) or PositionalEncoding "
            "(hf_posenc.positional_base, with route 'embed' or 'rotate')."
        )
    label = f"{where}: {encoding_class.__name__}"
    route = encoding_class.route
    if route not in ROUTE_METHODS:
        raise ValueError(f"{label} has route {route!r}; set route to one of {', '.join(map(repr, ROUTE_METHODS))}.")
    if "." in encoding_class.__qualname__:
        raise ValueError(f"{label} is defined inside a function or class; define it at the top level of its module.")
    methods = ROUTE_METHODS[route] + (("bias_from_hidden_states",) if encoding_class.reads_hidden_states else ())
    if issubclass(encoding_class, RelativeScoreEncoding):  # its scores() is built from relative_scores()
        methods = ("relative_scores",)
    for method in methods:
        owner = next((base for base in encoding_class.__mro__ if method in base.__dict__), None)
        if owner is None or owner in ROUTE_BASES:
            raise ValueError(
                f"{label} has route '{route}' but does not define {method}(); implement it (see 'Add your own "
                "encoding' in docs/variants.md for its arguments and the shape it returns)."
            )
    if not isinstance(encoding_class.paper, str) or not encoding_class.paper.strip():
        raise ValueError(
            f"{label} has no `paper`; set paper = '...' to the source of the encoding (the card shows it)."
        )
    for flag in ("symmetric", "extrapolates", "absolute", "reads_hidden_states", "per_layer", "length_dependent"):
        if not isinstance(getattr(encoding_class, flag), bool):
            raise ValueError(f"{label}.{flag} must be True or False; got {getattr(encoding_class, flag)!r}.")


def check_defining_file(encoding_class, where: str) -> Path:
    file = encoding_registry.defining_file(encoding_class)
    label = f"{where}: {encoding_class.__name__}"
    if file is None or file.suffix != ".py" or not file.is_file():
        raise ValueError(
            f"{label} is not defined in a .py file; put it in a module so that a saved model can carry it."
        )
    if file.stem == "__init__":
        raise ValueError(f"{label} is defined in a package's __init__.py; move it to a module file of its own.")
    if file.parent == PACKAGE_FOLDER or file.stem in HUB_CODE_MODULES:
        raise ValueError(
            f"{label} is defined in {file.name}, the name of one of hf_posenc's Hub-code files it is saved next to; "
            "rename your file."
        )
    return file


def hub_form(text: str, file: Path, where: str) -> str:
    """`text` with each `from hf_posenc[.module] import name` rewritten to the flat file that defines `name`
    (`from .positional_bias import BiasEncoding`), line numbers kept. Anything else of hf_posenc is refused."""
    lines = text.splitlines(keepends=True)
    edits = []
    for node in ast.walk(ast.parse(text, filename=str(file))):
        if isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "hf_posenc" for alias in node.names):
            raise ValueError(
                f"{where}: {file.name} line {node.lineno} imports hf_posenc as a package, which a saved model does not "
                "carry; import the names instead (from hf_posenc import register_encoding; from "
                "hf_posenc.positional_bias import BiasEncoding)."
            )
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "hf_posenc":
            edits.append((node, flat_imports(node, file, where)))
    for node, replacement in sorted(edits, key=lambda edit: (edit[0].lineno, edit[0].col_offset), reverse=True):
        start, end = node.lineno - 1, node.end_lineno - 1
        joined = lines[start][: node.col_offset] + replacement + lines[end][node.end_col_offset :]
        lines[start : end + 1] = [joined + "\n" * (end - start)]
    return "".join(lines)


def flat_imports(node: ast.ImportFrom, file: Path, where: str) -> str:
    module = node.module.removeprefix("hf_posenc").removeprefix(".")
    if module and module not in HUB_CODE_MODULES:
        raise ValueError(
            f"{where}: {file.name} line {node.lineno} imports hf_posenc.{module}, which a saved model does not carry; "
            f"an encoding's file may import from hf_posenc's flat Hub-code files only ({', '.join(HUB_CODE_MODULES)})."
        )
    by_module: dict[str, list[str]] = {}
    for alias in node.names:
        source = module or defining_hub_module(alias.name)
        if source is None or alias.name == "*":
            raise ValueError(
                f"{where}: {file.name} line {node.lineno} imports {alias.name} from hf_posenc, which none of its "
                f"Hub-code files ({', '.join(HUB_CODE_MODULES)}) defines; import it from one of them by name."
            )
        by_module.setdefault(source, []).append(alias.name + (f" as {alias.asname}" if alias.asname else ""))
    return "; ".join(f"from .{source} import {', '.join(names)}" for source, names in by_module.items())


def defining_hub_module(name: str) -> str | None:
    """The Hub-code file a name of hf_posenc comes from: the one that defines it, else the first that has it."""
    having = [stem for stem in HUB_CODE_MODULES if hasattr(importlib.import_module(f"hf_posenc.{stem}"), name)]
    import hf_posenc

    defined_in = getattr(getattr(hf_posenc, name, None), "__module__", "") or ""
    preferred = defined_in.removeprefix("hf_posenc.")
    return preferred if preferred in having else next(iter(having), None)


def registers_itself(text: str, name: str) -> bool:
    """Whether the file calls register_encoding(name, ...) itself (as a call or a decorator) when imported."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call) and node.args:
            function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            first = node.args[0]
            if function == "register_encoding" and isinstance(first, ast.Constant) and first.value == name:
                return True
    return False


def registration_footer(name: str, encoding_class, parameters: dict) -> str:
    """The registration a saved file needs when the encoding was registered from another module."""
    return (
        "\n\n# Added by hf_posenc when the model was saved: the encoding was registered outside this file.\n"
        "from .encoding_registry import register_encoding as _register_encoding  # noqa: E402\n\n"
        f"_register_encoding({name!r}, {encoding_class.__name__}, parameters={parameters!r})\n"
    )


def check_hub_imports(code_text: str, file: Path, where: str) -> None:
    """Every module the saved file imports must be one a Hub user has: torch, transformers or the standard library
    (transformers' own reading of the imports, which refuses to load the model otherwise)."""
    with tempfile.TemporaryDirectory(prefix="hf_posenc-encoding-") as folder:
        copy = Path(folder) / file.name
        copy.write_text(code_text, encoding="utf-8")
        imported = get_imports(copy)
    foreign = sorted(set(imported) - {"torch", "transformers"} - set(sys.stdlib_module_names))
    if foreign:
        raise ValueError(
            f"{where}: {file.name} imports {', '.join(foreign)}, which a Hub user loading the model with "
            "trust_remote_code would have to install; use only torch, transformers and the standard library in the "
            "file that defines the encoding (move the rest into the class, or into another script)."
        )
    for relative in encoding_registry.RELATIVE_IMPORT.findall(code_text):
        if relative not in HUB_CODE_MODULES:
            raise ValueError(
                f"{where}: {file.name} imports .{relative}, a file a saved model does not carry; keep the encoding in "
                "one file that imports only torch, transformers, the standard library and hf_posenc's Hub-code files."
            )


def check_on_tiny_model(encoding_class, config_class, masked_lm_class, where: str) -> None:
    """Run the route's method and a whole model on a tiny config: a wrong shape or a crash is found here, not after
    the corpus is prepared."""
    label = f"{where}: {encoding_class.__name__}"
    try:
        config = config_class(**CHECK_SIZES)
        encoding = encoding_class(config)
    except Exception as error:
        raise ValueError(
            f"{label} cannot be built from a tiny config ({one_line(error)}); fix its __init__."
        ) from error
    heads, length, batch = config.num_attention_heads, CHECK_LENGTH, 2
    query = torch.randn(batch, heads, length, config.head_dim)
    expected = {
        "embed": ("embeddings(seq_len, device, dtype)", (length, config.hidden_size), "[seq_len, hidden_size]"),
        "score": ("scores(query, key, layer_index, context)", (batch, heads, length, length), "[batch, heads, T, T]"),
    }
    if encoding_class.reads_hidden_states:
        call = "bias_from_hidden_states(hidden, layer_index, real)"
        expected["bias"] = (call, (batch, heads, length, length), "[batch, heads, T, T]")
    elif encoding_class.per_layer:
        shape = (config.num_hidden_layers, heads, length, length)
        expected["bias"] = ("bias(seq_len, device)", shape, "[layers, heads, T, T] (per_layer)")
    else:
        expected["bias"] = ("bias(seq_len, device)", (heads, length, length), "[heads, T, T]")
    try:
        with torch.no_grad():
            encoding.eval()
            context = encoding.layer_context(length, "cpu", torch.float32)
            if encoding.route == "embed":
                result = encoding.embeddings(length, "cpu", torch.float32)
            elif encoding.route == "score":
                result = encoding.scores(query, query.clone(), 0, context)
            elif encoding.route == "bias" and encoding.reads_hidden_states:
                result = encoding.bias_from_hidden_states(torch.randn(batch, length, config.hidden_size), 0, None)
            elif encoding.route == "bias":
                result = encoding.bias(length, "cpu")
            elif encoding.route == "rotate":
                layer_zero = context[0] if encoding.per_layer_context else context
                result = encoding.rotate(query, query.clone(), layer_zero)
                pair = isinstance(result, tuple) and len(result) == 2
                if not pair or not all(torch.is_tensor(part) and part.shape == query.shape for part in result):
                    raise ValueError(
                        f"{label}.rotate(query, key, context) must return (query, key), each shaped like its input "
                        f"[batch, heads, T, head_dim] = {list(query.shape)}; fix rotate()."
                    )
                result = None
            else:
                result = None
    except ValueError as error:
        if str(error).startswith(where):
            raise
        raise ValueError(f"{label} fails on a tiny model ({one_line(error)}); fix the class.") from error
    except Exception as error:
        raise ValueError(f"{label} fails on a tiny model ({one_line(error)}); fix the class.") from error
    if encoding.route in expected:
        call, shape, described = expected[encoding.route]
        if not torch.is_tensor(result) or tuple(result.shape) != shape:
            got = tuple(result.shape) if torch.is_tensor(result) else type(result).__name__
            raise ValueError(
                f"{label}.{call} returned {got} for {heads} heads and {length} tokens; the '{encoding.route}' route needs "
                f"{described} = {list(shape)}."
            )
        if not bool(torch.isfinite(result).all()):
            raise ValueError(f"{label}.{call} returned NaN or infinite values on a tiny model; keep its values finite.")
    check_whole_model(masked_lm_class, config, label)


def check_whole_model(masked_lm_class, config, label: str) -> None:
    ids = torch.randint(5, config.vocab_size, (2, CHECK_LENGTH))
    mask = torch.ones_like(ids)
    mask[1, -2:] = 0
    try:
        model = masked_lm_class(config).eval()
        with torch.no_grad():
            fast = model(input_ids=ids, attention_mask=mask).logits
            eager = model(input_ids=ids, attention_mask=mask, output_attentions=True).logits
    except Exception as error:
        raise ValueError(f"{label} fails inside a tiny model ({one_line(error)}); fix the class.") from error
    if not bool(torch.isfinite(fast).all() & torch.isfinite(eager).all()):
        raise ValueError(f"{label} makes a tiny model output NaN or infinite values; keep its values finite.")


def one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


# ---------------------------------------------------------------------------------------------------- modules
def import_encoding_modules(entries, relative_to: str | os.PathLike | None = None) -> list[str]:
    """Import the modules that register encodings: module names (``my_package.my_encoding``) or paths of .py files
    (relative to `relative_to`, default the working directory). Adds them to ``HF_POSENC_ENCODINGS`` so that the
    processes started from here (a study's runs, `accelerate launch` workers) import them too. Returns the variants
    they registered."""
    before = set(VARIANTS)
    loaded = []
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(f"an encoding module must be a module name or a .py path; got {entry!r}.")
        entry = entry.strip()
        if entry.endswith(".py") or os.sep in entry or "/" in entry:
            path = Path(entry) if relative_to is None else Path(relative_to) / entry
            import_file(path.resolve())
            loaded.append(str(path.resolve()))
        else:
            try:
                importlib.import_module(entry)
            except ModuleNotFoundError as error:
                if error.name is None or not entry.startswith(error.name):
                    raise
                raise ValueError(
                    f"cannot import the encoding module {entry!r}: no module named {error.name!r}. Give the path of "
                    "its .py file instead, or put its folder on PYTHONPATH."
                ) from None
            loaded.append(entry)
    listed = [item for item in os.environ.get(ENVIRONMENT_VARIABLE, "").split(os.pathsep) if item]
    os.environ[ENVIRONMENT_VARIABLE] = os.pathsep.join(listed + [item for item in loaded if item not in listed])
    return [name for name in VARIANTS if name not in before]


def import_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"the encoding module {path} does not exist; give the path of the .py file.")
    module_name = path.stem
    loaded = sys.modules.get(module_name)
    if loaded is not None:
        if getattr(loaded, "__file__", None) and Path(loaded.__file__).resolve() == path:
            return
        raise ValueError(
            f"the encoding module {path} is named like the module {module_name!r} that is already imported; rename "
            "the file."
        )
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # before it runs, as an import does: registration looks the module up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise


def import_modules_from_environment() -> None:
    """`import hf_posenc` imports the modules of ``HF_POSENC_ENCODINGS``."""
    entries = [item for item in os.environ.get(ENVIRONMENT_VARIABLE, "").split(os.pathsep) if item.strip()]
    if not entries:
        return
    try:
        import_encoding_modules(entries)
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"{ENVIRONMENT_VARIABLE}={os.environ[ENVIRONMENT_VARIABLE]}: {error}") from error


__all__ = ["ENVIRONMENT_VARIABLE", "import_encoding_modules", "register_encoding"]
