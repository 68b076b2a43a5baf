# Two commands do everything on a fresh machine:
#   make repro   create .venv with the locked versions, then run the whole benchmark (dvc repro)
#   make test    create .venv with the locked versions, then run the test suite
#   make quick   the whole pipeline on a small configuration in .quick/ (a smoke run, not for citing)
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed
# DVC stages call `python`: make it the environment's.
export PATH := $(BIN):$(PATH)

.PHONY: setup repro quick test ui clean-venv

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3
	$(BIN)/python -m pip install --constraint requirements.lock --editable '.[test]'
	touch $(STAMP)

setup: $(STAMP)

repro: setup
	dvc repro

# The whole pipeline on a small configuration in .quick/ (a throwaway copy): a smoke run, not for citing.
quick: setup
	python -m sae_mnist.quick .quick

# PYTEST_ARGS passes options on, e.g. make test PYTEST_ARGS="--mnist-mirror ../shared/data/mnist -x"
test: setup
	python -m pytest $(PYTEST_ARGS)

# The MLflow UI on this repository's store, on this machine only.
ui: setup
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port 5000

clean-venv:
	rm -rf $(VENV)
