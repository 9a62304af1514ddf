#!/usr/bin/env bash
# The service under a real systemd: boots Debian 12 (bookworm) with systemd as PID 1 in
# systemd-nspawn, installs the freshly built care-agent there with scripts/install.sh, and checks
# through systemctl and journalctl, against a simulated fleet on the host's loopback (the
# container shares the host's network):
#   - `systemctl start` returns once the agent sent READY=1 (Type=notify) and the unit is active;
#   - credentials arrive through LoadCredential= from /etc/credstore: the device key's passphrase
#     (passphrase-credential) and a device password (password-credential, for a device whose sshd
#     takes passwords only); an absent credential (upload-token) does not stop the start;
#   - the scheduled first run collects every device into bundles in the outbox;
#   - the watchdog is fed (WatchdogSec lowered to 6 s in a drop-in: its timestamp moves, no
#     watchdog timeout, no restart);
#   - `systemctl reload` applies a changed agent.conf (devices added), and a broken one is
#     refused, logged at priority err (`journalctl -p err`) and shown by `care-agent status`;
#   - `care-agent hosts scan --yes` inside records the added devices' host keys, keeping
#     known_hosts readable by the agent;
#   - `care-agent collect now` inside collects the added devices through the service, one of
#     them through a jump host (proxy-jump) on the host's loopback;
#   - journal entries carry no timestamp of their own, and the metadata as fields (DEVICE=, RPC=);
#   - `systemd-analyze security care-agent` is at most 2.0;
#   - syslog on port 514 through socket activation: care-agent-syslog.socket (installed, not
#     enabled by install.sh) enabled, `systemctl restart care-agent` starts it first and the
#     agent with [syslog] listen = systemd takes the
#     sockets; `logger` inside sends a FRU-offline over UDP and TCP to 514, the first collects an
#     event bundle for the mapped device, the second is within the rate limit; stopping the
#     agent stops the socket (PartOf=), starting it starts the socket again (WantedBy=);
#   - `systemctl stop` ends the agent cleanly within TimeoutStopSec;
#   - a broken agent.conf at start fails the unit, with the mistake at priority err in the journal.
# Prints one PASS or FAIL line per check; exits 1 when one failed. Needs root, debootstrap and
# systemd-container. The debootstrap tree is cached in $CARE_AGENT_TEST_CACHE (default
# /var/cache/care-agent-test/bookworm) and built when missing (250 MB; 40 s on an idle machine,
# 150 s measured on a loaded one); each run
# boots an overlay of it, so the cached tree stays clean.
#
#   scripts/check-systemd.sh [PATH-TO-care-agent]      (default: the release build install.sh
#                                                       makes: swift build -c release --static-swift-stdlib)
set -euo pipefail
# `producer | grep -q` fails under pipefail when grep exits at the first match and the producer
# (journalctl, care-agent status) is killed by SIGPIPE: read the whole input instead.
contains() { grep -c "$@" >/dev/null; }
cd "$(dirname "$0")/.."
REPO=$(pwd)

if [ "$(id -u)" -ne 0 ]; then echo "check-systemd: skipped (needs root)"; exit 0; fi
for tool in debootstrap systemd-nspawn nsenter ssh-keygen /usr/sbin/sshd python3 readelf; do
    command -v "$tool" >/dev/null || { echo "check-systemd: FAIL: $tool missing (apt-get install debootstrap systemd-container openssh-client openssh-server python3 binutils)"; exit 1; }
done
BIN=${1:-$(swift build -c release --static-swift-stdlib --show-bin-path)/care-agent}
[ -x "$BIN" ] || { echo "check-systemd: FAIL: $BIN not built"; exit 1; }

CACHE=${CARE_AGENT_TEST_CACHE:-/var/cache/care-agent-test}
TREE=$CACHE/bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# procps: /bin/kill for the unit's ExecReload. openssh-client: install.sh's ssh-keygen.
PACKAGES=systemd,systemd-sysv,dbus,procps,openssh-client,libssh2-1,libxml2,libcurl4
NAME=care-agent-check-$$
WORK=$(mktemp -d /var/tmp/care-agent-systemd.XXXXXX)
ROOT=$WORK/root
NSPAWN_PID= FLEET_PID= PASSWORD_SSHD_PID= BASTION_SSHD_PID= INIT= MOUNTED=no
failures=0
started=$(date +%s)

