# The two commands users need: `make bench` (the sweep) and `make test` (the tests).
# Both set up .venv first (scripts/setup.sh); SPECGATE_VLLM=gpu installs CUDA vLLM instead.
VENV ?= .venv
PYTEST = $(VENV)/bin/python -m pytest
ARGS ?=

.PHONY: setup bench test models clean ab
VLLM_A ?= 0.31.0

setup: $(VENV)/.specgate-setup

$(VENV)/.specgate-setup: pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh

# The main job: every pairing x k of configs/cpu.toml; prints the summary and writes reports/
# (results.json, the charts of report/charts.py's CHART_NAMES that have data, summary.md, and
# pytest-benchmark's benchmark.json).
bench: setup
	mkdir -p reports
	$(PYTEST) benchmarks -v -p no:cacheprovider --specgate-strict --specgate-reports reports \
		--benchmark-json reports/benchmark.json $(ARGS)

test: setup
	$(PYTEST) tests -v -p no:cacheprovider $(ARGS)

# The same matrix under vLLM $(VLLM_A) (installed into .venv-$(VLLM_A)) and under .venv's vLLM:
# one report in reports/ab with the version delta on every line; exit 1 on a regression.
ab: setup
	VENV=.venv-$(VLLM_A) SPECGATE_VLLM_VERSION=$(VLLM_A) bash scripts/setup.sh
	$(VENV)/bin/specgate ab .venv-$(VLLM_A)/bin/python $(VENV)/bin/python --out reports/ab -- $(ARGS)

# Retrain the fixture models and then the speculator heads of the target (EAGLE-3, EAGLE, Medusa, MTP)
# from scratch (models/MODEL_CARD.md states how long each took); the shipped ones are in models/fixture.
models: setup
	$(VENV)/bin/python models/train_fixtures.py
	$(VENV)/bin/python models/train_heads.py

clean:
	rm -rf $(VENV) .venv-* reports .benchmarks .hypothesis
