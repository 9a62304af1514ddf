#!/usr/bin/env bash
# Exercises scripts/install.sh and scripts/uninstall.sh on this machine (as root): files, modes,
# the system user, the unit's ExecStart; then uninstall (keeping state) and --purge.
# Skipped, without touching anything, where care-agent is really installed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then echo "check-install: skipped (needs root)"; exit 0; fi
if [ -e /etc/care-agent ] || [ -e /etc/credstore ] || getent passwd care-agent >/dev/null; then
    echo "check-install: skipped: care-agent is installed on this machine; not touching it"
    exit 0
fi
prefix="$(mktemp -d)"
trap 'scripts/uninstall.sh --purge --prefix="$prefix" >/dev/null 2>&1 || true; rm -rf "$prefix"' EXIT
fail() { echo "check-install: FAILED: $*" >&2; exit 1; }

scripts/install.sh --no-start --prefix="$prefix" --binary="$(swift build --show-bin-path)/care-agent"
"$prefix/bin/care-agent" --version >/dev/null || fail "installed binary does not run"
grep -q "^ExecStart=$prefix/bin/care-agent run --config /etc/care-agent/agent.conf$" /etc/systemd/system/care-agent.service \
    || fail "unit ExecStart does not name the installed binary"
grep -q "^ListenDatagram=514$" /etc/systemd/system/care-agent-syslog.socket || fail "the syslog socket unit is not installed"
[ ! -e /etc/systemd/system/sockets.target.wants/care-agent-syslog.socket ] || fail "the syslog socket unit was enabled by default"
[ "$(stat -c %a:%G /etc/care-agent/agent.conf)" = "640:care-agent" ] || fail "agent.conf is not 0640 root:care-agent"
[ "$(stat -c %a:%U /etc/credstore)" = "700:root" ] || fail "/etc/credstore is not 0700 root"
[ "$(stat -c %a:%U:%G /etc/care-agent/id_ed25519)" = "640:root:care-agent" ] || fail "the agent's SSH key is not 0640 root:care-agent"
[ -s /etc/care-agent/id_ed25519.pub ] || fail "no public key beside the agent's SSH key"
# The installed agent.conf parses and lists no device yet.
out=$("$prefix/bin/care-agent" collect now --standalone --config /etc/care-agent/agent.conf 2>&1) && fail "collect now with no device succeeded"
case "$out" in *"no devices to collect"*) ;; *) fail "the installed agent.conf is not valid: $out" ;; esac
[ "$(getent passwd care-agent | cut -d: -f7)" = "/usr/sbin/nologin" ] || fail "care-agent user can log in"
"$prefix/bin/care-agent" collect now --standalone --config /etc/care-agent/agent.conf --device NONE >/dev/null 2>&1 \
    && fail "an unknown device was accepted"
[ -f "$prefix/share/care-agent/data/junos-release-milestones.tsv" ] || fail "reference data not installed"
# The installed binary finds the installed data (no --data): the fixture's MX480 runs 15.1.
"$prefix/bin/care-agent" report eol --format csv Tests/Fixtures/bundles/baku-JN1249018AFB-20251125-020000.tar.gz \
    | grep -q ",software,re0: 15.1F5.15-C1.12,.*,15.1," || fail "report eol with the installed data"
echo "check-install: install ok"

# An upgrade over it: the configuration and the agent's key are kept; credentials a former unit
# read from /etc/care-agent/credentials/ are copied to /etc/credstore/ (root's, 0600).
key_before=$(sha256sum /etc/care-agent/id_ed25519)
echo "# kept across upgrades" >> /etc/care-agent/agent.conf
install -d -m 0700 /etc/care-agent/credentials
echo "device-password" > /etc/care-agent/credentials/netconf-password
scripts/install.sh --no-start --prefix="$prefix" --binary="$(swift build --show-bin-path)/care-agent" >/dev/null
grep -q "^# kept across upgrades$" /etc/care-agent/agent.conf || fail "the upgrade replaced agent.conf"
[ "$(sha256sum /etc/care-agent/id_ed25519)" = "$key_before" ] || fail "the upgrade replaced the agent's SSH key"
[ "$(stat -c %a:%U /etc/credstore/netconf-password)" = "600:root" ] && [ "$(cat /etc/credstore/netconf-password)" = "device-password" ] \
    || fail "the old credential was not copied to /etc/credstore (0600 root)"
rm -rf /etc/care-agent/credentials /etc/credstore/netconf-password
# A binary that does not run here is refused before anything is replaced, naming the problem.
out=$(scripts/install.sh --no-start --prefix="$prefix" --binary=/bin/false 2>&1) && fail "install.sh took a binary that does not run"
case "$out" in *"does not run here"*) ;; *) fail "install.sh did not say why it refused the binary: $out" ;; esac
[ -x "$prefix/bin/care-agent" ] && "$prefix/bin/care-agent" --version >/dev/null || fail "the refused binary replaced the installed one"
echo "check-install: upgrade ok"

echo "keep me" > /etc/care-agent/marker
scripts/uninstall.sh --prefix="$prefix"
[ ! -e "$prefix/bin/care-agent" ] || fail "binary left after uninstall"
[ ! -e "$prefix/share/care-agent" ] || fail "reference data left after uninstall"
[ ! -e /etc/systemd/system/care-agent.service ] || fail "unit left after uninstall"
[ ! -e /etc/systemd/system/care-agent-syslog.socket ] || fail "syslog socket unit left after uninstall"
[ -e /etc/care-agent/marker ] || fail "uninstall removed the configuration"
getent passwd care-agent >/dev/null || fail "uninstall removed the user"
scripts/uninstall.sh --purge --prefix="$prefix"
[ ! -e /etc/care-agent ] || fail "--purge left /etc/care-agent"
[ ! -e /etc/credstore ] || fail "--purge left an empty /etc/credstore"
! getent passwd care-agent >/dev/null || fail "--purge left the user"
echo "check-install: uninstall ok"