pass() { echo "check-systemd: PASS: $*"; }
fail() { echo "check-systemd: FAIL: $*"; failures=$((failures + 1)); }
# Ends the run at once: later checks depend on this one.
fatal() {
    echo "check-systemd: FAIL: $*"
    failures=$((failures + 1))
    if [ -n "${INIT:-}" ]; then
        echo "--- journal of care-agent.service:"
        inside journalctl --no-pager -u care-agent -n 40 2>/dev/null || true
    fi
    exit 1
}

stop_pid() { # PID SECONDS: TERM, wait, then KILL
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 $(($2 * 10))); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local status=$?
    [ -n "$NSPAWN_PID" ] && stop_pid "$NSPAWN_PID" 20
    [ -n "$FLEET_PID" ] && stop_pid "$FLEET_PID" 10
    [ -n "$PASSWORD_SSHD_PID" ] && stop_pid "$PASSWORD_SSHD_PID" 5
    [ -n "$BASTION_SSHD_PID" ] && stop_pid "$BASTION_SSHD_PID" 5
    rm -rf "/run/systemd/nspawn/propagate/$NAME"
    if mountpoint -q "$ROOT/proc" 2>/dev/null; then umount -l "$ROOT/proc" || true; fi
    if [ "$MOUNTED" = yes ]; then umount "$ROOT" 2>/dev/null || umount -l "$ROOT" 2>/dev/null || true; fi
    rm -rf "$WORK"
    if [ "$status" -eq 0 ] && [ "$failures" -eq 0 ]; then
        echo "check-systemd: all checks passed in $(( $(date +%s) - started )) s"
    else
        echo "check-systemd: $failures check(s) failed"
        status=1
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- The Debian 12 tree, cached ----------------------------------------------------------------
if [ "$(cat "$TREE/.care-agent-packages" 2>/dev/null)" != "$PACKAGES" ]; then
    echo "check-systemd: building the bookworm tree in $TREE (debootstrap, about a minute)"
    # A debootstrap that was interrupted may have left /proc or /sys mounted in its tree: never
    # delete through a mount.
    for dir in "$TREE" "$TREE.tmp"; do
        awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
        rm -rf --one-file-system "$dir"
    done
    mkdir -p "$CACHE"
    if ! debootstrap --variant=minbase --include="$PACKAGES" bookworm "$TREE.tmp" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
        tail -n 20 "$WORK/debootstrap.log"
        fatal "debootstrap of bookworm from $MIRROR failed"
    fi
    echo "$PACKAGES" > "$TREE.tmp/.care-agent-packages"
    mv "$TREE.tmp" "$TREE"
fi

# Each run writes into an overlay: the cached tree is never changed.
mkdir -p "$ROOT" "$WORK/upper" "$WORK/overlay-work"
if mount -t overlay overlay -o "lowerdir=$TREE,upperdir=$WORK/upper,workdir=$WORK/overlay-work" "$ROOT" 2>/dev/null; then
    MOUNTED=yes
else
    cp -a "$TREE/." "$ROOT/"
fi

# --- The binary, its libraries and the install files -------------------------------------------
SRC=$ROOT/opt/care-agent-src
mkdir -p "$SRC"
cp -r scripts systemd docs data agent.conf.example "$SRC/"
cp "$BIN" "$SRC/care-agent"
# What install.sh builds links the Swift runtime and Foundation in: the machine it is installed
# on needs Debian's libraries, not a Swift toolchain.
SWIFT_LIBS='(libswift|libFoundation|lib_FoundationICU|libdispatch|libBlocksRuntime)[^ ]*'
if ldd "$BIN" | contains -E "$SWIFT_LIBS"; then
    fail "$BIN needs Swift toolchain libraries ($(ldd "$BIN" | grep -oE "$SWIFT_LIBS" | sort -u | tr '\n' ' '| sed 's/ $//')): build it as install.sh does, swift build -c release --static-swift-stdlib"
