@testable import Agent
import Bundle
import Foundation
import Testing
import TestSupport

/// What the incident tests (health poll, syslog) read back: event bundles and `care-agent events`.
enum EventEvidence {
    /// Event bundles in `outbox`, read and verified, oldest first.
    static func bundles(_ outbox: String) throws -> [BundleContents] {
        try FileOutbox(directory: outbox).pending().filter { $0.trigger == .event }.sorted { $0.added < $1.added }.map {
            try BundleReader().read(contentsOf: URL(fileURLWithPath: outbox + "/" + $0.name)).contents
        }
    }

    /// `care-agent events --json` for `device`: the records and the counts per kind.
    struct Listing: Decodable {
        var events: [EventRecord]
        var kinds: [String: [String: Int]]
    }

    /// Runs `care-agent events --state STATE --device DEVICE --json` (files under `dir`).
    static func listing(state: String, device: String, dir: URL) throws -> Listing {
        let out = dir.appendingPathComponent("events.json").path, err = dir.appendingPathComponent("events.err").path
        let events = try ChildProcess(try careAgentExecutable(), ["events", "--state", state, "--device", device, "--json"],
                                      stdout: out, stderr: err)
        #expect(events.wait() == 0, "\((try? String(contentsOfFile: err, encoding: .utf8)) ?? "")")
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(Listing.self, from: Data(contentsOf: URL(fileURLWithPath: out)))
    }
}
