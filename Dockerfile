FROM python:3.11-slim

# MALLOC_ARENA_MAX=2: one malloc arena per gunicorn thread fragments a worker's memory.
# The code is read-only to the app user; what the app writes lives in /app/data, a volume:
# the SQLite default (when DATABASE_URL names no server) and the uploaded images.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_URL=sqlite:////app/data/db.sqlite3 \
    DJANGO_MEDIA_ROOT=/app/data/media

WORKDIR /app

RUN groupadd --system app \
    && useradd --system --gid app --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin app

# Every package, transitive ones included, pinned with its hashes (make lock).
COPY requirements.lock .
RUN pip install --no-deps --require-hashes -r requirements.lock

# Owned by root: the app user can read the code and the model, not change them.
COPY . .

# collectstatic needs settings but no real secret; a throwaway key (settings refuse short
# ones) exists only in this build step.
# The bytecode is compiled here because the runtime user cannot write next to the code.
RUN DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    python manage.py collectstatic --noinput \
    && python -m compileall -q classifier galaxysite docker \
    && mkdir -p /app/data/media \
    && chown -R app:app /app/data

# A named volume mounted here starts as a copy of this folder, so it is the app user's too.
VOLUME ["/app/data"]

USER app

EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "docker/healthcheck.py"]

# Migrations run once per deploy, not here (docker-compose.yml's migrate service), so that
# several replicas can start together.
CMD ["sh", "-c", "exec gunicorn galaxysite.wsgi:application --config python:galaxysite.gunicorn --bind 0.0.0.0:8000 --workers ${GUNICORN_WORKERS:-2} --threads ${GUNICORN_THREADS:-4} --access-logfile -"]
