# robopg: `make demo` runs the main job, `make test` the suite. Each installs into .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install gl demo test lint bench-throughput bench-learning clean

install: $(STAMP)

# torch first and pinned: its CPU build lies on this machine's disk, while an open range in a fresh venv
# would download a multi-GB CUDA build. The extras' `torch>=2.4` is then already satisfied.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install --quiet torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install --quiet -e ".[train,video,plot,wandb,mlflow,dev]" 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import torch, mujoco, gymnasium_robotics, onnxruntime, stable_baselines3, imageio_ffmpeg, matplotlib, wandb, mlflow"
	touch $(STAMP)

# The video tests render offscreen; on a machine without a GPU that needs OSMesa (Debian/Ubuntu: libosmesa6).
# Installed here when missing and apt-get can (root); otherwise the video tests fail with this install hint.
gl:
	@ldconfig -p 2>/dev/null | grep -q libOSMesa || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing libosmesa6 (OSMesa) for the offscreen rendering tests"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6 >/dev/null; } \
	      || echo "warning: apt-get could not install libosmesa6; the video tests will fail"; \
	  else echo "warning: no OSMesa; the video tests need it: apt-get install libosmesa6"; fi; }

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP) gl
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check robopg envs policies_export scripts tests

bench-throughput: $(STAMP)
	$(PY) scripts/bench_throughput.py

bench-learning: $(STAMP)
	$(PY) scripts/bench_learning.py

clean:
	rm -rf $(VENV) runs build *.egg-info
