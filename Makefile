# Two commands set up a fresh machine: `make demo` (pretrain a tiny variant) and `make test`.
# Both create .venv with the CPU PyTorch pinned for CI; users with GPUs install their own torch first.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0

$(VENV)/.installed: setup.cfg requirements-test.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -r requirements-test.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

demo: $(VENV)/.installed
	$(PY) examples/pretrain.py --variant attenuated --attenuation_strength 0.5 0.05 0.005 0.0005 \
		--output_dir outputs/demo-attenuated --overwrite_output_dir

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_training_step.py
	$(PY) benchmarks/bench_metrics.py

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: install test demo bench format