else
    pass "the binary needs no Swift toolchain: only Debian's libraries ($(ldd "$BIN" | grep -oE 'lib(ssh2|xml2|curl|crypto|z)\.so[^ ]*' | sort -u | tr '\n' ' '| sed 's/ $//'))"
    # The release link's options that keep the running agent small (Package.swift,
    # docs/performance.md): packed relative relocations (DT_RELR) and none of our Swift symbols
    # exported. Not for a debug build given as argument (the branch above).
    EXPORTED=$(readelf --dyn-syms -W "$BIN" | awk '$8 ~ /^[$]s/' | wc -l)
    RELR=$(readelf -d "$BIN" | grep -c '(RELR)' || true)
    if [ "$RELR" -ge 1 ] && [ "$EXPORTED" -eq 0 ]; then
        pass "the binary is linked as Package.swift asks: packed relative relocations, no Swift symbols exported"
    else
        fail "the release link lost an option of Package.swift: DT_RELR entries $RELR (want 1), Swift symbols exported $EXPORTED (want 0)"
    fi
fi
# Anything else the tree lacks (the Swift runtime of a debug build given as argument) at the same
# path as on the host, which the binary's RUNPATH or the loader's default directories name.
for lib in $(ldd "$BIN" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do
    [ -e "$ROOT$lib" ] || cp -L --parents "$lib" "$ROOT"
done
# The loader cache inside, for libraries copied to directories of /etc/ld.so.conf.
chroot "$ROOT" ldconfig
# It prints its version here and inside the tree (with /proc, as on any booted system); a failure
# says how it ended and what the tree's loader makes of the binary's libraries.
ended() { if [ "$1" -gt 128 ]; then echo "killed by SIG$(kill -l $(($1 - 128)))"; else echo "exit status $1"; fi; }
status=0
VERSION=$("$BIN" --version 2>"$WORK/version.err") || status=$?
[ "$status" -eq 0 ] && [ -n "$VERSION" ] || { cat "$WORK/version.err"; fatal "$BIN --version fails on this machine ($(ended "$status"))"; }
mkdir -p "$ROOT/proc"
mount -t proc proc "$ROOT/proc"
status=0
TREE_VERSION=$(chroot "$ROOT" /opt/care-agent-src/care-agent --version 2>"$WORK/version.err") || status=$?
umount "$ROOT/proc"
if [ "$status" -ne 0 ] || [ "$TREE_VERSION" != "$VERSION" ]; then
    cat "$WORK/version.err"
    chroot "$ROOT" ldd /opt/care-agent-src/care-agent 2>&1 | grep -v '=> /' || true
    fatal "the binary does not run inside the tree ($(ended "$status"), printed \"$(echo "$TREE_VERSION" | head -n 1)\", expected \"$VERSION\")"
fi
pass "the binary runs inside the tree: care-agent $TREE_VERSION"

# --- A simulated fleet on the host's loopback ---------------------------------------------------
FLEET=$WORK/fleet
"$BIN" simulate fleet --devices 4 --profiles "$REPO/profiles" --state "$FLEET" --seed 14 >"$WORK/fleet.log" 2>&1 &
FLEET_PID=$!
for _ in $(seq 1 300); do
    [ -e "$FLEET/ready" ] && break
    kill -0 "$FLEET_PID" 2>/dev/null || { cat "$WORK/fleet.log"; fatal "the simulated fleet did not start"; }
    sleep 0.1
done
[ -e "$FLEET/ready" ] || { cat "$WORK/fleet.log"; fatal "the simulated fleet was not ready within 30 s"; }

# The agent logs in with a passphrase-protected copy of the fleet's client key; the passphrase
# comes only through systemd's credential store.
PASSPHRASE="sd-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
cp "$FLEET/client_ed25519" "$WORK/device_key"
ssh-keygen -q -p -N "$PASSPHRASE" -f "$WORK/device_key" >/dev/null
# The first three devices at start; the fourth is added by a reload.
tail -n +2 "$FLEET/inventory.csv" | head -n 3 | awk -F, 'BEGIN { print "name,host,port" } { print $1 "," $2 "," $3 }' > "$WORK/inventory.csv"
EXTRA=$(tail -n +2 "$FLEET/inventory.csv" | sed -n 4p)
EXTRA_NAME=${EXTRA%%,*}
EXTRA_HOST=$(echo "$EXTRA" | cut -d, -f2)
EXTRA_PORT=$(echo "$EXTRA" | cut -d, -f3)
# known_hosts holds the first three devices' keys; those of the devices added later are recorded
# by `care-agent hosts scan` inside.
tail -n +2 "$WORK/inventory.csv" | while IFS=, read -r _ host port; do grep -F "[$host]:$port " "$FLEET/known_hosts"; done > "$WORK/known_hosts"

# A device that takes a password only: its own sshd serving one profile, for the account the
# Swift sshd tests use (care-test, created as they create it, with their known password).
PASSWORD_USER=care-test PASSWORD='Care-Test-Pa55word'
getent passwd "$PASSWORD_USER" >/dev/null || useradd -m -s /bin/sh "$PASSWORD_USER"
echo "$PASSWORD_USER:$PASSWORD" | chpasswd
PW=$WORK/password-sshd
mkdir -p "$PW" /run/sshd
chmod 755 "$WORK" "$PW"
ssh-keygen -q -t ed25519 -N "" -f "$PW/ssh_host_ed25519_key"
PASSWORD_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SUBSYSTEM="$BIN simulate netconf --profile $REPO/profiles/mx480"
cat > "$PW/sshd_config" <<EOF
ListenAddress 127.0.0.1:$PASSWORD_PORT
HostKey $PW/ssh_host_ed25519_key
PidFile $PW/sshd.pid
UsePAM no
PubkeyAuthentication no
PasswordAuthentication yes
KbdInteractiveAuthentication no
AuthenticationMethods password
PermitRootLogin no
AllowUsers $PASSWORD_USER
Subsystem netconf $SUBSYSTEM
ForceCommand $SUBSYSTEM
DisableForwarding yes
PermitTTY no
EOF
/usr/sbin/sshd -D -e -f "$PW/sshd_config" 2>"$PW/sshd.log" &
PASSWORD_SSHD_PID=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PASSWORD_PORT") 2>/dev/null && break; sleep 0.1; done

# A jump host: key login with the fleet's client key, TCP forwarding allowed, nothing else.
BASTION=$WORK/bastion-sshd
mkdir -p "$BASTION"
ssh-keygen -q -t ed25519 -N "" -f "$BASTION/ssh_host_ed25519_key"
ssh-keygen -y -f "$FLEET/client_ed25519" > "$BASTION/authorized_keys"
BASTION_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$BASTION/sshd_config" <<EOF
ListenAddress 127.0.0.1:$BASTION_PORT
HostKey $BASTION/ssh_host_ed25519_key
PidFile $BASTION/sshd.pid
AuthorizedKeysFile $BASTION/authorized_keys
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthenticationMethods publickey
PermitRootLogin prohibit-password
AllowTcpForwarding yes
PermitTTY no
ForceCommand /bin/false
LogLevel VERBOSE
EOF
/usr/sbin/sshd -D -e -f "$BASTION/sshd_config" 2>"$BASTION/sshd.log" &
BASTION_SSHD_PID=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$BASTION_PORT") 2>/dev/null && break; sleep 0.1; done
echo "[127.0.0.1]:$BASTION_PORT $(cut -d' ' -f1,2 "$BASTION/ssh_host_ed25519_key.pub")" >> "$WORK/known_hosts"
# A fleet device collected again through the bastion.
BEHIND_HOST=$(sed -n 2p "$WORK/inventory.csv" | cut -d, -f2)
BEHIND_PORT=$(sed -n 2p "$WORK/inventory.csv" | cut -d, -f3)

# --- Boot -----------------------------------------------------------------------------------------
# No system bus on the host: --register=no --keep-unit. The host's cgroup v1 controllers need
# the unified hierarchy for systemd 252 inside.
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -D "$ROOT" --machine="$NAME" --boot --register=no --keep-unit \
    --capability=CAP_NET_ADMIN --system-call-filter=bpf --console=pipe >"$WORK/console.log" 2>&1 </dev/null &
NSPAWN_PID=$!
booting=$(date +%s)
INIT=
for _ in $(seq 1 200); do
    # The container's init is nspawn's child (seen from inside, its root is just "/").
    for pid in $(pgrep -P "$NSPAWN_PID" 2>/dev/null); do
        if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd ]; then INIT=$pid; break 2; fi
    done
    kill -0 "$NSPAWN_PID" 2>/dev/null || { cat "$WORK/console.log"; fatal "systemd-nspawn exited"; }
    sleep 0.1
