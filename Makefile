# Two commands do everything on a fresh machine:
#   make repro   create .venv with the locked versions, then run the whole benchmark (dvc repro)
#   make test    create .venv with the locked versions, then run the test suite
#   make quick   the whole pipeline on a small configuration in .quick/ (a smoke run, not for citing)
#   make slurm   every stage that is not up to date as a Slurm job (docs/cluster.md)
#   make check-results   fail if a stage's code, data or parameters changed since its committed results
#   make verify  check the committed results in minutes: numbers recomputed, a sample of points retrained
#   make readme  the results blocks of README.md and docs/results.md from reports/summary.json (after new results)
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed
# DVC stages call `python`: make it the environment's.
export PATH := $(BIN):$(PATH)

.PHONY: setup repro quick slurm test check-results verify readme ui clean-venv

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

# SLURM_ARGS passes options on, e.g. make slurm SLURM_ARGS="--partition cpu --dry-run"
slurm: setup
	python -m sae_mnist.cluster submit $(SLURM_ARGS)

# PYTEST_ARGS passes options on, e.g. make test PYTEST_ARGS="--mnist-mirror ../shared/data/mnist -x"
test: setup
	python -m pytest $(PYTEST_ARGS)

# Fails (naming each stage and what changed) when a committed result is stale: `dvc status` shows a stage whose
# code, data or parameters changed since dvc.lock. Outputs only missing (a fresh clone before `dvc pull`) are fine.
check-results: setup
	python -m sae_mnist.staleness

# Checks the committed results without touching them (README: "Verify a number"): every number of the report's
# Verdict recomputed by a separate implementation, and a sample of frontier points retrained from scratch.
# VERIFY_ARGS passes options on, e.g. make verify VERIFY_ARGS="--points conv-l1-lam=1.2@1 --json verify.json"
verify: setup
	python -m sae_mnist.verify $(VERIFY_ARGS)

# The README's results block, generated from the report's summary.json (a test fails while it is stale).
readme: setup
	python -m sae_mnist.report.readme

# The MLflow UI on this repository's store, on this machine only.
ui: setup
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port 5000

clean-venv:
	rm -rf $(VENV)
