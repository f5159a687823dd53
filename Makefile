# Pursuit: two commands on a fresh machine.
#   make run   - set everything up, load a demo dealership, start the web app and a worker
#   make test  - set everything up and run the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HTMX_VERSION := 2.0.4

.PHONY: run test setup lint bench-speed bench-import bench-dispatch bench-pages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The stamp is rebuilt when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# htmx comes from the npm registry at set-up time, never from a CDN at run time.
pursuit/web/static/vendor/htmx.min.js:
	mkdir -p pursuit/web/static/vendor
	cd $(VENV) && npm pack --silent htmx.org@$(HTMX_VERSION) >/dev/null && \
		tar -xzf htmx.org-$(HTMX_VERSION).tgz package/dist/htmx.min.js && \
		cp package/dist/htmx.min.js ../pursuit/web/static/vendor/htmx.min.js && \
		rm -rf package htmx.org-$(HTMX_VERSION).tgz

# The browser tests drive Debian's Chromium; install it when missing (needs root, as on CI).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "chromium is not installed; browser tests will be skipped"; fi; }

setup: $(VENV)/.installed pursuit/web/static/vendor/htmx.min.js

run: setup
	$(BIN)/pursuit migrate --no-input -v 0
	$(BIN)/pursuit load-demo --if-empty
	$(BIN)/pursuit run --port $(PORT)

test: setup chromium
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check pursuit bench tests
	$(BIN)/ruff format --check pursuit bench tests

bench-speed: setup
	$(BIN)/python bench/speed_to_lead.py

bench-import: setup
	$(BIN)/python bench/import.py

bench-dispatch: setup
	$(BIN)/python bench/dispatch.py

bench-pages: setup
	$(BIN)/python bench/pages.py

clean:
	rm -rf $(VENV) data pursuit/web/static/vendor
