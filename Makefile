# Two commands for a fresh Debian 12 machine with Python 3.11 (see README.md):
#   make demo   installs everything, then runs the main job on the embedded default
#   make test   installs everything, then runs every test
# Both are idempotent: a second run installs nothing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEBIAN_PACKAGES := baresip-core sip-tester sox espeak-ng pocketsphinx-testdata wrk

.PHONY: demo test install system-packages services sandbox bench lint clean

demo: install
	$(BIN)/voipbin demo

sandbox: install
	$(BIN)/voipbin sandbox

test: install services
	$(BIN)/python -m pytest -p no:cacheprovider

install: system-packages $(STAMP)

system-packages:
	@bash scripts/install-debian-packages.sh $(DEBIAN_PACKAGES)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

services:
	@bash scripts/ensure-services.sh

bench: install services
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache

lint: install
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/ruff check src examples tests bench
