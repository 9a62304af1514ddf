import XML

/// Why a reply gave no facts. Every case names the RPC; the collector adds the device.
public enum JunosParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The reply is not well-formed XML.
    case malformedXML(rpc: String, XMLError)
    /// The device answered with errors (or only warnings) and no data.
    case deviceError(rpc: String, [DeviceMessage])
    /// The device answered with `<output>` text instead of data ("BGP is not running").
    case outputInsteadOfData(rpc: String, text: String)
    /// `<rpc-reply/>` with nothing in it.
    case emptyReply(rpc: String)
    /// The data element is not the one this RPC answers with.
    case unexpectedData(rpc: String, expected: [String], found: String)
    /// The reply goes past a parsing limit (configuration text nested too deep).
    case limitExceeded(rpc: String, String)

    /// Whether the reply went past a parsing limit (size, depth, DOCTYPE, encoding): hostile or
    /// broken beyond what any real device sends, rather than merely unexpected.
    public var isLimitRefusal: Bool {
        switch self {
        case .limitExceeded: return true
        case let .malformedXML(_, error):
            if case .malformed = error { return false }
            if case .empty = error { return false }
            return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case let .malformedXML(rpc, error):
            if case .malformed = error { return "\(rpc): reply is \(error)" }
            return "\(rpc): reply refused: \(error)"
        case let .limitExceeded(rpc, what):
            return "\(rpc): reply refused: \(what)"
        case let .deviceError(rpc, messages):
            let what = messages.allSatisfy { $0.severity == .warning } ? "only warnings and no data" : "an error"
            return "\(rpc): device returned \(what): " + messages.map(\.description).joined(separator: "; ")
        case let .outputInsteadOfData(rpc, text):
            let firstLine = text.split(separator: "\n").first.map(String.init) ?? text
            return "\(rpc): device returned text instead of XML data: \(firstLine)"
        case let .emptyReply(rpc):
            return "\(rpc): reply holds no data"
        case let .unexpectedData(rpc, expected, found):
            return "\(rpc): expected <\(expected.joined(separator: "> or <"))>, found <\(found)>"
        }
    }
}

/// A fact the agent collects: a typed value parsed from one RPC's reply.
public protocol JunosFact: Codable, Sendable, Equatable {
    /// Names of the data elements this fact is read from (`software-information`, ...).
    static var dataElements: [String] { get }
    /// Builds the fact from the reply's sections. Called only when at least one section
    /// has one of ``dataElements``; partial data gives a partial fact, never a crash.
    static func parse(_ reply: JunosReply) -> Self
    /// Like ``parse(_:)``, for facts whose reading can go past a limit and must say so rather
    /// than give partial facts. The default is ``parse(_:)``.
    static func parseChecked(_ reply: JunosReply, rpc: String) throws(JunosParseError) -> Self
}

extension JunosFact {
    /// Parses `reply` as the answer to `rpc`, turning error-only, text-only and empty replies
    /// into typed errors. Errors beside data (one RE unreachable, warnings) do not fail it.
    public static func parse(_ reply: JunosReply, rpc: String) throws(JunosParseError) -> Self {
        let matching = reply.sections.filter { dataElements.contains($0.element.name) }
        if matching.isEmpty {
            if !reply.errors.isEmpty { throw .deviceError(rpc: rpc, reply.errors) }
            if let text = reply.output.first { throw .outputInsteadOfData(rpc: rpc, text: text) }
            if let found = reply.sections.first { throw .unexpectedData(rpc: rpc, expected: dataElements, found: found.element.name) }
            if !reply.warnings.isEmpty { throw .deviceError(rpc: rpc, reply.warnings) }
            throw .emptyReply(rpc: rpc)
        }
        return try parseChecked(reply, rpc: rpc)
    }

    public static func parseChecked(_ reply: JunosReply, rpc: String) throws(JunosParseError) -> Self { parse(reply) }

    /// Parses raw reply bytes.
    public static func parse(bytes: some Collection<UInt8>, rpc: String) throws(JunosParseError) -> Self {
        let reply: JunosReply
        do { reply = try JunosReply(bytes: bytes) } catch { throw .malformedXML(rpc: rpc, error) }
        return try parse(reply, rpc: rpc)
    }
}
