# mmseg-autodeeplab: set-up, demo and tests. Each target installs first if
# needed, so `make demo` / `make test` work on a fresh machine by themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
DEMO_CONFIG ?= configs/autodeeplab_search/autodeeplab-search_f4-l4_1xb2-30e_demo-cityscapes-64x64.py
DEMO_WORK_DIR ?= work_dirs/demo_search

.PHONY: install demo test test-all clean

install: $(STAMP)

# torch==2.13.0 is pinned exactly: a range would pull a multi-GB CUDA build.
# mmcv-lite by default (minutes); a compiled mmcv already in the venv is kept.
# setuptools <81: mmengine resolves `mmseg::` bases through pkg_resources.
# Extras: deploy (onnx, onnxruntime: tools/export_onnx.py, the onnxruntime
# benchmark column) and tensorboard, so the tests and CI cover them.
$(STAMP): setup.py Makefile mmseg_autodeeplab_mmcv_ext.py mmseg_autodeeplab_mmcv_ext.pth
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip 'setuptools>=77.0.3,<81' wheel
	$(PIP) install -q torch==2.13.0
	$(PY) -c "import mmcv._ext" 2>/dev/null || $(PIP) install -q mmcv-lite==2.1.0
	$(PIP) install -q -e '.[tests,deploy,tensorboard]'
	$(PIP) install -q --no-deps openmim==0.3.9
	$(PIP) install -q click colorama model-index ordered-set markdown pandas requests rich tabulate
	touch $(STAMP)

# --overwrite: the demo's own work_dir is replaced by a new run. The plots
# (DEMO_WORK_DIR/plots) and the one-line summary show how far α/β moved.
demo: $(STAMP)
	$(PY) tools/make_demo_data.py --layout cityscapes --out data/demo_cityscapes
	$(PY) tools/search.py $(DEMO_CONFIG) --work-dir $(DEMO_WORK_DIR) --overwrite
	$(PY) tools/plot_search.py $(DEMO_WORK_DIR)
	$(PY) tools/search_summary.py $(DEMO_WORK_DIR)

test: $(STAMP)
	$(PY) -m pytest tests -q

test-all: $(STAMP)
	$(PY) -m pytest tests -q -m "slow or not slow"

clean:
	rm -rf $(VENV) work_dirs build *.egg-info mmseg_autodeeplab/.mim
