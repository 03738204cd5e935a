#!/usr/bin/env bash
set -euo pipefail
sed -i 's/^currency EUR$/currency = EUR/' /etc/inventory/settings.ini
