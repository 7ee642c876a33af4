# to-bikes: `make` lists the targets. Every target is documented by its `## ` comment.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Local settings (never committed); see .env.example. Its variables are exported to every
# command, so models.core.settings, prefect and aws all see the same values.
ifneq (,$(wildcard .env))
include .env
export $(shell sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' .env)
endif

PYTHON ?= python3
VENV := .venv
AGENT_VENV := agent/.venv
PY := $(VENV)/bin/python
APY := $(AGENT_VENV)/bin/python
VENV_STAMP := $(VENV)/.synced
AGENT_STAMP := $(AGENT_VENV)/.synced
# uv, pinned with hashes in requirements/uv.txt, lives in its own small venv (git-ignored).
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_STAMP := $(TOOLS)/.synced
UV_PIN := $(shell sed -n 's/^uv==\([^ ]*\).*/\1/p' requirements/uv.txt)
# uv uses the Python 3.11 found here and never downloads an interpreter of its own.
UV_PYTHON_DOWNLOADS ?= never
export UV_PYTHON_DOWNLOADS

# The embedded local stack (127.0.0.1). Override any of these in .env or on the command line.
TO_BIKES_HOST ?= 127.0.0.1
TO_BIKES_PREFECT_PORT ?= 4200
TO_BIKES_S3_PORT ?= 9000
TO_BIKES_MLFLOW_PORT ?= 5050
PREFECT_API_URL ?= http://$(TO_BIKES_HOST):$(TO_BIKES_PREFECT_PORT)/api
export TO_BIKES_HOST TO_BIKES_PREFECT_PORT TO_BIKES_S3_PORT TO_BIKES_MLFLOW_PORT PREFECT_API_URL
# Every flow run started through make (workers, in-process runs, tests) heartbeats at the period the
# zombie-run automation of `make deploy` expects (orchestration/deploy/automations.py); Prefect's default is 180 s.
TO_BIKES_HEARTBEAT_SECONDS ?= 30
PREFECT_FLOWS_HEARTBEAT_FREQUENCY ?= $(TO_BIKES_HEARTBEAT_SECONDS)
export PREFECT_FLOWS_HEARTBEAT_FREQUENCY

LOCK_COMPILE := $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links --no-emit-trusted-host --resolver=backtracking
PYTEST_ARGS ?=

.PHONY: help install bench-deps lock lint format test test-models test-orchestration test-orchestration-waiting test-orchestration-rest clean \
	sample-data preprocess train

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-27s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- environments -------------------------------------------------------------------------
# uv installs both venvs from the same hash-pinned pip-tools locks that pip read before (issue 21).
# uv itself comes from requirements/uv.txt (hash-pinned) into $(TOOLS)/ by python3's pip (else by a
# pip that ensurepip puts in $(TOOLS)/); a uv on PATH is not used. Each venv is a file target that
# depends on its own lock file: editing one lock syncs only that venv. `uv pip sync` installs with hashes required and removes whatever the lock does not list.
# uv's own output (one line per package) goes to $(INSTALL_LOGS)/<env>.log; make prints uv's summary lines.
# Bytecode (issue 29): not for all ~62,000 modules of both venvs (uv's --compile-bytecode: 69 s on
# 2 busy cores), only for what the first `make demo` imports (requirements/first_run_imports.py,
# about 17% of them; the agent env's list in 38 s instead of 68 s). It writes the .pyc files even where
# PYTHONDONTWRITEBYTECODE is set, as it is on this machine, where a module without them is compiled
# again by every command. UV_COMPILE_BYTECODE=1 (environment or .env) has uv compile everything too.
INSTALL_LOGS = $(TO_BIKES_STATE_DIR_MK)/logs

# $(call uv_sync,VENV,LOCK,LOG NAME): `uv pip sync` with hashes, output to the log, summary on screen.
define uv_sync
@mkdir -p $(INSTALL_LOGS)
@$(UV) pip sync --python $(1)/bin/python --require-hashes $(2) >$(INSTALL_LOGS)/$(3).log 2>&1 || { \
	tail -n 20 $(INSTALL_LOGS)/$(3).log >&2; echo "error: uv pip sync $(2) failed; log: $(INSTALL_LOGS)/$(3).log" >&2; exit 1; }
@{ grep -v '^ [-+~] ' $(INSTALL_LOGS)/$(3).log || true; } | sed 's/^/   /'
endef

$(UV_STAMP): requirements/uv.txt
	@echo "== installing uv into $(TOOLS)/ from requirements/uv.txt (pip, hashes required)"
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv --without-pip $(TOOLS)
	if $(PYTHON) -m pip --version >/dev/null 2>&1; then pip=($(PYTHON) -m pip --python $(TOOLS)/bin/python); \
	else $(TOOLS)/bin/python -m ensurepip --default-pip >/dev/null && pip=($(TOOLS)/bin/python -m pip); fi; \
	"$${pip[@]}" install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/uv.txt
	touch $@

$(VENV_STAMP): requirements/model.txt | $(UV_STAMP)
	@echo "== installing model env $(VENV)/ from requirements/model.txt (uv, hashes required; packages in $(INSTALL_LOGS)/model-env.log)"
	test -x $(VENV)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(call uv_sync,$(VENV),requirements/model.txt,model-env)
	$(PY) requirements/first_run_imports.py model
	touch $@

$(AGENT_STAMP): requirements/agent.txt | $(UV_STAMP)
	@echo "== installing agent env $(AGENT_VENV)/ from requirements/agent.txt (uv, hashes required; packages in $(INSTALL_LOGS)/agent-env.log)"
	test -x $(AGENT_VENV)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(AGENT_VENV)
	$(call uv_sync,$(AGENT_VENV),requirements/agent.txt,agent-env)
	$(APY) requirements/first_run_imports.py agent
	touch $@

# The bench's peer engines (requirements/bench.txt: polars, duckdb) go into .venv on top of model.txt,
# for `make bench` and the peer test in `make test-models`. `uv pip sync` above removes them whenever
# .venv is synced again (model.txt changed, or rm .venv/.synced); this stamp is then out of date, so
# the next `make bench` or `make test-models` puts them back. model.txt itself never lists them.
BENCH_STAMP := $(VENV)/.bench-synced

$(BENCH_STAMP): requirements/bench.txt $(VENV_STAMP)
	@echo "== installing the bench's peer engines into $(VENV)/ from requirements/bench.txt (uv, hashes required)"
	$(UV) pip install --python $(VENV)/bin/python --require-hashes --no-deps -r requirements/bench.txt
	touch $@

bench-deps: $(BENCH_STAMP) ## Install the bench's peer engines (requirements/bench.txt) into .venv on top of model.txt

install: $(VENV_STAMP) $(AGENT_STAMP) ## Create or sync both venvs from the lock files (uv, hashes required)
	@echo "model env: $(VENV)  agent env: $(AGENT_VENV)  (uv $(UV_PIN) in $(TOOLS)/)"

# `make lock` compiles with pip-tools (pip-compile in .venv), the same format and pins as always.
# `make lock UPGRADE=` recompiles after editing a *.in without moving any other pin.
UPGRADE ?= --upgrade
lock: $(VENV_STAMP) ## Recompile requirements/*.txt from *.in (upgrades; UPGRADE= keeps pins; superset first)
	cd requirements && CUSTOM_COMPILE_COMMAND="make lock" ../$(LOCK_COMPILE) $(UPGRADE) -o constraints.txt constraints.in
	cd requirements && CUSTOM_COMPILE_COMMAND="make lock" ../$(LOCK_COMPILE) -o model.txt model.in
	cd requirements && CUSTOM_COMPILE_COMMAND="make lock" ../$(LOCK_COMPILE) -o agent.txt agent.in
	cd requirements && CUSTOM_COMPILE_COMMAND="make lock" ../$(LOCK_COMPILE) -o bench.txt bench.in
	cd requirements && CUSTOM_COMPILE_COMMAND="make lock" ../$(LOCK_COMPILE) -o image.txt image.in
	cd requirements && CUSTOM_COMPILE_COMMAND="make lock" ../$(LOCK_COMPILE) -o uv.txt uv.in

# --- quality ------------------------------------------------------------------------------

lint: $(VENV_STAMP) ## ruff check and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV_STAMP) ## Apply ruff format and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint ## Lint, then three pytest processes at once: model tests (.venv), the waiting and the other orchestration tests
	@$(MAKE) --no-print-directory -j3 --output-sync=target test-models test-orchestration-waiting test-orchestration-rest

test-models: $(VENV_STAMP) $(BENCH_STAMP) stack-deps ## Model tests in the model env (no Prefect; bench.txt on top for the peer test)
	$(PY) -m pytest tests/models $(PYTEST_ARGS) || test $$? -eq 5

# The modules that spend their time waiting (the zombie automation's 5-minute window, 3-minute Prefect
# outages, the soak's outages and quiet periods) run beside the others: two pytest processes, each with
# its own local stack, each part's output printed whole when it ends (`make test` adds the model tests as a
# third). Exit 5 (no test selected by PYTEST_ARGS in a part) is not a failure.
WAITING_TESTS := tests/orchestration/test_automations.py tests/orchestration/test_outages.py \
	tests/orchestration/test_soak_e2e.py

test-orchestration: $(VENV_STAMP) $(AGENT_STAMP) stack-deps ## Stack, orchestration and docker-agent tests in agent/.venv (two parts at once)
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-orchestration-waiting test-orchestration-rest

test-orchestration-waiting: $(VENV_STAMP) $(AGENT_STAMP) stack-deps ## The zombie-automation, Prefect-outage and CI-soak tests alone
	$(APY) -m pytest $(WAITING_TESTS) $(PYTEST_ARGS) || test $$? -eq 5

test-orchestration-rest: $(VENV_STAMP) $(AGENT_STAMP) stack-deps ## Stack, orchestration and docker-agent tests but the waiting ones
	$(APY) -m pytest tests/stack tests/orchestration tests/agent $(addprefix --ignore=,$(WAITING_TESTS)) $(PYTEST_ARGS) || test $$? -eq 5

clean: ## Remove venvs, caches and local stack state (stops the stack first)
	-$(MAKE) down 2>/dev/null
	rm -rf $(VENV) $(AGENT_VENV) $(TOOLS) .stack .pytest_cache .ruff_cache stack/node_modules
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# --- data and model (issues 4 and 5): models/ run without Prefect ------------------------

# Data (issue 4): the synthetic sample, preprocessing (local path or s3:// URI) and the real-data fetch.
SAMPLE_DEST ?= data/sample
SAMPLE_ROWS ?= 40000
PREPROCESS_INPUT ?= $(SAMPLE_DEST)
PREPROCESS_OUTPUT ?= data/processed/trips.parquet
PERIOD ?=
FETCH_YEARS ?= 2024 2025
FETCH_DEST ?= data/raw
.PHONY: fetch-data ingest-data

sample-data: $(VENV_STAMP) ## Generate the deterministic synthetic sample in data/sample (seed 7, all six eras)
	$(PY) -m models sample --dest $(SAMPLE_DEST) --seed 7 --rows $(SAMPLE_ROWS)

preprocess: $(VENV_STAMP) ## Raw CSV/ZIP -> trips Parquet + quarantine + quality report (PREPROCESS_INPUT/OUTPUT, PERIOD)
	$(PY) -m models preprocess --input $(PREPROCESS_INPUT) --output $(PREPROCESS_OUTPUT) $(if $(PERIOD),--period $(PERIOD))

fetch-data: $(VENV_STAMP) ## Download the real yearly ZIPs via the City's CKAN API into data/raw (FETCH_YEARS)
	$(PY) -m models fetch --years $(FETCH_YEARS) --dest $(FETCH_DEST)

ingest-data: $(VENV_STAMP) ## Without Prefect: bring raw/ on S3 up to date with the City's portal (only new or changed files; raw/_manifest.json)
	$(PY) -m models ingest

# Model (issue 5): train -> register (champion/challenger gate) -> predict. MLflow is MLFLOW_TRACKING_URI,
# else the local stack's server (make up). Train on one period: make preprocess PERIOD=2025 && make train.
TRAIN_INPUT ?= $(PREPROCESS_OUTPUT)
MAX_EVALS ?= 8
TRAIN_SEED ?= 7
TRAIN_SUMMARY ?= data/models/last-train.json
RUN_ID ?=
MARGIN ?= 0.002
# Empty PREDICT_INPUT: the latest processed period on S3 (what `make demo`/`make run` wrote); empty
# PREDICT_OUTPUT: data/predictions/<period>.parquet. Either may be a local path or an s3:// URI.
PREDICT_INPUT ?=
PREDICT_OUTPUT ?=
MODEL_URI ?=
.PHONY: register predict

train: $(VENV_STAMP) ## Train vs baseline and champion on TRAIN_INPUT, log to MLflow (JSON summary in TRAIN_SUMMARY)
	@mkdir -p $(dir $(TRAIN_SUMMARY))
	$(PY) -m models train --input $(TRAIN_INPUT) --max-evals $(MAX_EVALS) --seed $(TRAIN_SEED) | tee $(TRAIN_SUMMARY).tmp
	tail -n 1 $(TRAIN_SUMMARY).tmp > $(TRAIN_SUMMARY) && rm -f $(TRAIN_SUMMARY).tmp

register: $(VENV_STAMP) ## Register RUN_ID (default: the last make train) and move champion only if it is better (MARGIN)
	run_id="$(RUN_ID)"; \
	if [ -z "$$run_id" ]; then \
		test -f $(TRAIN_SUMMARY) || { echo "error: no RUN_ID given and no $(TRAIN_SUMMARY); run make train first." >&2; exit 2; }; \
		run_id=$$($(PY) -c 'import json, sys; print(json.load(open(sys.argv[1]))["run_id"])' $(TRAIN_SUMMARY)); \
	fi; \
	$(PY) -m models register --run-id "$$run_id" --margin $(MARGIN)

predict: $(VENV_STAMP) ## Score the latest processed period on S3 (or PREDICT_INPUT) with the champion (or MODEL_URI) into data/predictions/ (or PREDICT_OUTPUT)
	$(PY) -m models predict $(if $(PREDICT_INPUT),--input $(PREDICT_INPUT)) $(if $(PREDICT_OUTPUT),--output $(PREDICT_OUTPUT)) $(if $(MODEL_URI),--model $(MODEL_URI))


# --- local stack (issue 6): up, down, status, logs, sync-data, blocks, doctor ------------
# Prefect server (agent/.venv), s3rver (Node.js, stack/package-lock.json) and MLflow server (.venv)
# on 127.0.0.1; state, logs and pid files under .stack/ (TO_BIKES_STATE_DIR). The stack's commands are the
# `stack` group of agent/.venv's app: `agent/.venv/bin/python -m orchestration stack -h`.
ORCH := $(APY) -m orchestration
STACK := $(ORCH) stack
TO_BIKES_STATE_DIR_MK := $(or $(TO_BIKES_STATE_DIR),.stack)
DATA ?= data/sample
STACK_NODE_STAMP := stack/node_modules/.package-lock.json
# A Prefect server started with PREFECT_SERVER_API_AUTH_STRING needs clients to send the same string.
ifdef PREFECT_SERVER_API_AUTH_STRING
PREFECT_API_AUTH_STRING ?= $(PREFECT_SERVER_API_AUTH_STRING)
export PREFECT_API_AUTH_STRING
endif

.PHONY: stack-deps postgres-deps up down status logs sync-data blocks doctor

# TO_BIKES_PREFECT_DB=postgres (in .env): `make up` starts PostgreSQL (Debian's package) for the Prefect server.
TO_BIKES_PREFECT_DB ?= sqlite
POSTGRES_DEPS := $(if $(filter postgres,$(TO_BIKES_PREFECT_DB)),postgres-deps)

$(STACK_NODE_STAMP): stack/package.json stack/package-lock.json
	npm ci --prefix stack --no-audit --no-fund --loglevel=error

stack-deps: $(STACK_NODE_STAMP) ## Install the local S3 server (s3rver) from stack/package-lock.json (npm ci)

postgres-deps: ## Install Debian's postgresql package (apt-get) unless its server binaries are there
	if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq postgresql >/dev/null; \
	fi
	ls -d /usr/lib/postgresql/*/bin/postgres

up: $(VENV_STAMP) $(AGENT_STAMP) $(STACK_NODE_STAMP) $(POSTGRES_DEPS) ## Start Prefect (+PostgreSQL if TO_BIKES_PREFECT_DB=postgres), S3, MLflow on 127.0.0.1; the background worker again if it ran before make down (else it says how to start one)
	$(STACK) up
	$(ORCH) worker resume

down: ## Stop exactly what make started: demo worker, agent container, then the servers (pid files in .stack/run)
	if [ -f $(TO_BIKES_STATE_DIR_MK)/agent-docker.cid ]; then $(MAKE) agent-docker-stop; fi
	$(STACK) down

status: ## One line per server (running/stopped, URL, pid) and one for the pool's workers (online/offline, how many poll, background pid); exit 3 if a server is down
	$(STACK) status

logs: ## Show the last lines of each server's log (.stack/logs)
	$(STACK) logs

sync-data: $(VENV_STAMP) $(AGENT_STAMP) ## aws s3 sync DATA (default data/sample) to s3://BUCKET/raw/ and verify checksums
	$(STACK) sync-data $(DATA)

blocks: $(AGENT_STAMP) ## Register the ToBikesConfig block type; save AWS, S3 bucket, config (and notification, if TO_BIKES_NOTIFY_URL) blocks
	$(STACK) check-prefect
	$(AGENT_VENV)/bin/prefect --no-prompt block register -f orchestration/flows/config_block.py
	$(ORCH) blocks

doctor: ## Check services, bucket, raw data, blocks, work pool, a worker, deployments and automations; one line each with a fix
	$(STACK) doctor

# --- orchestration (issue 9): deploy, agent, run, backfill, demo --------------------------
# Prefect 3 from agent/.venv. `deploy` pushes the committed code to s3://BUCKET/flows/<git sha>/ and
# registers prefect.yaml's deployments; the worker (`agent`) starts outside the checkout and every
# flow run pulls that bundle from S3. See agent/README.md for Prefect Cloud and AWS.
YEAR ?=
MONTH ?=
RUN_ARGS ?=
# Seconds make run/backfill wait per run before leaving it running (empty: the default, 600).
WAIT ?=
FROM ?=
TO ?=
ALLOW_DIRTY ?=
.PHONY: deploy agent worker-start worker-stop worker-stacks run backfill demo score serve screenshots readme-blocks months simulate-year soak

deploy: $(AGENT_STAMP) ## Pool of TO_BIKES_WORK_POOL_TYPE (process|docker|kubernetes|ecs), queues, code bundle flows/<sha>/, its deployments, automations, notifications if TO_BIKES_NOTIFY_URL (ALLOW_DIRTY=1)
	$(ORCH) deploy $(if $(filter-out 0,$(ALLOW_DIRTY)),--allow-dirty)
	$(ORCH) automations
	$(ORCH) loop-automations
	$(ORCH) notifications

agent: $(AGENT_STAMP) ## Worker of TO_BIKES_WORK_POOL_TYPE (default process: pool to-bikes, queues pipeline, preprocess, ingest, score, backfill) in the foreground
	$(ORCH) worker run

# The background worker: pid file .stack/run/worker.pid, log .stack/logs/worker.log. `make down` stops it
# and `make up` starts it again; after `make worker-stop`, `make up` leaves it stopped.
worker-start: $(AGENT_STAMP) ## Start the worker in the background (waits until Prefect lists it online); a running one is left alone
	$(ORCH) worker start

worker-stop: $(AGENT_STAMP) ## Stop the background worker (pid file); `make up` then leaves it stopped
	$(ORCH) worker stop

worker-stacks: $(AGENT_STAMP) ## Every flow run of the background worker writes its threads' stacks to its log (a run that seems stuck)
	$(ORCH) worker stacks

run: $(AGENT_STAMP) ## Run the pipeline over the API (YEAR, MONTH optional; WAIT seconds, default 600): what it waits for, then rows, metrics and the gate, or the reason it failed
	$(ORCH) run $(if $(YEAR),--param year=$(YEAR)) $(if $(MONTH),--param month=$(MONTH)) $(if $(WAIT),--wait-seconds $(WAIT)) $(RUN_ARGS)

PER_MONTH ?=
backfill: $(AGENT_STAMP) ## Months (or years) FROM..TO in one run on Dask, then a table (PER_MONTH=1: a run per month)
	$(ORCH) backfill --from "$(FROM)" --to "$(TO)" $(if $(filter-out 0,$(PER_MONTH)),--per-month) $(if $(WAIT),--wait-seconds $(WAIT)) $(RUN_ARGS)

# One line per phase (stack/phase.sh: `== phase: what, N s`); every phase's whole output, Prefect's
# deploy advice and uv's package lines included, goes to DEMO_LOG, whose path is printed first and last.
DEMO_LOG = $(TO_BIKES_STATE_DIR_MK)/logs/demo.log
PHASE = stack/phase.sh
URL_RE = http://[^ ]+
demo: ## From a fresh clone: venvs, stack, sample, sync, blocks, deploy, worker, one pipeline run, champion, score; one line per phase (details in .stack/logs/demo.log)
	@mkdir -p $(dir $(DEMO_LOG)) && : >$(DEMO_LOG)
	@echo "make demo: one line per phase; each phase's whole output goes to $(DEMO_LOG)"
	@$(PHASE) venvs $(DEMO_LOG) 'model env: .*' $(MAKE) install
	@$(PHASE) "stack up" $(DEMO_LOG) '(s3|prefect|mlflow) +running +$(URL_RE)|^worker +[a-z ]+' $(MAKE) up
	@$(PHASE) sample $(DEMO_LOG) '"rows": [0-9]+' $(MAKE) sample-data
	@$(PHASE) sync $(DEMO_LOG) 'synced [^;]*' $(MAKE) sync-data
	@$(PHASE) blocks $(DEMO_LOG) '^[A-Za-z0-9]+/[a-z-]+: [a-z]+' $(MAKE) blocks
	@$(PHASE) deploy $(DEMO_LOG) 'code bundle: [^ ]+|^notifications: [a-z]+' $(MAKE) deploy
	@$(PHASE) worker $(DEMO_LOG) '^worker [a-z ]+|pid [0-9]+' $(MAKE) worker-start
	@$(PHASE) "pipeline run" $(DEMO_LOG) '^[^ ]+( v[0-9]+ [a-z -]+)?: (Completed|Failed|Crashed)[^(]*|^result: [^;]*|$(URL_RE)/runs/flow-run/[0-9a-f-]+' $(MAKE) run
	@$(PHASE) champion $(DEMO_LOG) 'champion: [^ ]+ = version [0-9]+|^ +roc_auc: [0-9.]+ +\(baseline [0-9.]+\)|experiment runs: $(URL_RE)' $(ORCH) champion
	@$(PHASE) "score $(DEMO_SCORE_YEAR)-$(DEMO_SCORE_MONTH)" $(DEMO_LOG) '^result: [^;]*|^verdict: [A-Za-z-]+|already scored by [^ ]+' \
		$(MAKE) score YEAR=$(DEMO_SCORE_YEAR) MONTH=$(DEMO_SCORE_MONTH)
	@echo "Prefect UI: http://$(TO_BIKES_HOST):$(TO_BIKES_PREFECT_PORT)  (details: $(DEMO_LOG))"
	@echo "The stack and a worker keep running; \`make down\` stops them (worker pid file: $(TO_BIKES_STATE_DIR_MK)/run/worker.pid)."

# Issue 17: score and monitor a month through the `score` deployment (queue score); serve the champion.
# The demo scores the sample's last month (models/sample generates 2025-01..2025-12).
DEMO_SCORE_YEAR ?= 2025
DEMO_SCORE_MONTH ?= 12
TO_BIKES_SERVE_PORT ?= 5100
SCREENSHOTS_DIR ?= docs/images

score: $(AGENT_STAMP) ## Score and monitor YEAR (MONTH optional) with the champion via the score deployment; prints the figures and verdict
	@test -n "$(YEAR)" || { echo "error: give YEAR=YYYY (and MONTH=M for a month), e.g. make score YEAR=2025 MONTH=12." >&2; exit 2; }
	$(ORCH) score --year $(YEAR) $(if $(MONTH),--month $(MONTH))

months: $(AGENT_STAMP) ## One row per month: raw files, rows in/out/quarantined, models, gate, scored by, verdict, last flow run
	$(ORCH) months

MONTHS ?= 12
simulate-year: $(AGENT_STAMP) ## A time-compressed 2025 from a fake portal, MONTHS= (12) one at a time, the last collapsed; ends with the months table (RECEIVER=1)
	$(ORCH) simulate-year --months $(MONTHS) $(if $(filter-out 0,$(RECEIVER)),--receiver)

SEED ?= 30
FAULTS ?= 20
soak: $(AGENT_STAMP) ## simulate-year's publication under a seeded fault schedule (SEED=, MONTHS= 1..24: from 2025-01, from 2024-01 when over 12, FAULTS=; OUTAGE_SCALE= shortens outages), then a table of invariants; exit 1 if one fails
	$(ORCH) soak --seed $(SEED) --months $(MONTHS) --faults $(FAULTS) $(if $(OUTAGE_SCALE),--outage-scale $(OUTAGE_SCALE))

serve: $(VENV_STAMP) ## MLflow's model server for the champion on 127.0.0.1:TO_BIKES_SERVE_PORT (5100); restart it for a new champion
	$(PY) -m models serve --port $(TO_BIKES_SERVE_PORT)

screenshots: $(AGENT_STAMP) ## PNGs of the flow runs list, a score run graph, monitoring history, Evidently report, MLflow training runs and model page (headless Chromium) into docs/images/
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
	$(ORCH) screenshots --dest $(SCREENSHOTS_DIR)

README ?= README.md
readme-blocks: $(AGENT_STAMP) ## Run the README's verbatim blocks' commands on the running stack and rewrite each block with their output and a stamp (commit, date, load, cache state)
	$(ORCH) readme-blocks --readme $(README)

# --- docker agent (issue 10): agent-image, agent-docker ----------------------------------
# The worker image (agent/Dockerfile): the locked runtime only; flow code comes from S3 per run.
# Scripts in agent/docker/: engine.sh starts dockerd only when no engine answers (pid in .stack/),
# base_image.sh makes local/debian:bookworm with debootstrap when the official image cannot be
# pulled, wheelhouse.sh downloads requirements/agent.txt's wheels, worker.sh runs the container.
AGENT_DOCKER := agent/docker

.PHONY: agent-image agent-image-size agent-docker agent-docker-stop docker-engine-stop

agent-image: ## Build the worker image to-bikes-agent:latest and :<git sha> (starts dockerd if needed)
	$(AGENT_DOCKER)/image.sh

agent-image-size: ## The agent image's size: uncompressed, and each layer gzipped as a registry stores it (agent/docker/size.sh)
	$(AGENT_DOCKER)/size.sh

agent-docker: agent-image ## Run the worker container (host network) for pool to-bikes against the stack; Ctrl-C stops it
	$(AGENT_DOCKER)/worker.sh run

agent-docker-stop: ## Stop the worker container started by agent-docker (cid in .stack/agent-docker.cid)
	$(AGENT_DOCKER)/worker.sh stop

docker-engine-stop: ## Stop the dockerd that agent-image started (pid in .stack/dockerd.pid); never any other
	$(AGENT_DOCKER)/engine.sh stop


# --- benchmarks (issue 7) -----------------------------------------------------------------
# `make bench` measures preprocessing, peak memory, the Polars/DuckDB/pandas peers (issue 20), training
# and orchestration, each beside a reference measured in the same run on the same generated data
# (bench/run.py), and writes
# bench/results.md and bench/results.json. Inputs, logs and scratch live in bench/work/ (git-ignored)
# and are reused while BENCH_ROWS and the seed stay the same. BENCH_ROWS=7800000 is a 2025-sized year.
BENCH_ROWS ?= 2000000
BENCH_ARGS ?=
.PHONY: bench

bench: $(VENV_STAMP) $(BENCH_STAMP) ## Benchmarks with same-run references and peers -> bench/results.md (BENCH_ROWS, BENCH_ARGS)
	$(PY) -m bench --rows $(BENCH_ROWS) $(BENCH_ARGS)
