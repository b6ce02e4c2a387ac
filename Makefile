# gml developer entry points. Fresh machine: `make demo` (showcase) or `make test` (test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PLUGINS := $(sort $(wildcard plugins/gml_*))
STAMP := $(VENV)/.gml-installed

.PHONY: install demo test system-deps bench dist clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt requirements-dev.txt $(wildcard plugins/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e . $(addprefix -e ,$(PLUGINS)) -r requirements-dev.txt
	touch $@

# Debian packages used by tests and benchmarks (Fashion-MNIST files, a single-node Slurm); needs root.
system-deps:
	bash scripts/system_deps.sh

demo: install
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/demo.sh

test: install system-deps
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/test.sh

bench: install
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/bench.sh

# One wheel per package into dist/ (pip install --find-links dist gml-nas gml-kd); no venv needed.
dist:
	rm -f dist/gml_*.whl
	PYTHON="$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))" bash scripts/build_wheels.sh

clean:
	rm -rf work_dirs
