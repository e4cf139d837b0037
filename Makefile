# Two commands a new user needs: `make demo` and `make test`. Both build .venv from the lock file.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest lock clean

$(STAMP): pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c requirements/lock.txt uv
	$(UV) pip install --quiet --python $(PY) -c requirements/lock.txt -e '.[test,postgres]'
	touch $@

lock:  ## regenerate the lock file from pyproject.toml (the only way versions get pinned)
	$(UV) pip compile pyproject.toml --extra test --extra postgres --python-version 3.11 --quiet -o requirements/lock.txt
	$(UV) pip compile pyproject.toml requirements/interop.in --python-version 3.11 --quiet -o requirements/interop-lock.txt

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy protocols constellation satellites controllers listeners console

# The 1.0.2 oracle venv is built first, outside the namespace: it needs the package registry, which the
# namespace cannot reach. Without it the interop tests skip with the reason (and fail under CI=true).
pytest: $(STAMP)
	-$(PY) -m tests.harness
	tests/netns/netns-run --hosts 3 -- $(PY) -m pytest --durations=15 $(PYTEST_ARGS)

test: lint typecheck pytest

demo: $(STAMP)
	$(PY) -m controllers.demo
	$(PY) -m console.demo

clean:
	rm -rf $(VENV) build *.egg-info
