import Foundation

/// The scheduler's runs as the state directory keeps them (`scheduled-runs.json`): when each
/// group's last run started, and whether it finished. Kept in memory only, a restart inside a
/// `daily` window collected the whole group a second time, and an interval schedule started
/// over from the restart; a run the restart cut short left its remaining devices to the next
/// window.
public struct ScheduledRuns: Codable, Sendable, Equatable {
    public struct Run: Codable, Sendable, Equatable {
        public var started: Date
        public var finished: Date?
    }

    public var groups: [String: Run] = [:]

    public init() {}

    static func path(stateDirectory: String) -> String { stateDirectory + "/scheduled-runs.json" }

    /// The file's runs; none when it is missing or unreadable (the schedule then starts afresh).
    public static func load(stateDirectory: String) -> ScheduledRuns {
        guard let data = FileManager.default.contents(atPath: path(stateDirectory: stateDirectory)),
              let runs = try? ResultStore.decoder.decode(ScheduledRuns.self, from: data) else { return ScheduledRuns() }
        return runs
    }

    public func save(stateDirectory: String) throws {
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        try writeAtomically(Array(try ResultStore.encoder.encode(self)), to: Self.path(stateDirectory: stateDirectory), mode: 0o640,
                            what: "the scheduled runs")
    }

    /// Groups whose last run started and never finished (the agent stopped or died during it).
    public var interrupted: [String: Date] {
        groups.compactMapValues { $0.finished == nil ? $0.started : nil }
    }

    /// Of `devices`, those a run started at `started` did not finish: no result since then.
    public static func remaining(_ devices: [Device], startedAt started: Date, results: ResultStore) -> [Device] {
        devices.filter { device in
            guard let result = results.load(device.name) else { return true }
            return result.finished < started
        }
    }
}
