#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60): NETCONF framing (scripts/fuzz-netconf.sh),
# then CareFuzz's xml (XML document, every fact parser, XML redaction), redact (text and set
# redaction, the text configuration reader), bundle (the bundle reader) and ssh-offer (a server's
# identification and key-exchange init). Seeds: the fixtures
# and real bundles. A crash leaves its input in fuzz-artifacts/; keep it as a regression input
# under Tests/FuzzRegressions/TARGET/ (scripts/test.sh replays them all).
# Usage: scripts/fuzz-all.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
scripts/fuzz-netconf.sh "$seconds"
swift build --product CareFuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
mkdir -p fuzz-artifacts
for target in xml redact bundle ssh-offer; do
    corpus=.build-fuzz/corpus-$target
    mkdir -p "$corpus"
    case "$target" in
        xml) find Tests/Fixtures -name '*.xml' -size -200k -exec cp {} "$corpus/" \; ;;
        redact) cp Tests/Fixtures/get-configuration/* "$corpus/"
                find Tests/Fixtures profiles -name '*.txt' -exec cp {} "$corpus/" \; 2>/dev/null || true ;;
        bundle) cp Tests/Fixtures/bundles/*.tar.gz "$corpus/" ;;
        ssh-offer) ;; # the regression inputs: a real OpenSSH server's start
    esac
    [ -d "Tests/FuzzRegressions/$target" ] && cp Tests/FuzzRegressions/$target/* "$corpus/" 2>/dev/null || true
    log=.build-fuzz/fuzz-$target.log
    # -timeout: an input taking more than 10 s is a hang (a parser with super-linear cost).
    if ! CARE_FUZZ_TARGET=$target .build-fuzz/debug/CareFuzz -max_total_time="$seconds" -rss_limit_mb=2048 \
        -timeout=10 -max_len=262144 -artifact_prefix=fuzz-artifacts/$target- "$corpus" > "$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz-all: $target: crash or hang; reproducer in fuzz-artifacts/$target-* (replay: .build/debug/CareFuzz $target FILE)" >&2
        exit 1
    fi
    tail -n 2 "$log"
    echo "fuzz-all: $target: no crash in ${seconds} s"
done
