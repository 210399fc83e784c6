#!/usr/bin/env bash
# make docker-check: build the image and run the compose stack on a private dockerd, then check
# it through the proxy. Needs root; installs Debian's docker.io, docker-compose and mmdebstrap
# when they are missing. No machine here reaches Docker Hub, so the base images are stand-ins
# built from Debian's archive (docker/stand-ins). The dockerd changes nothing in the host's
# network (no iptables rules, no default bridge, no forwarding), and everything it made, its
# data included, is removed on exit whatever happens.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[[ $(id -u) -eq 0 ]] || { echo "docker-check: run as root (it starts dockerd)" >&2; exit 1; }

# Debian's CLI first: it builds with the legacy builder, which needs nothing from Docker Hub
# (another docker CLI on PATH may default to BuildKit, which needs buildx).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
SECONDS=0
phase() { printf '\n== %s (%d s)\n' "$1" "$SECONDS"; }

phase "requirements.lock against requirements.txt"
# The image installs the lock alone: a package added to requirements.txt without `make lock`
# would be missing from it.
python3 - <<'EOF'
import re
import sys


def pins(path):
    found = {}
    with open(path) as lines:
        for line in lines:
            match = re.match(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s;\\]+)", line)
            if match:
                found[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[3]
    return found


wanted, locked = pins("requirements.txt"), pins("requirements.lock")
stale = [f"{name}=={version}" for name, version in wanted.items() if locked.get(name) != version]
if stale:
    sys.exit("requirements.lock lacks " + ", ".join(stale) + ": run `make lock`")
print(f"requirements.lock: {len(locked)} packages, all {len(wanted)} pins of requirements.txt")
EOF

phase "tools"
missing=0
for tool in dockerd docker docker-compose mmdebstrap; do [[ -x /usr/bin/$tool ]] || missing=1; done
if [[ $missing -eq 1 ]]; then
  # Keep apt from starting a dockerd with its defaults (which would change the host's network).
  policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    policy=/usr/sbin/policy-rc.d
  fi
  installed=0
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    docker.io docker-compose mmdebstrap && installed=1
  [[ -z $policy ]] || rm -f "$policy"
  [[ $installed -eq 1 ]] || exit 1
fi

WORK=$(mktemp -d /var/tmp/docker-check.XXXXXX)
export DOCKER_HOST=unix://$WORK/docker.sock
PROJECT=galaxycheck
TAG=check
ENV_FILE=$WORK/check.env
dockerd_pid=""
compose() {
  docker-compose --env-file "$ENV_FILE" -p "$PROJECT" -f docker-compose.yml -f docker/compose.ci.yml "$@"
}

cleanup() {
  local status=$?
  set +e
  trap - EXIT INT TERM
  local cleanup_started=$SECONDS
  echo
  echo "== clean-up ($SECONDS s)"
  local bridges=""
  if [[ -S $WORK/docker.sock ]] && docker info >/dev/null 2>&1; then
    # The host-side bridges of the stack's networks (br- and the short network id), in case
    # `down` cannot remove them.
    bridges=$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" | sed 's/^/br-/')
    if [[ $status -ne 0 ]]; then
      echo "== docker-check failed; the stack's last log lines:" >&2
      compose ps >&2
      compose logs --no-color --tail 40 >&2
    fi
    compose down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1
  fi
  if [[ -n $dockerd_pid ]]; then
    kill "$dockerd_pid" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$dockerd_pid" 2>/dev/null
  fi
  # A dockerd that had to be killed leaves its containerd and shims, all started with paths
  # under the work folder.
  pgrep -f -- "$WORK/" | xargs -r kill -9 2>/dev/null
  # Mounts left under the work folder (the network namespace, overlays), deepest first.
  findmnt -rn -o TARGET | grep "^$WORK/" | sort -r | xargs -r -n1 umount -l
  for bridge in $bridges; do
    ip link show "$bridge" >/dev/null 2>&1 && ip link delete "$bridge"
  done
  rm -rf "$WORK"
  echo "cleaned up in $((SECONDS - cleanup_started)) s"
  if [[ $status -eq 0 ]]; then echo "docker-check: OK in $SECONDS s"; else echo "docker-check: FAILED ($status)" >&2; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

phase "dockerd"
dockerd --iptables=false --ip-masq=false --ip6tables=false --ip-forward=false --bridge=none \
  --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
  -H "$DOCKER_HOST" >"$WORK/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker info >/dev/null || { tail -20 "$WORK/dockerd.log" >&2; exit 1; }

phase "stand-in base images (debian:bookworm-slim, python:3.11-slim, local/postgres:15, local/redis:7)"
docker/stand-ins/base-images.sh

# The stack's configuration: .env.example as an operator copies it (plain HTTP), with fresh
# secrets. 127.0.0.1 is deliberately not an allowed host: the image's HEALTHCHECK must turn
# healthy without it. The port is any free one on loopback.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
host=galaxy.test
grep -v -E '^(DJANGO_SECRET_KEY|DJANGO_ALLOWED_HOSTS|POSTGRES_PASSWORD|PORT|IMAGE_TAG|GALAXY_ENV_FILE)=' \
  .env.example >"$ENV_FILE"
cat >>"$ENV_FILE" <<EOF
GALAXY_ENV_FILE=$ENV_FILE
IMAGE_TAG=$TAG
PORT=$port
DJANGO_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')
DJANGO_ALLOWED_HOSTS=$host
POSTGRES_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
EOF

phase "build"
# migrate and web share one image: build it once (web then finds it), beside the proxy's.
compose build --parallel migrate proxy
image=galaxy-classifier:$TAG
size() { docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }
echo "image sizes: $image $(size "$image"), galaxy-classifier-proxy:$TAG $(size "galaxy-classifier-proxy:$TAG")," \
  "base python:3.11-slim $(size python:3.11-slim)"

phase "the image alone: SQLite default in its volume, code read-only, non-root"
docker run --rm --network none -e DJANGO_SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')" "$image" sh -ec '
  python manage.py migrate --noinput >/dev/null
  test -s /app/data/db.sqlite3
  test "$(id -u)" -ne 0
  if touch /app/manage.py /app/new-file 2>/dev/null; then echo "the code is writable" >&2; exit 1; fi
  echo "migrated SQLite at /app/data/db.sqlite3 as $(id -un) (uid $(id -u)); /app is read-only to it"'

phase "up"
compose up -d
check() { python3 docker/check_stack.py "$@" --port "$port" --host-header "$host"; }

phase "checks through the proxy"
check ready --wait 180
check page
check upload
web=$(compose ps -q web)
proxy=$(compose ps -q proxy)
uid=$(docker exec "$web" awk '/^Uid:/ {print $2}' /proc/1/status)
[[ $uid -ne 0 ]] || { echo "FAIL: gunicorn runs as root" >&2; exit 1; }
echo "web: gunicorn runs as uid $uid ($(docker exec "$web" id -un))"
uid=$(docker exec "$proxy" awk '/^Uid:/ {print $2}' /proc/1/status)
[[ $uid -ne 0 ]] || { echo "FAIL: nginx runs as root" >&2; exit 1; }
echo "proxy: nginx runs as uid $uid"
[[ -z $(docker port "$web") ]] || { echo "FAIL: web publishes a port" >&2; exit 1; }
echo "published ports: proxy $(docker port "$proxy" | tr '\n' ' ')web none"
recorded=$(compose exec -T db sh -c 'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc "SELECT client_ip FROM classifier_prediction"')
[[ -n $recorded && $recorded != 203.0.113.77 ]] || { echo "FAIL: recorded client address '$recorded'" >&2; exit 1; }
echo "client address recorded: $recorded (the spoofed X-Forwarded-For 203.0.113.77 was replaced by nginx)"
check slow-clients --sockets 100 --timeout 5 --closed-within 15

phase "the Celery worker, on the stack's Redis"
pong=""
for _ in $(seq 60); do
  pong=$(compose exec -T worker celery -A galaxysite inspect ping --timeout 5 2>/dev/null || true)
  [[ $pong == *pong* ]] && break
  sleep 2
done
[[ $pong == *pong* ]] || { echo "FAIL: the worker does not answer a ping" >&2; compose logs worker >&2; exit 1; }
echo "worker: $(echo "$pong" | grep -o 'pong' | head -1) from $(compose ps -q worker | cut -c1-12)"
uid=$(docker exec "$(compose ps -q worker)" awk '/^Uid:/ {print $2}' /proc/1/status)
[[ $uid -ne 0 ]] || { echo "FAIL: the Celery worker runs as root" >&2; exit 1; }

phase "HEALTHCHECK"
for _ in $(seq 120); do
  health=$(docker inspect --format '{{.State.Health.Status}}' "$web")
  [[ $health == starting ]] || break
  sleep 1
done
[[ $health == healthy ]] || {
  echo "FAIL: web is $health" >&2
  docker inspect --format '{{json .State.Health}}' "$web" >&2
  exit 1
}
echo "web: $health (the image's HEALTHCHECK, without 127.0.0.1 in DJANGO_ALLOWED_HOSTS)"

phase "the same slow clients straight at gunicorn, without the proxy: its worker buffers heads too"
docker exec -i "$web" python - slow-clients --port 8000 --host-header "$host" --sockets 100 --timeout 5 \
  --closed-within 15 <docker/check_stack.py
