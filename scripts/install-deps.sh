#!/usr/bin/env bash
# Installs the Debian packages care-agent builds and tests with (scripts/apt-packages.txt),
# ncclient for the interop tests, and the CycloneDX schemas for the report tests. Quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
while read -r pkg; do
    [ -n "$pkg" ] || continue
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done < scripts/apt-packages.txt
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: missing packages: ${missing[*]}; run as root (sudo $0)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
fi
if ! python3 -c 'import ncclient' 2>/dev/null; then
    python3 -m pip install -q ncclient 2>/dev/null || python3 -m pip install -q --break-system-packages ncclient
fi
# The official CycloneDX JSON schemas (shipped in cyclonedx-python-lib) and a validator, for the
# report tests' VEX check (scripts/validate-cyclonedx.py).
if ! python3 -c 'import cyclonedx.schema, jsonschema, referencing' 2>/dev/null; then
    python3 -m pip install -q cyclonedx-python-lib jsonschema 2>/dev/null || python3 -m pip install -q --break-system-packages cyclonedx-python-lib jsonschema
fi
# schemathesis checks care-support's read-only API against docs/intake-api.yaml.
if ! command -v st >/dev/null 2>&1; then
    python3 -m pip install -q schemathesis 2>/dev/null || python3 -m pip install -q --break-system-packages schemathesis
fi
# A real Nautobot for the inventory-source tests: a venv and a migrated database dump cached in
# /var/cache/care-agent-test/nautobot (first run: pip and migrations, several minutes; then instant).
scripts/sot-server.sh prepare
