#!/usr/bin/env bash
# Checks systemd/care-agent.service (and care-agent-syslog.socket) with systemd-analyze (verify, and the security exposure score).
# The unit names /usr/local/bin/care-agent; a temporary copy points at the built binary instead
# so that it can be checked before installation.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(swift build --show-bin-path)/care-agent"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
sed "s#/usr/local/bin/care-agent#$bin#g" systemd/care-agent.service > "$tmp/care-agent.service"
cp systemd/care-agent-syslog.socket "$tmp/"
systemd-analyze verify "$tmp/care-agent.service" "$tmp/care-agent-syslog.socket"
echo "systemd-analyze verify: ok"
systemd-analyze security --offline=yes "$tmp/care-agent.service" | tail -n 3
