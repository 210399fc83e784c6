# make run   - create .venv, install, migrate, collect static, serve with gunicorn on 127.0.0.1:$(PORT)
# make test  - install the dev tools (and Chromium if missing), lint, validate the API schema, run pytest

PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
GUNICORN_WORKERS ?= 2
GUNICORN_THREADS ?= 4

.PHONY: run test lint migrate chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -r requirements-dev.txt
	touch $(VENV)/.runtime-installed $@

# A local, production-like configuration: DEBUG off, a secret generated once
# and kept in the git-ignored .env, and plain HTTP because gunicorn listens on
# loopback only (put TLS in front of it before exposing it anywhere).
.env: | $(BIN)/python
	@echo "Creating .env with a new secret key (kept out of git)."
	@$(BIN)/python -c "import secrets; print('DJANGO_SECRET_KEY=' + secrets.token_urlsafe(50))" > $@
	@echo "DJANGO_DEBUG=false" >> $@
	@echo "DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost" >> $@
	@echo "DJANGO_SECURE_HTTPS=false" >> $@

migrate: $(VENV)/.runtime-installed .env
	$(MANAGE) migrate --noinput

run: migrate
	$(MANAGE) collectstatic --noinput
	@echo "Serving on http://127.0.0.1:$(PORT)/"
	$(BIN)/gunicorn galaxysite.wsgi:application \
		--bind 127.0.0.1:$(PORT) \
		--workers $(GUNICORN_WORKERS) --threads $(GUNICORN_THREADS) \
		--access-logfile -

chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium; \
	fi

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .

test: $(VENV)/.dev-installed chromium lint
	DJANGO_SETTINGS_MODULE=galaxysite.test_settings $(MANAGE) spectacular --validate --fail-on-warn --file /dev/null
	$(BIN)/pytest

clean:
	rm -rf staticfiles .pytest_cache .ruff_cache
