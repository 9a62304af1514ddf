import Agent
import ArgumentParser
import Bundle
import Foundation

/// `care-agent events`: the incidents the health poll or syslog noticed, and the bundles they produced.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "List recent events (new alarms, core dumps, switchovers, reboots, lost parts), what raised them, and the bundles they produced.",
        discussion: "Reads <state-directory>/events.jsonl, newest last, then counts per event kind. Works whether the service runs or not."
    )

    @Option(help: "The agent's state directory.") var state: String = "/var/lib/care-agent"
    @Option(help: "Only this device's events.") var device: String?
    @Flag(help: "Print JSON: {events: [...], kinds: {KIND: {bundle, rate-limited, failed, duplicate}}}.") var json = false

    struct Output: Encodable {
        var events: [EventRecord]
        var kinds: [String: [String: Int]]
    }

    func run() async throws {
        let log = EventLog(stateDirectory: state)
        if let problem = StateAccess.problem(reading: [state, log.path]) {
            Console.error(problem)
            throw ExitCode(2)
        }
        var events = log.load()
        if let device { events = events.filter { $0.device == device } }
        var kinds: [String: [String: Int]] = [:]
        for record in events {
            kinds[record.event.kind, default: [:]][record.action.rawValue, default: 0] += 1
            // The same incident reported again by another source (syslog, then the poll).
            if let also = record.alsoSeen, !also.isEmpty { kinds[record.event.kind, default: [:]]["duplicate", default: 0] += also.count }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            encoder.dateEncodingStrategy = .iso8601
            Console.out(String(decoding: try encoder.encode(Output(events: events, kinds: kinds)), as: UTF8.self))
            return
        }
        guard !events.isEmpty else {
            Console.out(device.map { "no events for \($0)" } ?? "no events (is poll or [syslog] set in agent.conf?)")
            return
        }
        let time = Date.ISO8601FormatStyle(timeZone: .gmt)
        for record in events {
            let outcome: String
            switch record.action {
            case .bundle: outcome = "bundle \(record.bundle ?? "?")"
            case .rateLimited: outcome = "rate-limited (within event-window)"
            case .failed: outcome = "FAILED: \(record.reason ?? "")"
            }
            // Device-supplied text (alarm descriptions, file names) is escaped: one event, two lines.
            let e = TerminalText.escaped
            Console.out("\(record.event.time.formatted(time))  \(e(record.device))  \(e(record.event.kind)) (\(e(record.sources.joined(separator: " + "))))  \(e(outcome))")
            Console.out("    \(e(record.event.evidence))")
            for sighting in record.alsoSeen ?? [] {
                Console.out("    also \(e(sighting.source)) at \(sighting.time.formatted(time)): \(e(sighting.evidence))")
            }
        }
        Console.out("per kind: " + kinds.keys.sorted().map { kind in
            let counts = kinds[kind]!
            return "\(TerminalText.escaped(kind)) \(counts.values.reduce(0, +)) (" + counts.keys.sorted().map { "\($0) \(counts[$0]!)" }.joined(separator: ", ") + ")"
        }.joined(separator: "; "))
    }
}
