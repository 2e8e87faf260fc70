"""A micro study spec for the tests: tiny models, a few steps, the stdlib corpus, 32-token blocks."""

import copy

import yaml

MICRO = {
    "name": "micro",
    "seeds": [1],
    "pretraining": {
        "size": "tiny",
        "corpus": "stdlib",
        "max_seq_length": 32,
        "vocab_size": 500,
        "steps": 4,
        "batch_size": 8,
        "config_overrides": "hidden_size=32,intermediate_size=64",
        "measure_every": 4,
    },
    "runs": [{"variant": "rope"}, {"variant": "alibi"}, {"name": "att", "variant": "attenuated"}],
    "evaluations": {},
    "report": {"bootstrap": 200},
}


def micro_spec(**changes) -> dict:
    """A deep copy of MICRO with top-level keys replaced."""
    values = copy.deepcopy(MICRO)
    values.update(copy.deepcopy(changes))
    return values


def write_spec(path, values) -> str:
    path.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
    return str(path)
