# lmf-gs: `make demo` (set-up + the main job on a synthetic scene), `make test` (set-up + tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_ROOT := data/demo
DEMO_VID := SYN_DEMO

.PHONY: setup test demo lint bench clean

setup: $(STAMP)

# torch first and pinned (the local CPU build); an unpinned torch would pull GBs of CUDA packages
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	@$(PY) -c "import open3d" 2>/dev/null && command -v chromium >/dev/null || { \
	  echo "open3d needs Debian's libusb-1.0-0, the viewer's browser test Debian's chromium:"\
	    "installing them"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	    $$SUDO apt-get install -y -qq libusb-1.0-0 chromium >/dev/null; }
	$(PY) -c "import open3d, torch, gsplat; print('set-up ok: torch', torch.__version__)"
	touch $(STAMP)

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .

# synth -> train -> refine (TR + LMF) -> evaluate -> one table; `--overwrite` keeps the
# previous demo run as gs.previous. One torch thread unless set: as fast as two on this model
# size, and the printed numbers are bit-identical run to run (they depend on the thread count)
demo: export OMP_NUM_THREADS ?= 1
demo: setup
	$(VENV)/bin/lmf-gs synth $(DEMO_ROOT) --vid $(DEMO_VID) --frames 120 --seed 0
	$(VENV)/bin/lmf-gs train --scene $(DEMO_VID) --data-root $(DEMO_ROOT) --out runs/demo --overwrite
	$(VENV)/bin/lmf-gs evaluate --scene $(DEMO_VID) --method gs --data-root $(DEMO_ROOT) --out runs/demo
	$(VENV)/bin/lmf-gs refine --scene $(DEMO_VID) --data-root $(DEMO_ROOT) --out runs/demo
	$(VENV)/bin/lmf-gs evaluate --scene $(DEMO_VID) --method mg --data-root $(DEMO_ROOT) --out runs/demo
	$(VENV)/bin/lmf-gs report --scene $(DEMO_VID) --out runs/demo

bench: setup
	$(PY) benchmarks/bench_render.py

# cost against video length (synthetic 100 / 1,000 / 4,000 frames): ms per training step, share
# of a step waiting for data, peak RSS, data-path throughput; one torch thread unless set
.PHONY: bench-scale
bench-scale: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) benchmarks/bench_scale.py

clean:
	rm -rf $(VENV) runs/demo $(DEMO_ROOT)

# what benchmarks/gpu_check.sh carries to a GPU machine (docs/gpu.md): the wheels it lacks
# (build/wheels, CPython 3.12) and the synthetic SYN_1K video it cannot render without open3d
# (build/gpu_data, 1,000 frames, written once)
.PHONY: gpu-wheels
gpu-wheels: setup
	bash benchmarks/gpu_prepare.sh
