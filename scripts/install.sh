#!/bin/sh
# Builds care-agent in release mode and installs it as a systemd service:
#   /usr/local/bin/care-agent, /etc/systemd/system/care-agent.service, care-agent-syslog.socket (not enabled),
#   /etc/care-agent/agent.conf.example, and when they do not exist yet: agent.conf (valid, no
#   devices), the agent's SSH key /etc/care-agent/id_ed25519 (0640 root:care-agent, .pub beside
#   it), /etc/credstore (0700 root: systemd credentials), the system user and group care-agent.
#   Then enables and starts the service (unless --no-start). Run as root.
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

# The Swift runtime and Foundation linked into the binary: it needs only Debian's libraries
# (libssh2, libxml2, libcurl, OpenSSL, zlib) at run time, not a Swift toolchain, starts in
# 13 ms instead of 18 and maps ~5 MiB less (docs/performance.md).
if [ "$BUILD" = yes ] || [ -z "$BINARY" ]; then
    command -v swift >/dev/null || {
        echo "install.sh: swift not found: install Swift 6 (README.md), or give a built binary with --binary=PATH" >&2; exit 1; }
fi
if [ "$BUILD" = yes ]; then
    swift build -c release --static-swift-stdlib --product care-agent
fi
[ -n "$BINARY" ] || BINARY="$(swift build -c release --static-swift-stdlib --show-bin-path)/care-agent"
[ -x "$BINARY" ] || { echo "install.sh: $BINARY not found; build first" >&2; exit 1; }
# It runs here, or says which of Debian's libraries it lacks, before anything is replaced.
if ! "$BINARY" --version >/dev/null 2>&1; then
    echo "install.sh: $BINARY does not run here:" >&2
    ldd "$BINARY" 2>&1 | grep "not found" >&2 || true
    echo "install.sh: install its libraries: apt-get install -y libssh2-1 libxml2 libcurl4 zlib1g" >&2
    exit 1
fi

if ! getent group care-agent >/dev/null; then
    groupadd --system care-agent
fi
if ! getent passwd care-agent >/dev/null; then
    useradd --system --gid care-agent --home-dir /var/lib/care-agent --no-create-home \
        --shell /usr/sbin/nologin --comment "care-agent collector" care-agent
fi

install -D -m 0755 "$BINARY" "$PREFIX/bin/care-agent"
install -D -m 0644 systemd/care-agent.service /etc/systemd/system/care-agent.service
# Syslog on port 514 through socket activation: installed, not enabled (the syslog trigger is
# optional; enable it with [syslog] listen = systemd in agent.conf, then
# systemctl enable care-agent-syslog.socket && systemctl restart care-agent).
install -D -m 0644 systemd/care-agent-syslog.socket /etc/systemd/system/care-agent-syslog.socket
if [ "$PREFIX" != /usr/local ]; then
    sed -i "s|/usr/local/bin/care-agent|$PREFIX/bin/care-agent|" /etc/systemd/system/care-agent.service
fi
install -d -m 0750 -o root -g care-agent /etc/care-agent
install -m 0640 -o root -g care-agent agent.conf.example /etc/care-agent/agent.conf.example
if [ ! -e /etc/care-agent/agent.conf ]; then
    install -m 0640 -o root -g care-agent systemd/agent.conf /etc/care-agent/agent.conf
    echo "install.sh: wrote /etc/care-agent/agent.conf: valid, no devices yet; add them there (every key: agent.conf.example)"
fi
# systemd's credential store: the unit's LoadCredential=NAME reads /etc/credstore/NAME (device
# password, key passphrase, upload token) as root and hands a copy to the agent alone.
if [ ! -e /etc/credstore ]; then
    install -d -m 0700 -o root -g root /etc/credstore
fi
# An upgrade from a version whose unit read /etc/care-agent/credentials/: its files are copied
# to /etc/credstore/ (root's, 0600), so that the restart below finds them.
if [ -d /etc/care-agent/credentials ]; then
    for old in /etc/care-agent/credentials/*; do
        [ -f "$old" ] || continue
        name=$(basename "$old")
        if [ ! -e "/etc/credstore/$name" ]; then
            install -m 0600 -o root -g root "$old" "/etc/credstore/$name"
            echo "install.sh: copied the credential $name to /etc/credstore/ (the unit reads it there now; remove $old when done)"
        fi
    done
fi

# The agent's SSH login key: readable by the agent, not writable by it.
KEY=/etc/care-agent/id_ed25519
if [ ! -e "$KEY" ]; then
    if command -v ssh-keygen >/dev/null; then
        ssh-keygen -q -t ed25519 -N "" -C "care-agent@$(uname -n)" -f "$KEY"
        chown root:care-agent "$KEY" "$KEY.pub"
        chmod 0640 "$KEY"
        chmod 0644 "$KEY.pub"
        echo "install.sh: generated the agent's SSH key $KEY"
    else
        echo "install.sh: ssh-keygen not found (package openssh-client): no SSH key generated; create $KEY yourself" >&2
    fi
fi
if [ -r "$KEY.pub" ]; then
    echo "install.sh: on each Junos device (configure mode), allow the agent in and turn NETCONF on (port 830):"
    echo "    set system login user care-agent class read-only authentication ssh-ed25519 \"$(cut -d' ' -f1-3 "$KEY.pub")\""
    echo "    set system services netconf ssh"
    echo "    commit"
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
        # The new binary reads the existing agent.conf and what it names first: a restart into
        # a configuration it refuses would leave the service down.
        if "$PREFIX/bin/care-agent" config check --config /etc/care-agent/agent.conf; then
            systemctl restart care-agent.service
            systemctl --no-pager status care-agent.service || true
        else
            echo "install.sh: not restarted: fix what config check says above, then: systemctl restart care-agent" >&2
            exit 2
        fi
    fi
else
    # A container or an image being built: the unit is in place for when systemd runs.
    echo "install.sh: systemd is not running here; enable later with: systemctl enable --now care-agent"
fi
echo "install.sh: installed $PREFIX/bin/care-agent; logs: journalctl -u care-agent"
