# The two commands users need: `make bench` (the sweep) and `make test` (the tests).
# Both set up .venv first (scripts/setup.sh); SPECGATE_VLLM=gpu installs CUDA vLLM instead.
VENV ?= .venv
PYTEST = $(VENV)/bin/python -m pytest
ARGS ?=

.PHONY: setup bench test models clean

setup: $(VENV)/.specgate-setup

$(VENV)/.specgate-setup: pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh

# The main job: every pairing x k of configs/cpu.toml; prints the summary and writes reports/
# (results.json, eight charts, summary.md, and pytest-benchmark's benchmark.json).
bench: setup
	mkdir -p reports
	$(PYTEST) benchmarks -v -p no:cacheprovider --specgate-strict --specgate-reports reports \
		--benchmark-json reports/benchmark.json $(ARGS)

test: setup
	$(PYTEST) tests -v -p no:cacheprovider $(ARGS)

# Retrain the fixture models (about 15 minutes on 2 cores); the shipped ones are in models/fixture.
models: setup
	$(VENV)/bin/python models/train_fixtures.py

clean:
	rm -rf $(VENV) reports .benchmarks .hypothesis