done
[ -n "$INIT" ] || { tail -n 20 "$WORK/console.log"; fatal "no systemd inside the container after 20 s"; }
inside() { nsenter -t "$INIT" -a "$@"; }
# Right after exec, systemd's private socket may not exist yet: ask again until it answers.
# ("offline" too: /run/systemd/system is made a moment after exec.)
state=
until [ $(( $(date +%s) - booting )) -ge 90 ]; do
    state=$(timeout 60 nsenter -t "$INIT" -a systemctl is-system-running --wait 2>/dev/null || true)
    case "$state" in running|degraded|maintenance) break ;; esac
    sleep 0.2
done
case "$state" in
    running|degraded) pass "container booted with systemd as PID 1 ($state) in $(( $(date +%s) - booting )) s" ;;
    *) tail -n 20 "$WORK/console.log"; fatal "the container's systemd is '$state'" ;;
esac

# --- Install ----------------------------------------------------------------------------------
inside /opt/care-agent-src/scripts/install.sh --no-start --binary=/opt/care-agent-src/care-agent >"$WORK/install.log" 2>&1 \
    || { cat "$WORK/install.log"; fatal "install.sh failed inside the container"; }
grep -q 'set system login user care-agent class read-only authentication ssh-ed25519 "ssh-ed25519 ' "$WORK/install.log" \
    && grep -q 'set system services netconf ssh' "$WORK/install.log" \
    && [ "$(inside stat -c %a:%U:%G /etc/care-agent/id_ed25519)" = "640:root:care-agent" ] \
    && [ "$(inside stat -c %a:%U /etc/credstore)" = "700:root" ] \
    && pass "install.sh generated the agent's SSH key (0640 root:care-agent), /etc/credstore (0700) and printed the Junos lines" \
    || { cat "$WORK/install.log"; ls -l "$ROOT/etc/care-agent"; fail "install.sh: SSH key or Junos lines missing"; }
