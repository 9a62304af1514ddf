import Foundation

/// Where finished device collections go. The collector never knows whether that is a bundle in
/// the outbox, a directory, or a test's memory.
public protocol CollectionSink: Sendable {
    /// Stores one device's collection and returns where it went (a path, for logs and summaries).
    /// The collection is the sink's (`consuming`): a sink that needs the replies only briefly
    /// lets them go before its slow part.
    func store(_ collection: consuming DeviceCollection) async throws -> String
}

/// Writes each collection as a directory `<root>/<device>/<UTC time>/` holding `result.json`,
/// `facts.json`, `collection.log` and `replies/<NN>-<rpc>.xml`. Files are written to a
/// temporary name and renamed, so a reader never sees half a result.
public struct DirectorySink: CollectionSink {
    public var root: String

    public init(root: String) {
        self.root = root
    }

    public func store(_ collection: consuming DeviceCollection) async throws -> String {
        let result = collection.result
        let stamp = DirectorySink.timestamp(result.started)
        let fm = FileManager.default
        let final = "\(root)/\(DirectorySink.safeName(result.device.name))/\(stamp)"
        let staging = "\(root)/\(DirectorySink.safeName(result.device.name))/.\(stamp).partial"
        try? fm.removeItem(atPath: staging)
        try fm.createDirectory(atPath: staging + "/replies", withIntermediateDirectories: true)
        for reply in collection.replies {
            try Data(reply.bytes).write(to: URL(fileURLWithPath: "\(staging)/replies/\(reply.file)"))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try encoder.encode(result).write(to: URL(fileURLWithPath: "\(staging)/result.json"))
        try encoder.encode(result.facts).write(to: URL(fileURLWithPath: "\(staging)/facts.json"))
        try Data(result.log.utf8).write(to: URL(fileURLWithPath: "\(staging)/collection.log"))
        try? fm.removeItem(atPath: final)
        try fm.moveItem(atPath: staging, toPath: final)
        return final
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss.SSS'Z'"
        return formatter.string(from: date)
    }

    /// A device name safe as a path component.
    static func safeName(_ name: String) -> String {
        let mapped = name.unicodeScalars.map { c -> Character in
            (CharacterSet.alphanumerics.contains(c) || c == "-" || c == "_" || c == ".") ? Character(c) : "_"
        }
        let s = String(mapped)
        return s.isEmpty || s == "." || s == ".." ? "_" : s
    }
}
