# Everything runs from the venv built from requirements.lock; `make test` and `make render` set it up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev

.PHONY: setup test render validate snapshot lock clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

test: setup
	$(PY) -m pytest -q

render: setup
	$(PY) -m tools.render --stack $(STACK) --out build/$(STACK)

validate: render
	$(PY) -m tools.validate build/$(STACK)

# Rewrite tests/snapshots/<stack>.json (URNs and replace-deciding fields) for every stack; commit the diff.
snapshot: setup
	$(PY) -m tools.snapshot --all

# Re-pin after changing pyproject.toml's dependencies: a fresh venv, install, freeze.
lock:
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/pip install --quiet ".[test]" && build/lock-venv/bin/pip freeze --exclude ai-platform > requirements.lock

clean:
	rm -rf build $(VENV)
