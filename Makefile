# robopg: `make demo` runs the main job, `make test` the suite. Each installs into .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint bench-throughput bench-learning clean

install: $(STAMP)

# torch first and pinned: its CPU build lies on this machine's disk, while an open range in a fresh venv
# would download a multi-GB CUDA build. The extras' `torch>=2.4` is then already satisfied.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install --quiet torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install --quiet -e ".[train,dev]" 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import torch, mujoco, gymnasium_robotics, onnxruntime, stable_baselines3"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check robopg envs policies_export scripts tests

bench-throughput: $(STAMP)
	$(PY) scripts/bench_throughput.py

bench-learning: $(STAMP)
	$(PY) scripts/bench_learning.py

clean:
	rm -rf $(VENV) runs build *.egg-info
