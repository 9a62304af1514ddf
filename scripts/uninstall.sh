#!/bin/sh
# Stops and removes the care-agent service and binary. Keeps its configuration
# (/etc/care-agent, credentials in /etc/credstore), state (/var/lib/care-agent: results, outbox, known_hosts, key) and
# logs, and the care-agent user, unless --purge is given.
set -eu

PREFIX=/usr/local
PURGE=no
for arg in "$@"; do
    case "$arg" in
        --purge) PURGE=yes ;;
        --prefix=*) PREFIX="${arg#--prefix=}" ;;
        -h|--help) echo "usage: $0 [--purge] [--prefix=/usr/local]"; exit 0 ;;
        *) echo "uninstall.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "uninstall.sh: run as root" >&2
    exit 1
fi

if systemctl list-unit-files care-agent.service >/dev/null 2>&1; then
    systemctl disable --now care-agent.service 2>/dev/null || true
fi
if systemctl list-unit-files care-agent-syslog.socket >/dev/null 2>&1; then
    systemctl disable --now care-agent-syslog.socket 2>/dev/null || true
fi
rm -f /etc/systemd/system/care-agent.service /etc/systemd/system/care-agent-syslog.socket
systemctl daemon-reload 2>/dev/null || true
rm -f "$PREFIX/bin/care-agent"
rm -rf "$PREFIX/share/doc/care-agent" "$PREFIX/share/care-agent"

if [ "$PURGE" = yes ]; then
    rm -rf /etc/care-agent /var/lib/care-agent /var/log/care-agent /run/care-agent
    # The unit's credentials in systemd's store; the store itself only when nothing else is in it.
    rm -f /etc/credstore/netconf-password /etc/credstore/netconf-passphrase /etc/credstore/upload-token
    rmdir /etc/credstore 2>/dev/null || true
    if getent passwd care-agent >/dev/null; then userdel care-agent; fi
    if getent group care-agent >/dev/null; then groupdel care-agent 2>/dev/null || true; fi
    echo "uninstall.sh: removed care-agent with its configuration, state, logs and user"
else
    echo "uninstall.sh: removed care-agent; kept /etc/care-agent, /var/lib/care-agent, /var/log/care-agent and the care-agent user (--purge removes them)"
fi
