#!/usr/bin/env bash
# Set up everything (scripts/setup.sh), then run the main job end to end (`cligym demo`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/cligym demo "$@"
