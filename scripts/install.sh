#!/bin/sh
# Builds care-agent in release mode and installs it as a systemd service:
#   /usr/local/bin/care-agent, /etc/systemd/system/care-agent.service,
#   /etc/care-agent/agent.conf.example (and agent.conf if there is none yet),
#   system user and group care-agent. Then enables and starts the service
#   (unless --no-start). Run from the repository root as root.
set -eu

PREFIX=/usr/local
START=yes
BUILD=yes
BINARY=
for arg in "$@"; do
    case "$arg" in
        --no-start) START=no ;;
        --no-build) BUILD=no ;;
        --prefix=*) PREFIX="${arg#--prefix=}" ;;
        --binary=*) BINARY="${arg#--binary=}"; BUILD=no ;;
        -h|--help) echo "usage: $0 [--no-build] [--no-start] [--prefix=/usr/local] [--binary=PATH]"; exit 0 ;;
        *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (it creates a system user and installs a systemd unit)" >&2
    exit 1
fi
cd "$(dirname "$0")/.."

if [ "$BUILD" = yes ]; then
    swift build -c release --product care-agent
fi
[ -n "$BINARY" ] || BINARY="$(swift build -c release --show-bin-path)/care-agent"
[ -x "$BINARY" ] || { echo "install.sh: $BINARY not found; build first" >&2; exit 1; }

if ! getent group care-agent >/dev/null; then
    groupadd --system care-agent
fi
if ! getent passwd care-agent >/dev/null; then
    useradd --system --gid care-agent --home-dir /var/lib/care-agent --no-create-home \
        --shell /usr/sbin/nologin --comment "care-agent collector" care-agent
fi

install -D -m 0755 "$BINARY" "$PREFIX/bin/care-agent"
install -D -m 0644 systemd/care-agent.service /etc/systemd/system/care-agent.service
if [ "$PREFIX" != /usr/local ]; then
    sed -i "s|/usr/local/bin/care-agent|$PREFIX/bin/care-agent|" /etc/systemd/system/care-agent.service
fi
install -d -m 0750 -o root -g care-agent /etc/care-agent /etc/care-agent/credentials
install -m 0640 -o root -g care-agent agent.conf.example /etc/care-agent/agent.conf.example
if [ ! -e /etc/care-agent/agent.conf ]; then
    install -m 0640 -o root -g care-agent agent.conf.example /etc/care-agent/agent.conf
    echo "install.sh: wrote /etc/care-agent/agent.conf from the example: edit it (devices, user, key-file)"
fi
install -D -m 0644 docs/agent.md "$PREFIX/share/doc/care-agent/agent.md"
# Reference data for `care-agent report` (advisories, release and hardware milestones).
install -d -m 0755 "$PREFIX/share/care-agent/data" "$PREFIX/share/care-agent/data/juniper-advisories"
install -m 0644 data/*.tsv data/README.md "$PREFIX/share/care-agent/data/"
install -m 0644 data/juniper-advisories/* "$PREFIX/share/care-agent/data/juniper-advisories/"

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable care-agent.service
    if [ "$START" = yes ]; then
        systemctl restart care-agent.service
        systemctl --no-pager status care-agent.service || true
    fi
else
    # A container or an image being built: the unit is in place for when systemd runs.
    echo "install.sh: systemd is not running here; enable later with: systemctl enable --now care-agent"
fi
echo "install.sh: installed $PREFIX/bin/care-agent; logs: journalctl -u care-agent"