install -m 0640 -o root -g "$(stat -c %g "$ROOT/etc/care-agent")" "$WORK/device_key" "$ROOT/etc/care-agent/device_key"
install -m 0640 -o root -g "$(stat -c %g "$ROOT/etc/care-agent")" "$WORK/known_hosts" "$ROOT/etc/care-agent/known_hosts"
install -m 0640 -o root -g "$(stat -c %g "$ROOT/etc/care-agent")" "$WORK/inventory.csv" "$ROOT/etc/care-agent/inventory.csv"
umask 077
printf '%s\n' "$PASSPHRASE" > "$ROOT/etc/credstore/netconf-passphrase"
printf '%s\n' "$PASSWORD" > "$ROOT/etc/credstore/netconf-password"
umask 022
write_conf() { # extra lines appended to [defaults]... then the device sections
    cat > "$ROOT/etc/care-agent/agent.conf" <<EOF
[agent]
inventory = inventory.csv

[defaults]
user = $(id -un)
key-file = /etc/care-agent/device_key
passphrase-credential = netconf-passphrase
known-hosts = /etc/care-agent/known_hosts
host-key-policy = strict
schedule = every 1h
jitter = 0
$1
EOF
}
write_conf ""
# The shipped unit, with the watchdog's interval lowered so that a missed ping would show here.
mkdir -p "$ROOT/etc/systemd/system/care-agent.service.d"
printf '[Service]\nWatchdogSec=6s\n' > "$ROOT/etc/systemd/system/care-agent.service.d/check-watchdog.conf"
inside systemctl daemon-reload

# --- Start: READY, credentials, the scheduled run ---------------------------------------------
t0=$(date +%s)
if inside timeout 70 systemctl start care-agent; then
    [ "$(inside systemctl is-active care-agent)" = active ] \
        && pass "systemctl start returned after READY=1 in $(( $(date +%s) - t0 )) s; active: $(inside systemctl show -p StatusText --value care-agent)" \
        || fail "care-agent not active after start"
else
    fatal "systemctl start care-agent failed: $(inside systemctl show -p Result --value care-agent)"
fi
[ "$(inside systemctl show -p Type --value care-agent)" = notify ] || fail "the unit is not Type=notify"

outbox=$ROOT/var/lib/care-agent/outbox
count_bundles() { find "$outbox" -maxdepth 1 -name '*.tar.gz' 2>/dev/null | wc -l; }
for _ in $(seq 1 600); do [ "$(count_bundles)" -ge 3 ] && break; sleep 0.1; done
if [ "$(count_bundles)" -ge 3 ]; then
    pass "the scheduled first run collected 3 devices into $(count_bundles) bundles, logging in with the key's passphrase from /etc/credstore (LoadCredential=)"
