#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian machine: Docker Engine (started without systemd), the package in
# .venv with the extras named in $CLIGYM_EXTRAS (default: dev), and the base images built locally.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]} from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -z "${DOCKER_HOST:-}" ] && ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd (log: /var/log/dockerd.log)"
  setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not come up; see /var/log/dockerd.log" >&2; exit 1; }
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${CLIGYM_EXTRAS:-dev}]"
.venv/bin/cligym images bootstrap
