# conceptfreq: the two commands are `make demo` and `make test`; everything else they need is set up here.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bootstrapped
PROTO_OUT := services

.PHONY: setup demo test test-unit bench bench-gpu proto lint clean up down status

setup: $(STAMP)

# Installs apt packages (ClickHouse server), creates the venv and installs the pinned dependencies.
$(STAMP): requirements.lock services/pyproject.toml deploy/scripts/bootstrap.sh
	bash deploy/scripts/bootstrap.sh $(VENV)
	touch $(STAMP)

## demo: the paper's finding end to end on the embedded default (chDB, in-process bus, torch://): a synthetic world,
## a small CLIP trained in it (cached in demo-output/cache), counts, zero-shot accuracy, the trend, the ground-truth check
## demo FULL=1: an ingest through the stack that `make up` started (Kafka, ClickHouse, Triton, every service)
demo: setup
ifeq ($(FULL),1)
	$(PY) -m conceptfreq.devservers.stack demo
else
	$(PY) -m conceptfreq.demo
endif

## up: the cluster-mode stack as local processes (tansu, ClickHouse, Triton, every service, Prometheus); logs in build/stack/logs
up: setup
	$(PY) -m conceptfreq.devservers.stack up

## down: stop what `make up` started
down:
	$(PY) -m conceptfreq.devservers.stack down

status:
	$(PY) -m conceptfreq.devservers.stack status

## test: every test, with a real ClickHouse server, chDB and a Kafka-protocol broker started by the fixtures
test: setup
	$(PY) -m pytest tests -q

test-unit: setup
	$(PY) -m pytest tests/unit -q

## bench: throughput and accuracy benchmarks, printed as tables (needs ../shared/data for the CC-3M figures)
bench: setup
	$(PY) -m tests.bench

## bench-gpu: the tagger end to end on a CUDA machine (ViT-B-32 fp16, tar -> chDB, in process and through Triton; --smoke on a CPU)
bench-gpu: setup
	$(PY) -m tests.bench.gpu

## proto: regenerate the Python code of proto/conceptfreq/v1 (a test fails when it is stale)
proto: setup
	$(PY) -m conceptfreq.protogen

lint: setup
	$(PY) -m compileall -q services/conceptfreq tests
	$(PY) -m conceptfreq.protogen --check

clean:
	rm -rf $(VENV) demo-output .pytest_cache
