import Foundation

/// The order a run starts its devices in: the ones that took longest last time first, the way a
/// build tool starts its slowest jobs first. A run ends when its last device does; a device that
/// hangs until the RPC timeout (a busy routing engine, a half-dead management plane) started
/// last made the whole run wait that long after every other device was done. With each device's
/// last duration known, the slow ones start in the first wave and the run ends with the quick
/// ones. A device never collected counts as the median of the known ones; with no history at all
/// (the first run) the order is the inventory's.
///
/// Kept in `<state-directory>/collection-order.json`: device name → seconds its last attempted
/// collection took.
public struct CollectionOrder: Sendable, Equatable {
    public private(set) var seconds: [String: Double]
    /// What this process changed since it read the file: only that is written back over what
    /// another process (the service, a `collect now --standalone` with the same state) wrote.
    private var recorded: Set<String> = []
    private var forgotten: Set<String> = []

    public init(seconds: [String: Double] = [:]) { self.seconds = seconds }

    public static func == (a: CollectionOrder, b: CollectionOrder) -> Bool { a.seconds == b.seconds }

    /// The history kept in `stateDirectory`; empty when there is none or it cannot be read (the
    /// order is only an optimisation: inventory order is always correct).
    public static func load(stateDirectory: String) -> CollectionOrder {
        guard let data = FileManager.default.contents(atPath: path(stateDirectory)),
              let seconds = try? JSONDecoder().decode([String: Double].self, from: data) else { return CollectionOrder() }
        return CollectionOrder(seconds: seconds.filter { $0.value.isFinite && $0.value >= 0 })
    }

    static func path(_ stateDirectory: String) -> String { stateDirectory + "/collection-order.json" }

    /// Positions into `devices`, in the order to start them: longest last duration first,
    /// inventory order among equals.
    public func startOrder(_ devices: [Device]) -> [Int] {
        guard !seconds.isEmpty else { return Array(devices.indices) }
        let known = seconds.values.sorted()
        let median = known[known.count / 2]
        let estimates = devices.map { seconds[$0.name] ?? median }
        // Stable: equal estimates keep their inventory order.
        return devices.indices.sorted { estimates[$0] != estimates[$1] ? estimates[$0] > estimates[$1] : $0 < $1 }
    }

    /// Takes the durations of the devices a run attempted.
    public mutating func record(_ summaries: some Sequence<DeviceSummary>) {
        for summary in summaries where summary.status.attempted {
            seconds[summary.name] = max(0, summary.durationSeconds)
            recorded.insert(summary.name)
            forgotten.remove(summary.name)
        }
    }

    /// Forgets devices no longer in `names` (a device removed from the inventory).
    public mutating func keep(only names: Set<String>) {
        for name in seconds.keys where !names.contains(name) {
            forgotten.insert(name)
            recorded.remove(name)
        }
        seconds = seconds.filter { names.contains($0.key) }
    }

    /// Writes the history into `stateDirectory` (atomically; a failure is the caller's to log):
    /// the file as it is now, with what this process recorded or forgot since it read it, so that
    /// two processes sharing the state directory do not undo each other's durations.
    public mutating func save(stateDirectory: String) throws {
        var merged = Self.load(stateDirectory: stateDirectory).seconds
        for name in recorded { merged[name] = seconds[name] }
        for name in forgotten { merged[name] = nil }
        seconds = merged
        recorded = []
        forgotten = []
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        try writeAtomically([UInt8](try encoder.encode(merged.mapValues { ($0 * 1000).rounded() / 1000 })),
                            to: Self.path(stateDirectory), mode: 0o640, what: "collection order")
    }
}
