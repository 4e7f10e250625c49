# The shared interface of people and CI workflows: each target is a one-liner over `mlops` (the
# project CLI) run in the locked uv environment. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
RUN := $(UV) run --locked
export DVC_NO_ANALYTICS := 1
export UV_PYTHON_DOWNLOADS := never
export PYTHONUNBUFFERED := 1

.PHONY: help setup run test test-fast lint check ui bench data repro report gates register push promote image-tag image-reuse image-check deploy rollback smoke serve score monitor alert adopt

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode compiled once at install (~16 s on 2 cores), not at every cold import: a process whose
# environment sets PYTHONDONTWRITEBYTECODE (many CI images do) would otherwise recompile pandas,
# scikit-learn and MLflow from source on every start (measured: imports 2-3x slower). Only here:
# exported to every `uv run`, it re-checks 12,000 files (~0.5 s) each time.
setup: $(UV) ## install uv (if missing) and the locked environment
	UV_COMPILE_BYTECODE=1 $(UV) sync --locked

run: setup ## materialise the data, reproduce the pipeline, register the best model
	$(RUN) mlops run

test: setup ## run the whole test suite (unit, data, pipeline end to end)
	$(RUN) pytest || { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests" >&2; exit $$rc; }

test-fast: setup ## every test except the slow end-to-end pipeline runs (pytest -m "not slow")
	$(RUN) pytest -m "not slow"

lint: setup ## ruff lint and format check; actionlint and zizmor (offline) on .github/workflows; hadolint
	$(RUN) ruff check . && $(RUN) ruff format --check . && $(RUN) actionlint $(wildcard .github/workflows/*.yml .github/workflows/*.yaml) && $(RUN) zizmor --offline .github/workflows && $(RUN) hadolint Dockerfile

check: setup ## validate params.yaml, the model zoo and the data without training
	$(RUN) mlops check

data: setup ## materialise the dataset (dvc pull with a remote, else regenerate the sample + hash check)
	$(RUN) mlops data pull

repro: setup ## reproduce the pipeline without registering (what a pull request runs)
	$(RUN) mlops run --no-register

report: setup ## write report.md: metrics/params/data vs main, quality gates, plots (BASE=main)
	$(RUN) mlops report --base $(or $(BASE),main)

gates: setup ## fail if a quality gate in params.yaml fails (BASE=main)
	$(RUN) mlops gates --base $(or $(BASE),main)

register: setup ## register the last run's best model as a new version @challenger
	$(RUN) mlops register

push: setup ## push data, split and models to the DVC remote (no-op without a remote)
	$(RUN) mlops data push

promote: setup ## promote @challenger to @champion: gates + not worse than the champion on the same test split
	$(RUN) mlops promote

# Values come from the environment or the command line (DEPLOY_ENV=staging MODEL_VERSION=3
# IMAGE_TAG=... IMAGE_DIGEST=sha256:... IMAGE_NAME=ghcr.io/... DEPLOY_FROM=staging; IMAGE_REV=...
# IMAGE_TAGS=...; ROLLBACK_TO=3; SMOKE_URL=...; MONITOR_INPUT=... MONITOR_MODEL=...; ADOPT_FILE=...
# ADOPT_TARGET=... ADOPT_GROUP=...; PYTHON_IMAGE=... UV_IMAGE=...) and are read by `mlops`, never
# pasted into the shell.
image-tag: setup ## print the serving image's tag for IMAGE_REV (default HEAD): build-<hash of what it is built from>
	$(RUN) mlops image-tag

image-reuse: setup ## if the registry holds IMAGE_NAME:IMAGE_TAG, tag it IMAGE_TAGS too (docker buildx imagetools) instead of a rebuild
	$(RUN) mlops image-reuse

image-check: setup ## fail unless the Dockerfile's base images (PYTHON_IMAGE, UV_IMAGE overrides) have real digests
	$(RUN) mlops image-check

deploy: setup ## point deploy/overlays/<DEPLOY_ENV> at MODEL_VERSION (default @champion) and IMAGE_TAG..., or at what DEPLOY_FROM runs; commit it
	$(RUN) mlops deploy --commit

rollback: setup ## move @champion back to @previous (ROLLBACK_TO=N for another), commit the manifests (ROLLBACK_PUSH=branch: push)
	$(RUN) mlops rollback --commit

smoke: setup ## smoke-test the deployment at SMOKE_URL: /ready (and EXPECT_MODEL_VERSION on /metadata), then /predict
	$(RUN) mlops smoke

serve: setup ## REST model server on http://127.0.0.1:8000 (MODEL_URI, default @champion; PORT; API_KEY)
	$(RUN) mlops serve

score: setup ## batch-score SCORE_INPUT (.csv/.parquet) into SCORE_OUTPUT with MODEL_URI (default @champion)
	$(RUN) mlops score

adopt: setup ## use your table: ADOPT_FILE (.csv/.parquet) predicting column ADOPT_TARGET (rows grouped by ADOPT_GROUP) -> params.yaml, data/, data.dvc
	$(RUN) mlops data adopt

monitor: setup ## drift of MONITOR_INPUT (batch or reports/predictions.jsonl) vs the training data; exit 1 on drift
	$(RUN) mlops monitor

alert: setup ## open/comment/close the model-drift GitHub issue from monitoring/drift.json (GITHUB_TOKEN, GITHUB_REPOSITORY)
	$(RUN) mlops alert

ui: setup ## MLflow UI on the local store (http://127.0.0.1:5000)
	$(RUN) mlops ui

bench: setup ## benchmarks: pipeline overhead, repro times, scale sweep (writes benchmarks/results.json)
	$(RUN) python benchmarks/bench_pipeline.py
