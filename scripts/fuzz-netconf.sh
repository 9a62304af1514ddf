#!/usr/bin/env bash
# Builds the NETCONF framing/session fuzz target with libFuzzer and runs it for a bounded time.
# Usage: scripts/fuzz-netconf.sh [SECONDS]   (default 60). Crashes are written to fuzz-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
swift build --product NETCONFFuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
mkdir -p fuzz-artifacts .build-fuzz/corpus
cp Fuzz/corpus/* .build-fuzz/corpus/
# libFuzzer reports every new coverage point: keep its log, show the end.
if ! .build-fuzz/debug/NETCONFFuzz -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix=fuzz-artifacts/ .build-fuzz/corpus > .build-fuzz/fuzz.log 2>&1; then
    tail -n 60 .build-fuzz/fuzz.log
    echo "fuzz-netconf: crash; reproducer in fuzz-artifacts/ (replay: swift run NETCONFFuzz fuzz-artifacts/)" >&2
    exit 1
fi
tail -n 3 .build-fuzz/fuzz.log
echo "fuzz-netconf: no crash in ${seconds} s"
