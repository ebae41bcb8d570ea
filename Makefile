# Two commands matter: `make demo` (install, then run the app with demo data) and
# `make test` (install, then run every test). Both need only Python 3.11 on the machine.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
# The interpreter itself, not a version manager's shim (pyenv, asdf): uv compares the venv's
# interpreter with this path, and a shim path made every target recreate the venv.
PYTHON_EXE := $(shell $(PYTHON) -c 'import sys; print(sys.executable)')
UV := .tools/bin/uv
UV_VERSION := 0.13.8
VENV := .venv
PYTEST_ARGS ?=

.PHONY: install demo test lint typecheck imports check bench clean

$(UV):
	$(PYTHON_EXE) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode is compiled at install (uv does not by default, and PYTHONDONTWRITEBYTECODE=1 would
# otherwise make every process recompile what it imports); compileall skips what is current.
# The installed packages' bytecode is compiled when the lock changes, not by every target:
# uv's --compile-bytecode goes over all of site-packages at each sync (about 1 s).
install: $(VENV)/.bytecode
	UV_PYTHON_DOWNLOADS=never $(UV) sync --frozen --python $(PYTHON_EXE)
	$(VENV)/bin/python -m compileall -q src

$(VENV)/.bytecode: uv.lock | $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) sync --frozen --compile-bytecode --python $(PYTHON_EXE)
	touch $@

demo: install
	$(VENV)/bin/ketamine-clinic demo

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/mypy

# The import contracts in pyproject.toml ([tool.importlinter]; DEVELOPERS.md explains them).
imports: install
	$(VENV)/bin/lint-imports

check: lint typecheck imports test

# Benchmarks print figures (they are not pass/fail); the bench group adds opentiva to compare.
bench: $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) sync --frozen --compile-bytecode --python $(PYTHON_EXE) --group bench
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(VENV)/bin/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache artifacts
