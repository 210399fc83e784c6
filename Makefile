# make run   - create .venv, install, migrate, collect static, serve with gunicorn on 127.0.0.1:$(PORT)
#              and start a Celery worker for classification jobs beside it
# make worker - a Celery worker only (CELERY_BROKER_URL from the environment or .env)
# make env   - create .env from .env.example with generated secrets, or fill those it lacks
# make test  - install the dev tools (and Chromium if missing), lint, validate the API schema, run pytest
# make model - rebuild ml/models/ (train, export, evaluate, package) from ../shared/data
# make notebooks - execute notebooks/*.ipynb in place, outputs kept (DATA_ROOT, default ../shared/data)
# make docker-check - build the image, run the compose stack on a private dockerd, check it (root)
# make lock  - regenerate requirements.lock (every runtime package, with hashes) from requirements.txt

PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
GUNICORN_WORKERS ?= 2
GUNICORN_THREADS ?= 4

.PHONY: run worker test lint migrate env chromium clean model model-galaxy10 ood notebooks docker-check lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt requirements-train.txt | $(BIN)/python
	$(BIN)/pip install -r requirements-dev.txt
	touch $(VENV)/.runtime-installed $@

# The fallback backend, tflite-runtime, needs numpy<2: it gets its own virtualenv,
# which the tests use to prove the shipped model loads and agrees there too.
TFLITE_VENV ?= .venv-tflite
$(TFLITE_VENV)/.installed: requirements-tflite-runtime.txt
	$(PYTHON) -m venv $(TFLITE_VENV)
	$(TFLITE_VENV)/bin/pip install -r requirements-tflite-runtime.txt
	touch $@

DATA_ROOT ?= ../shared/data
model: $(VENV)/.dev-installed
	$(BIN)/python -m ml.pipeline --data-root $(DATA_ROOT) --run ml/runs/shipped

# Train on the real Galaxy10 DECaLS file (README, "Train on your own Galaxy10_DECals.h5"): the
# same pipeline as `make model`, its output kept apart from the shipped model until validated.
GALAXY10_RUN ?= ml/runs/galaxy10-h5
model-galaxy10: $(VENV)/.dev-installed
	@test -f "$(H5)" || { echo "usage: make model-galaxy10 H5=/path/to/Galaxy10_DECals.h5" >&2; exit 2; }
	$(BIN)/python -m ml.pipeline --galaxy10-h5 "$(H5)" --data-root $(DATA_ROOT) --run $(GALAXY10_RUN) \
		--models-dir $(GALAXY10_RUN)/models --static-dir $(GALAXY10_RUN)/static

# Refit only the out-of-distribution gate of the packaged model (docs/ood.md), e.g. after
# replacing ml/models/galaxy10.tflite; `make model` already does this.
ood: $(VENV)/.dev-installed
	$(BIN)/python -m ml.ood fit --models-dir ml/models --data-root $(DATA_ROOT)
	$(BIN)/python -m ml.pipeline --card-only --models-dir ml/models

# The notebooks read the packaged model (ml/models/) and the data; they train nothing. Executed
# in place with nbclient's `jupyter execute`, from the notebooks' own folder (they move to the
# repository root themselves); a cell that raises stops the run and fails the target.
NOTEBOOKS ?= notebooks/01-data-and-labels.ipynb notebooks/02-train-and-evaluate.ipynb
notebooks: $(VENV)/.dev-installed
	DATA_ROOT="$(abspath $(DATA_ROOT))" $(BIN)/jupyter execute --inplace --timeout=1800 $(NOTEBOOKS)

# A local, production-like configuration: .env.example's (DEBUG off, plain HTTP because
# gunicorn listens on loopback only: put TLS in front of it before exposing it anywhere), with
# secrets generated once and kept in the git-ignored .env, which docker compose reads too.
# Run on every `make run`: it fills secrets left empty (a `cp .env.example .env`) and never
# changes one already set (galaxysite/envfile.py).
env:
	@$(PYTHON) galaxysite/envfile.py .env

# Safe to run twice at once (`make run` and `make worker` together on a fresh database): the
# project's migrate command holds a lock for its whole run (classifier/management/commands/migrate.py).
migrate: $(VENV)/.runtime-installed env
	$(MANAGE) migrate --noinput

# MALLOC_ARENA_MAX=2: glibc otherwise gives each of a worker's threads its own malloc arena,
# which fragments and keeps a gunicorn worker's memory several MB higher (docs/benchmarks.md).
# Classification jobs run on Celery workers. `make run` starts one beside gunicorn
# (EMBEDDED_WORKER=0 leaves it out, when workers run elsewhere); without CELERY_BROKER_URL
# the job queue is a folder (var/job-queue), so no broker server is needed. JOB_WORKERS
# sets the worker's processes (default: one per core).
EMBEDDED_WORKER ?= 1
JOB_WORKERS ?=
CELERY_WORKER := MALLOC_ARENA_MAX=2 $(BIN)/celery -A galaxysite worker --loglevel INFO \
	--without-gossip --without-mingle $(if $(JOB_WORKERS),--concurrency $(JOB_WORKERS))

worker: migrate
	$(CELERY_WORKER)

run: migrate
	$(MANAGE) collectstatic --noinput
	@echo "Serving on http://127.0.0.1:$(PORT)/"
	@if [ "$(EMBEDDED_WORKER)" = 1 ]; then \
		$(CELERY_WORKER) & worker=$$!; \
		trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	fi; \
	MALLOC_ARENA_MAX=2 $(BIN)/gunicorn galaxysite.wsgi:application --config python:galaxysite.gunicorn \
		--bind 127.0.0.1:$(PORT) \
		--workers $(GUNICORN_WORKERS) --threads $(GUNICORN_THREADS) \
		--access-logfile -

# Debian packages the tests need: Chromium for the browser tests, GNU gettext to
# check that the shipped Spanish catalog covers every marked string, GnuPG for the
# encrypted backup round trip.
chromium:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/xgettext ] || [ ! -x /usr/bin/gpg ]; then \
		if [ "$$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium gettext gnupg; \
	fi

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: $(VENV)/.dev-installed $(TFLITE_VENV)/.installed chromium lint
	DJANGO_SETTINGS_MODULE=galaxysite.test_settings $(MANAGE) spectacular --validate --fail-on-warn --file /dev/null
	TFLITE_RUNTIME_PYTHON=$(TFLITE_VENV)/bin/python $(BIN)/pytest

# The image installs requirements.lock: every runtime package, transitive ones included, pinned
# with its hashes. Rerun after changing requirements.txt. Only PyPI counts, whatever the local
# pip configuration adds (extra indexes, local wheels, constraints).
lock: $(VENV)/.dev-installed
	PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_CONSTRAINT= $(BIN)/pip-compile --quiet --generate-hashes \
		--strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
		--index-url https://pypi.org/simple --output-file requirements.lock requirements.txt

# Installs Debian's docker.io, docker-compose and mmdebstrap if missing, then builds and runs
# the stack on its own dockerd and removes everything afterwards (docker/check.sh).
docker-check:
	@if [ "$$(id -u)" -eq 0 ]; then docker/check.sh; else sudo docker/check.sh; fi

clean:
	rm -rf staticfiles .pytest_cache .ruff_cache
