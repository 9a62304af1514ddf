#!/usr/bin/env bash
# care-agent in one command: build, start a simulated fleet of Junos devices (real OpenSSH sshd,
# NETCONF replies from real captures, a few faulty devices), collect from every device, clean up.
#
#   scripts/demo.sh            # from a fresh Debian/Ubuntu machine (as root, or with sudo)
#
# Environment:
#   SWIFT=swift                the swift driver to build with
#   CONFIGURATION=debug        or release (slower to build, faster to run)
#   DEVICES=24                 fleet size
#   FAULTS=...                 fault mix for `care-agent simulate fleet --faults`
#   SETUP_DELAY_MS=1000        NETCONF session set-up time per device (Junos takes 1-4 s)
#   LATENCY_MS=50              delay before every reply
#   RPC_TIMEOUT=10             seconds per RPC (the hung device fails after this)
#   COLLECTOR=auto             or rpc: one `care-agent rpc` per device instead of `collect now`
#   KEEP_STATE=1               keep the fleet's state directory (keys, inventory, logs) afterwards
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SWIFT=${SWIFT:-swift}
CONFIGURATION=${CONFIGURATION:-debug}
DEVICES=${DEVICES:-24}
FAULTS=${FAULTS:-hang:1,rpc-error:1,truncate:1,auth-fail:1,slow:1}
SETUP_DELAY_MS=${SETUP_DELAY_MS:-1000}
LATENCY_MS=${LATENCY_MS:-50}
RPC_TIMEOUT=${RPC_TIMEOUT:-10}
COLLECTOR=${COLLECTOR:-auto}