else
    inside care-agent status || true
    fail "the scheduled run wrote $(count_bundles) bundles, not 3"
fi
inside test -e /run/credentials/care-agent.service/netconf-passphrase \
    && inside test -e /run/credentials/care-agent.service/netconf-password \
    && ! inside test -e /run/credentials/care-agent.service/upload-token \
    && pass "credentials: netconf-passphrase and netconf-password loaded from /etc/credstore, the absent upload-token skipped" \
    || fail "credentials directory /run/credentials/care-agent.service is not as expected"

# --- Watchdog ---------------------------------------------------------------------------------
w1=$(inside systemctl show -p WatchdogTimestampMonotonic --value care-agent)
sleep 8
w2=$(inside systemctl show -p WatchdogTimestampMonotonic --value care-agent)
if [ -n "$w1" ] && [ "$w1" != 0 ] && [ "$w2" -gt "$w1" ] && [ "$(inside systemctl show -p NRestarts --value care-agent)" = 0 ] \
    && ! inside journalctl --no-pager -u care-agent | contains -i 'watchdog timeout'; then
    pass "watchdog fed (WatchdogSec=6s: last ping moved from $w1 to $w2 µs, no timeout, no restart)"
else
    fail "watchdog: timestamps '$w1' '$w2', restarts $(inside systemctl show -p NRestarts --value care-agent)"
fi

# --- Reload: a broken file is refused at priority err; a good one applies -----------------------
cp "$ROOT/etc/care-agent/agent.conf" "$WORK/agent.conf.good"
printf 'frobnicate = yes\n' >> "$ROOT/etc/care-agent/agent.conf"
inside systemctl reload care-agent || fail "systemctl reload (broken file) failed"
# status exits 1 then (the agent needs an operator): the text is what is checked here.
for _ in $(seq 1 50); do { inside care-agent status 2>/dev/null || true; } | contains "LAST RELOAD FAILED" && break; sleep 0.1; done
reload_status=0; inside care-agent status >/dev/null 2>&1 || reload_status=$?
{ inside care-agent status 2>/dev/null || true; } | contains "LAST RELOAD FAILED" && [ "$reload_status" = 1 ] && [ "$(inside systemctl is-active care-agent)" = active ] \
    && pass "a broken agent.conf is refused on reload; the service keeps running, status says so and exits 1" \
    || fail "a broken agent.conf on reload: status does not say LAST RELOAD FAILED"
if inside journalctl --no-pager -u care-agent -p err -o cat | contains "configuration not reloaded"; then
    pass "journalctl -p err -u care-agent finds the error line (PRIORITY=3)"
else
    fail "journalctl -p err finds no 'configuration not reloaded' line"
fi
if inside journalctl --no-pager -u care-agent -o cat | grep -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' >/dev/null; then
    fail "journal lines carry their own timestamp"
else
    pass "journal lines carry no timestamp of their own"
fi

write_conf "
[group password]
user = $PASSWORD_USER
password-credential = netconf-password

[device $EXTRA_NAME]
host = $EXTRA_HOST
port = $EXTRA_PORT

[device by-password]
host = 127.0.0.1
port = $PASSWORD_PORT
group = password

[device via-bastion]
host = $BEHIND_HOST
port = $BEHIND_PORT
proxy-jump = $(id -un)@127.0.0.1:$BASTION_PORT"
inside systemctl reload care-agent || fail "systemctl reload failed"
for _ in $(seq 1 50); do inside care-agent status --json 2>/dev/null | contains '"devices" *: *6' && break; sleep 0.1; done
if inside care-agent status --json 2>/dev/null | contains '"devices" *: *6' && ! inside care-agent status | contains "LAST RELOAD FAILED"; then
    pass "systemctl reload applied the changed agent.conf (6 devices)"
else
    inside care-agent status || true
    fail "systemctl reload did not apply the changed agent.conf"
fi

