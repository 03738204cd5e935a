#!/usr/bin/env bash
set -euo pipefail
pip install --no-index --find-links /opt/wheelhouse unitconv
