import Bundle
import Foundation

/// One incident the agent noticed and what it did about it, as `care-agent events` shows it.
public struct EventRecord: Codable, Sendable, Equatable {
    /// What the agent did.
    public enum Action: String, Codable, Sendable {
        /// A diagnostic bundle was collected and stored (`bundle` names it).
        case bundle
        /// Within `event-window` of the last bundle for this device and kind: none collected.
        case rateLimited = "rate-limited"
        /// The event collection failed or could not be stored (`reason` says why).
        case failed
    }

    /// Names this incident in the log, so that a later sighting by another source (the poll
    /// after a syslog message) is added to it instead of raising a second bundle.
    public var id: String?

    public var device: String
    public var event: TriggerEvent
    public var action: Action
    /// The bundle's file name in the outbox.
    public var bundle: String?
    public var reason: String?
    /// The same incident noticed again by other sources within `event-window` (a syslog
    /// message, then the next poll): recorded here, no second bundle collected.
    public var alsoSeen: [TriggerEvent]?

    /// Every source that noticed this incident, the first one first.
    public var sources: [String] {
        var all = [event.source]
        for sighting in alsoSeen ?? [] where !all.contains(sighting.source) { all.append(sighting.source) }
        return all
    }

    public init(device: String, event: TriggerEvent, action: Action, bundle: String? = nil, reason: String? = nil,
                id: String? = nil, alsoSeen: [TriggerEvent]? = nil) {
        self.id = id
        self.alsoSeen = alsoSeen
        self.device = device
        self.event = event
        self.action = action
        self.bundle = bundle
        self.reason = reason
    }
}

/// The recent events, one JSON object a line in `<state-directory>/events.jsonl`: appended as
/// they happen, the oldest dropped once the file passes ``maximumBytes`` (rewritten atomically
/// with the newest half), so that it never grows without bound.
public struct EventLog: Sendable {
    public let path: String
    public static let maximumBytes = 1 << 20

    public init(stateDirectory: String) { path = stateDirectory + "/events.jsonl" }

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// Appends `records` (one write, so lines of concurrent appends never interleave).
    public func append(_ records: [EventRecord]) throws {
        guard !records.isEmpty else { return }
        var bytes = Data()
        for record in records {
            bytes += try Self.encoder().encode(record)
            bytes.append(0x0A)
        }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard fd >= 0 else { throw FileWriteError(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        var info = stat()
        // A line a full disk or a crash cut short: ended first, or this record would be glued to
        // it and lost with it (`load` skips what does not decode).
        if fstat(fd, &info) == 0, info.st_size > 0 {
            var last: UInt8 = 0
            if pread(fd, &last, 1, info.st_size - 1) == 1, last != 0x0A { bytes.insert(0x0A, at: 0) }
        }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let size = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
        close(fd)
        guard written == bytes.count else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "cannot append to \(path): \(String(cString: strerror(errno)))"])
        }
        if size > Self.maximumBytes { try trim() }
    }

    /// Adds `sighting` to the record with `id` (rewritten atomically); false when no record has
    /// that id any more (trimmed away).
    @discardableResult
    public func amend(id: String, with sighting: TriggerEvent) throws -> Bool {
        guard let data = FileManager.default.contents(atPath: path) else { return false }
        let decoder = Self.decoder(), encoder = Self.encoder()
        var found = false
        var out = Data()
        for line in data.split(separator: 0x0A) {
            if !found, var record = try? decoder.decode(EventRecord.self, from: Data(line)), record.id == id {
                record.alsoSeen = (record.alsoSeen ?? []) + [sighting]
                out += try encoder.encode(record)
                found = true
            } else {
                out += line
            }
            out.append(0x0A)
        }
        guard found else { return false }
        try writeAtomically([UInt8](out), to: path, mode: 0o640, what: "event log")
        return true
    }

    /// Keeps the newest half of the lines.
    /// On bytes: a line cut mid-character (a crash, a full disk) is not UTF-8, and trimming by
    /// text then failed on every append while the file grew on (and `load` reads nothing past
    /// 4 MiB).
    private func trim() throws {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        let lines = data.split(separator: 0x0A)
        var kept: [UInt8] = []
        kept.reserveCapacity(data.count / 2 + 1)
        for line in lines.suffix(lines.count / 2) {
            kept += line
            kept.append(0x0A)
        }
        try writeAtomically(kept, to: path, mode: 0o640, what: "event log")
    }

    /// The events recorded, oldest first (lines that do not decode are skipped: a line cut by a
    /// crash must not hide the others).
    public func load() -> [EventRecord] {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 4 * Self.maximumBytes else { return [] }
        let decoder = Self.decoder()
        return data.split(separator: 0x0A).compactMap { try? decoder.decode(EventRecord.self, from: Data($0)) }
    }
}
