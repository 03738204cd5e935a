#!/usr/bin/env bash
set -euo pipefail
chmod +x /app/bin/inventory-report
