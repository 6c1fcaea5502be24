# xrd-agent: `make demo` and `make test` do all set-up themselves.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

install: $(STAMP)

# torch is installed first and pinned: the local CPU wheel, never the CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: install
	$(VENV)/bin/xrd-agent demo

test: install
	$(PY) -m pytest -q

bench: install
	$(VENV)/bin/xrd-agent bench all

clean:
	rm -rf $(VENV) build *.egg-info
