#!/usr/bin/env bash
# Builds stand-ins for the Docker Hub base images from the Debian archive this machine's apt uses:
#   debian:bookworm-slim, python:3.11-slim (Debian's Python 3.11 in a venv on PATH),
#   local/postgres:15 (Debian's PostgreSQL 15, with a minimal POSTGRES_USER/PASSWORD/DB entrypoint),
#   local/redis:7 (Debian's Redis 7, in memory only).
# Needs a running dockerd (DOCKER_HOST) and mmdebstrap. Run as root.
# Vendored from ../shared/docker (2026-11-27) so that `make docker-check` works in any clone;
# changes: the Debian image is also tagged debian:bookworm-slim (the proxy's base), the two
# images built on it are built side by side, and the temporary folder is removed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# The archive URIs come from apt's own configuration, so nothing here names a host.
uris=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}')
main=$(echo "$uris" | grep -v security | head -1); sec=$(echo "$uris" | grep security | head -1)
[[ -n $main && -n $sec ]] || { echo "cannot read the Debian archive URIs from apt's sources" >&2; exit 1; }
mmdebstrap --mode=root --variant=minbase \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --include=ca-certificates,netbase,tzdata \
  --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Languages "none"' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/"; chroot "$1" update-ca-certificates; fi' \
  bookworm "$WORK/bookworm-slim.tar" \
  "deb $main bookworm main" "deb $main bookworm-updates main" "deb $sec bookworm-security main"
docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' "$WORK/bookworm-slim.tar" local/debian:bookworm-slim
rm -f "$WORK/bookworm-slim.tar"
docker tag local/debian:bookworm-slim debian:bookworm-slim
docker build -q --network host -t local/python:3.11-slim "$HERE/python" &
python_build=$!
docker build -q --network host -t local/postgres:15 "$HERE/postgres"
docker build -q --network host -t local/redis:7 "$HERE/redis"
wait "$python_build"
docker tag local/python:3.11-slim python:3.11-slim