say() { printf '\n== %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# --- 1. System packages -------------------------------------------------------------------------
install_packages() {
    local wanted=(libssh2-1-dev libxml2-dev libcurl4-openssl-dev openssh-server pkg-config zlib1g-dev libsqlite3-dev openssl python3) missing=() p
    command -v dpkg-query >/dev/null || { echo "not a Debian-family system: install ${wanted[*]} (or equivalents) yourself"; return; }
    for p in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && { echo "system packages present"; return; }
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "missing packages ${missing[*]}: run as root or install them with apt-get"
        sudo=(sudo)
    fi
    echo "installing ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

say "1/5 system packages"
install_packages
[ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd is missing (package openssh-server)"
command -v "$SWIFT" >/dev/null 2>&1 || die "no Swift toolchain ($SWIFT): install Swift 6 from https://www.swift.org/install/linux/ (swiftly), then rerun"

# --- 2. Build ------------------------------------------------------------------------------------
say "2/5 building care-agent ($CONFIGURATION)"
echo "(the first build fetches dependencies and takes a few minutes)"
BUILD_LOG=$(mktemp "${TMPDIR:-/tmp}/care-demo-build.XXXXXX")
if ! (cd "$REPO" && "$SWIFT" build -c "$CONFIGURATION" --product care-agent >"$BUILD_LOG" 2>&1 \
        && "$SWIFT" build -c "$CONFIGURATION" --product care-support >>"$BUILD_LOG" 2>&1); then
    tail -n 40 "$BUILD_LOG" >&2
    die "the build failed (whole log: $BUILD_LOG)"
fi
tail -n 1 "$BUILD_LOG"
rm -f "$BUILD_LOG"
CARE=$(cd "$REPO" && "$SWIFT" build -c "$CONFIGURATION" --show-bin-path)/care-agent
SUPPORT=$(dirname "$CARE")/care-support
[ -x "$CARE" ] || die "build produced no $CARE"

# --- 3. Simulated fleet --------------------------------------------------------------------------
STATE=$(mktemp -d "${TMPDIR:-/tmp}/care-demo.XXXXXX")
chmod 755 "$STATE"
FLEET_PID=
SUPPORT_PID= AGENT_PID=
cleanup() {
    local status=$?
    for pid in "$AGENT_PID" "$SUPPORT_PID"; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    done
    if [ -n "$FLEET_PID" ] && kill -0 "$FLEET_PID" 2>/dev/null; then
        kill -TERM "$FLEET_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$FLEET_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$FLEET_PID" 2>/dev/null || true
    fi
    if [ "${KEEP_STATE:-0}" = 1 ]; then echo "state kept in $STATE"; else rm -rf "$STATE"; fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "3/5 starting $DEVICES simulated devices (faults: $FAULTS)"
STARTED=$(date +%s)
"$CARE" simulate fleet --devices "$DEVICES" --profiles "$REPO/profiles" --state "$STATE/fleet" \
    --faults "$FAULTS" --seed 2024 --setup-delay-ms "$SETUP_DELAY_MS" --latency-ms "$LATENCY_MS" \
    >"$STATE/fleet.log" 2>&1 &
FLEET_PID=$!
for _ in $(seq 1 300); do
    [ -e "$STATE/fleet/ready" ] && grep -q "Stop with Ctrl-C" "$STATE/fleet.log" && break
    kill -0 "$FLEET_PID" 2>/dev/null || { cat "$STATE/fleet.log" >&2; die "the simulated fleet did not start"; }
    sleep 0.1
done
[ -e "$STATE/fleet/ready" ] || { cat "$STATE/fleet.log" >&2; die "the simulated fleet was not ready within 30 s"; }
cat "$STATE/fleet.log"

INVENTORY=$STATE/fleet/inventory.csv
KEY=$STATE/fleet/client_ed25519
KNOWN_HOSTS=$STATE/fleet/known_hosts
USER_NAME=$(id -un)

# --- 4. Collection -------------------------------------------------------------------------------
# With the agent's one-shot collection available, use it; otherwise one `care-agent rpc` per device.
collect_with_agent() {
    local status=0
    "$CARE" collect now --standalone --inventory "$INVENTORY" --user "$USER_NAME" --key "$KEY" \
        --known-hosts "$KNOWN_HOSTS" --out "$STATE/bundles" --state "$STATE/agent" --timeout "$RPC_TIMEOUT" \
        2>"$STATE/collect.log" || status=$?
    local bundles=("$STATE"/bundles/*.tar.gz)
    [ -e "${bundles[0]}" ] || { tail -n 20 "$STATE/collect.log" >&2; die "collect wrote no bundles (status $status)"; }
    printf '\n  %d signed bundles in %s; the first one:\n\n' "${#bundles[@]}" "$STATE/bundles"
    # Through a file: `head` closing the pipe early would kill the writer with SIGPIPE.
    "$CARE" bundle inspect "${bundles[0]}" >"$STATE/inspect.txt"
    head -n 24 "$STATE/inspect.txt" | sed 's/^/    /'
    printf '\n  faulty on purpose: %s\n' "$(faulty_devices)"
}

# The devices the fleet made faulty, from the inventory's fault column.
faulty_devices() {
    tail -n +2 "$INVENTORY" | awk -F, '$6 != "" { printf "%s%s %s", sep, $1, $6; sep = ", " }'
}

# The text of the first <element> of a reply file.
first_value() { { grep -o "<$1>[^<]*" "$2" || true; } | head -n 1 | sed "s/<$1>//"; }

# Prints one line per device: ok (host name, model, version) or the reason it failed.
collect_with_rpc() {
    local dir=$STATE/rpc name host port rest pids=()
    mkdir -p "$dir"
    while IFS=, read -r name host port rest; do
        "$CARE" rpc --host "$host" --port "$port" --user "$USER_NAME" --key "$KEY" --known-hosts "$KNOWN_HOSTS" \
            --timeout "$RPC_TIMEOUT" --connect-timeout 10 get-software-information \
            >"$dir/$name.xml" 2>"$dir/$name.err" &
        pids+=($!)
    done < <(tail -n +2 "$INVENTORY")
    wait "${pids[@]}" 2>/dev/null || true
    local ok=0 failed=0 group profile fault model version hostname
    while IFS=, read -r name host port group profile fault; do
        if [ -s "$dir/$name.err" ] || [ ! -s "$dir/$name.xml" ]; then
            failed=$((failed + 1))
            printf '  %-16s %-11s FAILED  %s\n' "$name" "$host" "$(head -n 1 "$dir/$name.err" | sed 's/^care-agent: //')"
        else
            ok=$((ok + 1))
            hostname=$(first_value host-name "$dir/$name.xml")
            model=$(first_value product-model "$dir/$name.xml")
            version=$(first_value junos-version "$dir/$name.xml")
            # Before 13.x the version is only in the package comments ("JUNOS Software Release [12.3X48-D40.5]").
            [ -n "$version" ] || version=$({ grep -o '\[[0-9][^]]*\]' "$dir/$name.xml" || true; } | head -n 1 | tr -d '[]')
            printf '  %-16s %-11s ok      host-name %s, %s, Junos %s\n' "$name" "$host" "$hostname" "$model" "$version"
        fi
    done < <(tail -n +2 "$INVENTORY")
    printf '\n  %d devices answered, %d failed; faulty on purpose: %s\n' "$ok" "$failed" "$(faulty_devices)"
}

# (`care-agent collect --help` alone is no test: an unknown subcommand with --help prints the
# top-level help and exits 0.)
if [ "$COLLECTOR" != rpc ] && "$CARE" collect now --help 2>/dev/null | grep -q -- "--standalone"; then
    say "4/5 collecting with care-agent collect now --standalone"
    collect_with_agent
else
    say "4/5 collecting get-software-information from every device with care-agent rpc"
    collect_with_rpc
fi
# The support side: care-support receives the bundles from the agent's service (care-agent run,
# its uploader over HTTPS with a token), verifies and stores them (SQLite), and reports.
support_side() {
    local dir=$STATE/support port pubkey token
    mkdir -p "$dir/store"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    openssl req -x509 -newkey ed25519 -nodes -days 2 -subj "/CN=care-demo CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey ed25519 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >"$dir/san.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
        -extfile "$dir/san.ext" -out "$dir/server.crt" 2>/dev/null
    chmod 600 "$dir/server.key"
    printf '[server]\nlisten = 127.0.0.1:%s\ntls-certificate = %s\ntls-key = %s\n[store]\ndirectory = %s\n' \
        "$port" "$dir/server.crt" "$dir/server.key" "$dir/store" >"$dir/support.conf"
    "$SUPPORT" customer add DEMO --config "$dir/support.conf" >/dev/null
    token=$("$SUPPORT" token create DEMO --config "$dir/support.conf" | tail -n 1)
    (umask 077; printf '%s\n' "$token" >"$dir/upload.token")
    pubkey=$("$CARE" key show --state-dir "$STATE/agent" | sed -n 's/^public key: *//p')
    "$SUPPORT" agent trust DEMO --key "$pubkey" --config "$dir/support.conf" >/dev/null
    "$SUPPORT" serve --config "$dir/support.conf" >"$dir/serve.log" 2>&1 &
    SUPPORT_PID=$!
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    # The agent as a service, with no devices of its own here: it uploads its outbox (the
    # bundles just collected) to the intake and removes each once the intake confirmed it.
    printf '[agent]\noutbox = %s\nstate-directory = %s\nruntime-directory = %s\n[upload]\nurl = https://127.0.0.1:%s/bundles/\nca-file = %s\ntoken-file = %s\ninterval = 1s\n[defaults]\nschedule = manual\n' \
        "$STATE/bundles" "$STATE/agent" "$STATE/run" "$port" "$dir/ca.pem" "$dir/upload.token" >"$dir/agent.conf"
    mkdir -p "$STATE/run"
    "$CARE" run --config "$dir/agent.conf" >"$dir/agent.log" 2>&1 &
    AGENT_PID=$!
    local queued
    for _ in $(seq 1 300); do
        queued=$(find "$STATE/bundles" -maxdepth 1 -name "*.tar.gz" | wc -l)
        [ "$queued" -eq 0 ] && break
        sleep 0.2
    done
    kill -TERM "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=
    [ "${queued:-1}" -eq 0 ] || { tail -n 20 "$dir/agent.log" "$dir/serve.log" >&2; die "the agent did not upload its bundles to care-support"; }
    printf '\n  care-support devices --customer DEMO (received over HTTPS, verified, stored in SQLite):\n\n'
    "$SUPPORT" devices --customer DEMO --config "$dir/support.conf" | sed 's/^/    /'
    REPORTS=${REPORTS_DIR:-$REPO/.build/demo-reports}
    mkdir -p "$REPORTS"
    for kind in bugs eol health; do
        "$SUPPORT" report "$kind" --customer DEMO --format html --data "$REPO/data" --out "$REPORTS/$kind.html" \
            --config "$dir/support.conf" 2>"$dir/report-$kind.log" \
            || { tail -n 5 "$dir/report-$kind.log" >&2; die "care-support report $kind failed"; }
    done
    "$SUPPORT" report bugs --customer DEMO --format text --data "$REPO/data" --config "$dir/support.conf" \
        >"$dir/bugs.txt" 2>/dev/null || true
    printf '\n'
    head -n 10 "$dir/bugs.txt" | sed 's/^/    /'
    # The customer's first notification: everything is new, and recorded so the next run tells only changes.
    "$SUPPORT" notify --customer DEMO --format html --data "$REPO/data" --out "$REPORTS/notification.html" \
        --config "$dir/support.conf" 2>"$dir/notify.log" \
        || { tail -n 5 "$dir/notify.log" >&2; die "care-support notify failed"; }
    "$SUPPORT" notify --customer DEMO --dry-run --data "$REPO/data" --config "$dir/support.conf" >"$dir/notify-again.txt" 2>/dev/null || true
    printf '\n  care-support notify --customer DEMO: recorded; a second run: %s\n' "$(sed -n 2p "$dir/notify-again.txt")"
    printf '\n  the reports of the support side, in a browser:\n    %s\n    %s\n    %s\n    %s\n' \
        "$REPORTS/bugs.html" "$REPORTS/eol.html" "$REPORTS/health.html" "$REPORTS/notification.html"
}

if ls "$STATE"/bundles/*.tar.gz >/dev/null 2>&1 && [ -x "$SUPPORT" ] && command -v openssl >/dev/null; then
    say "5/5 the support side: care-agent run uploads to care-support serve, which stores and reports"
    support_side
elif ls "$STATE"/bundles/*.tar.gz >/dev/null 2>&1; then
    say "5/5 reports: known bugs, end of life, health (care-agent report)"
    REPORTS=${REPORTS_DIR:-$REPO/.build/demo-reports}
    mkdir -p "$REPORTS"
    PUBKEY=$("$CARE" key show --state-dir "$STATE/agent" | sed -n 's/^public key: *//p')
    for kind in bugs eol health; do
        "$CARE" report "$kind" --format html --data "$REPO/data" --pubkey "$PUBKEY" --out "$REPORTS/$kind.html" \
            "$STATE"/bundles/*.tar.gz 2>"$STATE/report-$kind.log" >/dev/null \
            || { tail -n 5 "$STATE/report-$kind.log" >&2; die "report $kind failed"; }
    done
    # Through a file: `head` closing the pipe early would kill the writer with SIGPIPE.
    "$CARE" report bugs --format text --data "$REPO/data" --pubkey "$PUBKEY" "$STATE"/bundles/*.tar.gz \
        >"$STATE/bugs.txt" 2>/dev/null || true
    head -n 12 "$STATE/bugs.txt" | sed 's/^/    /'
    printf '\n  open in a browser:\n    %s\n    %s\n    %s\n' "$REPORTS/bugs.html" "$REPORTS/eol.html" "$REPORTS/health.html"
fi
printf '\ndemo finished in %d s after the build\n' "$(( $(date +%s) - STARTED ))"
