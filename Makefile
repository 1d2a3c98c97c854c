# sparsevid: `make demo` runs the embedded demo, `make test` runs the tests (both set up .venv first).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sparsevid-setup-stamp
TORCH  := torch==2.13.0

.PHONY: setup demo test clean-venv

setup: $(STAMP)

# Re-runs only when pyproject.toml changes (or the stamp is missing).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(TORCH)
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/sparsevid run -o out/demo --overwrite

test: setup
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)