# --- Host keys of the added devices, recorded by the agent's own scan ----------------------------
if inside care-agent hosts scan --config /etc/care-agent/agent.conf --device "$EXTRA_NAME" --device by-password --yes >"$WORK/scan.out" 2>&1 \
    && grep -q "recorded 2 host keys in /etc/care-agent/known_hosts" "$WORK/scan.out" \
    && [ "$(inside stat -c %a:%U:%G /etc/care-agent/known_hosts)" = "640:root:care-agent" ]; then
    pass "care-agent hosts scan --yes recorded the added devices' host keys (known_hosts still 0640 root:care-agent)"
else
    cat "$WORK/scan.out"
    fail "care-agent hosts scan did not record the added devices' host keys"
fi

# --- On demand through the control socket ------------------------------------------------------
before=$(count_bundles)
if inside care-agent collect now --device "$EXTRA_NAME" >"$WORK/collect.out" 2>&1 && [ "$(count_bundles)" -eq $((before + 1)) ] \
    && grep -q "^\[1/1\] ok $EXTRA_NAME: " "$WORK/collect.out"; then
    pass "care-agent collect now --device $EXTRA_NAME through the service streamed its progress line and wrote its bundle"
else
    cat "$WORK/collect.out"
    fail "collect now through the service: $(count_bundles) bundles, expected $((before + 1))"
fi
# Native journal entries: the metadata as fields of their own.
if inside journalctl --no-pager -u care-agent "DEVICE=$EXTRA_NAME" RPC=get-software-information -o cat | contains "rpc ok"; then
    pass "journalctl -u care-agent DEVICE=$EXTRA_NAME RPC=get-software-information finds the device's RPC (structured fields)"
else
    fail "no journal entry with the fields DEVICE=$EXTRA_NAME RPC=get-software-information"
fi
inside care-agent status | contains "ok *$EXTRA_NAME at" || fail "status does not show $EXTRA_NAME ok after the on-demand run"
inside care-agent status | contains "last collect now 20" || fail "status does not show the group's last collect now"
before=$(count_bundles)
if inside care-agent collect now --group password >"$WORK/collect-password.out" 2>&1 && [ "$(count_bundles)" -eq $((before + 1)) ] \
    && grep -q "Accepted password for $PASSWORD_USER" "$PW/sshd.log"; then
    pass "password-credential = netconf-password: the device that takes passwords only was collected (sshd: Accepted password)"
else
    cat "$WORK/collect-password.out"; tail -n 5 "$PW/sshd.log"
    fail "collect with the password credential failed"
fi

before=$(count_bundles)
if inside care-agent collect now --device via-bastion >"$WORK/collect-bastion.out" 2>&1 && [ "$(count_bundles)" -eq $((before + 1)) ] \
    && [ "$(grep -c "Accepted publickey for $(id -un)" "$BASTION/sshd.log")" = 1 ]; then
    pass "proxy-jump: a device collected through a jump host (direct-tcpip tunnel) under the hardened unit"
else
    cat "$WORK/collect-bastion.out"; tail -n 5 "$BASTION/sshd.log"
    fail "collect through the jump host failed"
fi

