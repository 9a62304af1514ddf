import Foundation

// care-agent-bench: release-mode benchmarks that print figures as ratios against a baseline
// measured in the same run. Usage: swift run -c release care-agent-bench [--seconds S] [--only TEXT]
let arguments = Array(CommandLine.arguments.dropFirst())
var seconds = 2.0
if let i = arguments.firstIndex(of: "--seconds"), i + 1 < arguments.count, let s = Double(arguments[i + 1]) { seconds = s }
var only: String?
if let i = arguments.firstIndex(of: "--only"), i + 1 < arguments.count { only = arguments[i + 1] }
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let fixtures = root.appendingPathComponent("Tests/Fixtures")

func peakRSSMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

print("parse throughput: Junos parsers vs raw libxml2 on the same bytes (goal: ratio >= 0.5)")
print("input | size | libxml2 MB/s | care-agent MB/s | ratio")
for result in ParseBenchmark.run(fixtures: fixtures, seconds: seconds, only: only) {
    print(String(format: "%@ | %d bytes | %.1f | %.1f | %.2f", result.name, result.size, result.baselineMBps, result.fullMBps, result.ratio))
}
print(String(format: "peak RSS: %.0f MiB", peakRSSMiB()))
