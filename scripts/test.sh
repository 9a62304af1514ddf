#!/usr/bin/env bash
# Runs every test: the Swift test suites (real OpenSSH sshd, netconfd and ncclient peers on
# loopback), bounded libFuzzer runs of the NETCONF framing, the XML/fact parsers, the redactor
# and the bundle reader, the systemd unit check, the install/uninstall scripts, and the service
# under a real systemd (Debian 12 in systemd-nspawn).
# Run as root on Debian 12: the sshd tests log in as a 'care-test' account they create.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
mkdir -p .build
# One test at a time: several suites measure that a healthy device is not delayed by a hung one,
# which only means something when other suites are not loading the 2 cores at the same time.
swift test --no-parallel 2>&1 | tee .build/test-output.txt
# Inputs that once hurt a parser (hostile documents, fuzz finds): replayed through the fuzz
# targets' code without sanitizers, then every fuzz target for a bounded time.
for target in xml redact bundle ssh-offer; do
    .build/debug/CareFuzz "$target" "Tests/FuzzRegressions/$target"
done
scripts/fuzz-all.sh "${FUZZ_SECONDS:-30}"
checks=2
if [ -f systemd/care-agent.service ] && command -v systemd-analyze >/dev/null; then
    scripts/check-unit.sh
    checks=$((checks + 1))
fi
scripts/check-install.sh
checks=$((checks + 1))
# The schedule model behind the bound bench-fleet prints, on fleets worked out by hand.
python3 scripts/bench-fleet --check-model
checks=$((checks + 1))
# What install.sh builds (release, the Swift runtime linked in) installed with install.sh into a
# booted Debian 12 container without a Swift toolchain (tree cached in /var/cache/care-agent-test;
# built by debootstrap when missing).
swift build -c release --static-swift-stdlib --product care-agent
scripts/check-systemd.sh
checks=$((checks + 1))
# One plain closing line: Swift Testing's count plus the fuzz run and the script checks.
passed=$(sed -n 's/.*Test run with \([0-9]*\) tests\{0,1\} .*passed.*/\1/p' .build/test-output.txt | tail -n 1)
echo "all: $(( ${passed:-0} + checks )) passed, 0 failed"
