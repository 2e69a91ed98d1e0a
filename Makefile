# Every target creates .venv and installs on first use; see README.md.
PY := .venv/bin/python
STAMP := .venv/.installed-stamp
HYPOTHESIS_PROFILE ?= dev

.DEFAULT_GOAL := help
.PHONY: help install serve test test-props lint typecheck bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	tools/ensure-system-packages --best-effort redis-server
	python3 -m venv .venv && $(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q -e '.[dev]' && touch $(STAMP)

install: $(STAMP) ## create .venv and install wanmock with its dev tools

serve: $(STAMP) ## serve the fake of every provider on 127.0.0.1:8000 (in-memory state)
	.venv/bin/wanmock serve --host 127.0.0.1 --port 8000 $(ARGS)

test: $(STAMP) ## run the whole test suite
	$(PY) -m pytest -q --hypothesis-profile=$(HYPOTHESIS_PROFILE) $(ARGS)

test-props: $(STAMP) ## property tests with the thorough 'ci' Hypothesis profile
	$(PY) -m pytest -q --hypothesis-profile=ci -m "not smoke" tests $(ARGS)

lint: $(STAMP) ## ruff
	.venv/bin/ruff check mock_server schemas contracts examples tests benchmarks

typecheck: $(STAMP) ## mypy --strict on the packages
	.venv/bin/mypy

bench: $(STAMP) ## micro-benchmarks, the whole-server benchmark, a 5-minute soak (not in make test)
	$(PY) -m pytest -q benchmarks --benchmark-only --benchmark-columns=mean,median,ops $(ARGS) && $(PY) benchmarks/memory.py && $(PY) benchmarks/observe.py && $(PY) benchmarks/server.py && $(PY) benchmarks/soak.py

clean: ## remove .venv and caches
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .hypothesis .benchmarks build dist *.egg-info
