# Two commands on a fresh machine with python3:
#   make demo   set up .venv, inspect the embedded default data, then train, generate,
#               evaluate and report the demo GAN on it (stgan run; run again to resume)
#   make test   set up .venv with the dev extra and run the test suite
VENV ?= .venv
PYTEST_ARGS ?=

.PHONY: demo test setup setup-dev lint bench

setup:
	VENV=$(VENV) scripts/setup.sh

setup-dev:
	VENV=$(VENV) scripts/setup.sh dev

DEMO_LOGDIR ?= runs/demo

demo: setup
	$(VENV)/bin/stgan inspect data_specs/synthetic.yaml
	$(VENV)/bin/stgan run pipelines/demo.yaml --logdir $(DEMO_LOGDIR)

test: setup-dev
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

lint: setup-dev
	$(VENV)/bin/ruff check stgan tests benchmarks scripts
