# Feedback Lens: `make run` (install, analyse the sample if no run exists, serve) and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLE := data/sample/fine_food_reviews.csv
# pip's site config here lists mirrors that may be absent; its warnings about them are noise.
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location" || true; }

.PHONY: install run analyse serve test test-fast browser lint check lock bench clean

$(STAMP): requirements.txt requirements-dev.txt requirements.lock pyproject.toml
	@echo "== Installing Feedback Lens into $(VENV) (first time: a few minutes)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip $(QUIET_PIP)
	$(BIN)/python -m pip install -q -r requirements-dev.txt -c requirements.lock $(QUIET_PIP)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e . $(QUIET_PIP)
	@touch $(STAMP)

install: $(STAMP)

# The bundled sample is analysed once; later `make run` just serves the latest run.
analyse: install
	$(BIN)/feedback-lens analyse $(SAMPLE) --mapping data/sample/mapping.yaml --if-no-run

# Another port: make run PORT=8600
serve: install
	$(BIN)/feedback-lens serve $(if $(PORT),--port $(PORT))

run: analyse serve

# A real browser for the end-to-end test: Debian's chromium (Playwright cannot download its own here).
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "== Installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: install browser
	$(BIN)/python -m pytest

# While iterating: skip the slow real-model and browser tests (CI runs everything).
test-fast: install
	$(BIN)/python -m pytest -m "not slow and not browser"

lint: install
	$(BIN)/ruff check pipelines dashboard tests bench data tools

# Lint, then audit the locked versions for known vulnerabilities (pip-audit asks PyPI; see tools/audit.py).
check: lint
	$(BIN)/python -m pip install -q pip-audit $(QUIET_PIP)
	$(BIN)/python tools/audit.py

# After changing requirements*.txt and passing `make test`: pin what was tested.
lock: install
	$(BIN)/python tools/lock_requirements.py

bench: install
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf $(VENV) .pytest_cache