# --- Exposure ------------------------------------------------------------------------------------
exposure=$(inside systemd-analyze security care-agent 2>/dev/null | sed -n 's/.*Overall exposure level for care-agent.service: \([0-9.]*\).*/\1/p')
if [ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
    pass "systemd-analyze security care-agent: exposure $exposure (at most 2.0)"
else
    fail "systemd-analyze security care-agent: exposure '${exposure:-?}', above 2.0"
fi

# --- Syslog on port 514 through socket activation ----------------------------------------------
inside systemctl is-enabled care-agent-syslog.socket >/dev/null 2>&1 \
    && fail "install.sh enabled care-agent-syslog.socket (it should only install it)"
SYSLOG_DEVICE=$(tail -n +2 "$WORK/inventory.csv" | head -n 1 | cut -d, -f1)
# logger inside sends from 127.0.0.1 (the host's network); the fleet device is on another
# loopback address, so the sender is mapped to it by name.
printf '[syslog]\nlisten = systemd\nsource = 127.0.0.1 %s\n' "$SYSLOG_DEVICE" >> "$ROOT/etc/care-agent/agent.conf"
count_events() { inside care-agent events --state /var/lib/care-agent --device "$SYSLOG_DEVICE" 2>/dev/null | grep -c "fru-offline (syslog).*bundle" || true; }
if inside systemctl enable care-agent-syslog.socket >"$WORK/socket.log" 2>&1 && inside timeout 70 systemctl restart care-agent; then
    for _ in $(seq 1 100); do inside journalctl --no-pager -u care-agent -o cat | contains "syslog receiver listening" && break; sleep 0.1; done
    inside logger --server 127.0.0.1 --port 514 --udp --rfc3164 -t chassisd "CHASSISD_FRU_OFFLINE_NOTICE: Taking FPC 2 offline: Error"
    for _ in $(seq 1 600); do [ "$(count_events)" -ge 1 ] && break; sleep 0.1; done
    inside logger --server 127.0.0.1 --port 514 --tcp --rfc5424 --msgid CHASSISD_FRU_OFFLINE_NOTICE -t chassisd "Taking FPC 2 offline: Error"
    for _ in $(seq 1 100); do inside journalctl --no-pager -u care-agent -o cat | contains "event within its rate-limit window" && break; sleep 0.1; done
    if [ "$(count_events)" = 1 ] && inside journalctl --no-pager -u care-agent -o cat | contains "syslog receiver listening.*(systemd syslog)" \
        && inside journalctl --no-pager -u care-agent -o cat | contains "event within its rate-limit window" \
        && [ "$(inside systemctl show -p User --value care-agent)" = care-agent ]; then
        pass "care-agent-syslog.socket: the unprivileged agent took UDP and TCP 514 from systemd; a FRU-offline by syslog collected one event bundle for $SYSLOG_DEVICE, the repeat over TCP was rate-limited"
    else
        inside care-agent events --state /var/lib/care-agent || true
        inside journalctl --no-pager -u care-agent -n 30 -o cat || true
        fail "syslog through care-agent-syslog.socket: $(count_events) event bundles for $SYSLOG_DEVICE, expected 1"
    fi
    inside systemctl stop care-agent
    if [ "$(inside systemctl is-active care-agent-syslog.socket)" != active ] && inside timeout 70 systemctl start care-agent \
        && [ "$(inside systemctl is-active care-agent-syslog.socket)" = active ] && [ "$(inside systemctl is-active care-agent)" = active ]; then
        pass "stopping care-agent stops the syslog socket (no activation by the next datagram); starting it starts the socket again"
    else
        fail "care-agent-syslog.socket with stop/start of care-agent: socket $(inside systemctl is-active care-agent-syslog.socket), agent $(inside systemctl is-active care-agent)"
    fi
else
    cat "$WORK/socket.log"
    inside journalctl --no-pager -u care-agent-syslog.socket -n 20 || true
    fail "enabling care-agent-syslog.socket or restarting care-agent with listen = systemd failed: $(inside systemctl show -p Result --value care-agent)"
fi

# --- Stop ---------------------------------------------------------------------------------------
timeout_stop=$(inside systemctl show -p TimeoutStopUSec --value care-agent)
t0=$(date +%s)
inside systemctl stop care-agent || fail "systemctl stop failed"
took=$(( $(date +%s) - t0 ))
result=$(inside systemctl show -p Result --value care-agent)
code=$(inside systemctl show -p ExecMainStatus --value care-agent)
if [ "$result" = success ] && [ "$code" = 0 ] && [ "$took" -lt 45 ] \
    && ! inside journalctl --no-pager -u care-agent | contains "State 'stop-sigterm' timed out"; then
    pass "systemctl stop: clean exit (status 0) in $took s (TimeoutStopSec $timeout_stop)"
else
    fail "systemctl stop: result $result, exit status $code, $took s (TimeoutStopSec $timeout_stop)"
fi
# --- A broken agent.conf at start: the unit fails, and the journal says where at priority err --
printf 'frobnicate = yes\n' >> "$ROOT/etc/care-agent/agent.conf"
if inside timeout 30 systemctl start care-agent 2>/dev/null; then
    fail "care-agent started with a broken agent.conf"
elif inside journalctl --no-pager -u care-agent -p err -o cat | contains 'agent.conf:[0-9]*:1: unknown key "frobnicate"'; then
    pass "a broken agent.conf stops the start; journalctl -p err -u care-agent names the file, line and key"
else
    fail "a broken agent.conf at start: no err-priority journal line naming it"
fi
inside systemctl stop care-agent 2>/dev/null || true

[ "$failures" -eq 0 ] || { echo "--- journal of care-agent.service:"; inside journalctl --no-pager -u care-agent -n 60 || true; }
