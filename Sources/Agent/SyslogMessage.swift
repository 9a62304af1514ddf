import Foundation

/// Why a datagram or line is not a syslog message the agent reads.
public struct SyslogParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// One syslog message as a Junos device sends it: RFC 5424 (`structured-data` format, with the
/// event tag as MSGID and Junos structured data) or BSD (RFC 3164, Junos' default), parsed
/// within fixed bounds: a message longer than ``maximumLength`` is refused, structured data is
/// read in one pass with no recursion, and at most ``maximumElements`` elements of at most
/// ``maximumParameters`` parameters are kept. The first step of the syslog trigger of issue 15;
/// the receiver (UDP, TCP, socket activation) is still to come.
public struct SyslogMessage: Sendable, Equatable {
    public static let maximumLength = 8192
    public static let maximumElements = 8
    public static let maximumParameters = 32

    public var facility: Int
    public var severity: Int
    /// The sender's own name for itself (nil when absent); the agent maps the sender's address,
    /// not this, to a device.
    public var hostname: String?
    public var appName: String?
    /// RFC 5424 MSGID (Junos puts the event tag there).
    public var messageID: String?
    /// SD-ID → parameters (`junos@2636.1.1.1.2.18` → `fru-name` → `FPC 1`).
    public var structuredData: [String: [String: String]]
    public var text: String

    /// The Junos event tag (`CHASSISD_FRU_OFFLINE_NOTICE`): the MSGID of an RFC 5424 message, or
    /// the leading `TAG:` of a BSD message's text.
    public var eventTag: String? {
        if let messageID, Self.isTag(messageID) { return messageID }
        guard let colon = text.firstIndex(of: ":") else { return nil }
        var word = String(text[..<colon])
        // `explicit-priority` writes `%FACILITY-SEVERITY-TAG`.
        if word.hasPrefix("%") {
            let parts = word.dropFirst().split(separator: "-", maxSplits: 2)
            if parts.count == 3, parts[1].allSatisfy(\.isNumber) { word = String(parts[2]) }
        }
        return Self.isTag(word) ? word : nil
    }

    static func isTag(_ word: String) -> Bool {
        guard let first = word.unicodeScalars.first, ("A" ... "Z").contains(first), word.count <= 64 else { return false }
        return word.unicodeScalars.allSatisfy { ("A" ... "Z").contains($0) || ("0" ... "9").contains($0) || $0 == "_" } && word.contains("_")
    }

    public init(parsing bytes: some Collection<UInt8>) throws(SyslogParseError) {
        guard bytes.count <= Self.maximumLength else {
            throw SyslogParseError("message of \(bytes.count) bytes, more than the limit of \(Self.maximumLength)")
        }
        var line = String(decoding: bytes, as: UTF8.self)
        while line.last == "\n" || line.last == "\r" || line.last == "\0" { line.removeLast() }
        var rest = Substring(line)
        guard rest.first == "<", let close = rest.firstIndex(of: ">"), rest.distance(from: rest.startIndex, to: close) <= 4,
              let pri = Int(rest[rest.index(after: rest.startIndex) ..< close]), (0 ... 191).contains(pri) else {
            throw SyslogParseError("no <PRI> at the start")
        }
        facility = pri / 8
        severity = pri % 8
        rest = rest[rest.index(after: close)...]
        structuredData = [:]
        if rest.hasPrefix("1 ") {
            rest = rest.dropFirst(2)
            var fields: [String?] = []
            for _ in 0 ..< 5 {
                let word = rest.prefix { $0 != " " }
                rest = rest.dropFirst(word.count).drop { $0 == " " }
                fields.append(word == "-" || word.isEmpty ? nil : String(word))
            }
            hostname = fields[1]
            appName = fields[2]
            messageID = fields[4]
            try Self.readStructuredData(&rest, into: &structuredData)
            rest = rest.drop { $0 == " " }
            // RFC 5424 marks UTF-8 text with a BOM.
            if rest.hasPrefix("\u{FEFF}") { rest = rest.dropFirst() }
            text = String(rest)
        } else {
            // BSD: "Mmm dd hh:mm:ss HOST TAG[pid]: text"; Junos's `time-format` may add the
            // year ("Mmm dd yyyy hh:mm:ss") and milliseconds ("hh:mm:ss.mmm").
            messageID = nil
            if let afterStamp = Self.afterBSDTimestamp(rest) {
                rest = afterStamp.drop { $0 == " " }
                let host = rest.prefix { $0 != " " }
                rest = rest.dropFirst(host.count).drop { $0 == " " }
                hostname = host.isEmpty ? nil : String(host)
            } else {
                hostname = nil
            }
            // "chassisd[1234]: text" or "chassisd: text"; a text without a tag is kept whole.
            let head = rest.prefix { $0 != " " }
            if head.hasSuffix(":"), head.count > 1 {
                let tag = head.dropLast()
                appName = String(tag.prefix { $0 != "[" })
                rest = rest.dropFirst(head.count).drop { $0 == " " }
            } else {
                appName = nil
            }
            text = String(rest)
        }
    }

    /// What follows a BSD timestamp at the start of `text` (nil when there is none): month, day,
    /// an optional year, and the time with optional fractions.
    static func afterBSDTimestamp(_ text: Substring) -> Substring? {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard months.contains(String(text.prefix(3))), text.dropFirst(3).first == " " else { return nil }
        var rest = text.dropFirst(3).drop { $0 == " " }
        let day = rest.prefix { $0.isNumber }
        guard (1 ... 2).contains(day.count) else { return nil }
        rest = rest.dropFirst(day.count)
        guard rest.first == " " else { return nil }
        rest = rest.drop { $0 == " " }
        var word = rest.prefix { $0 != " " }
        if word.count == 4, word.allSatisfy(\.isNumber) {
            rest = rest.dropFirst(4).drop { $0 == " " }
            word = rest.prefix { $0 != " " }
        }
        // hh:mm:ss, then optional fractions.
        let clock = word.prefix(8)
        guard clock.count == 8, clock.enumerated().allSatisfy({ index, c in index == 2 || index == 5 ? c == ":" : c.isNumber }) else { return nil }
        let fraction = word.dropFirst(8)
        guard fraction.isEmpty || (fraction.first == "." && fraction.dropFirst().allSatisfy(\.isNumber)) else { return nil }
        return rest.dropFirst(word.count)
    }

    /// `[id name="value" ...]...` or `-`, one pass, bounded.
    private static func readStructuredData(_ rest: inout Substring, into elements: inout [String: [String: String]]) throws(SyslogParseError) {
        if rest.hasPrefix("-") {
            rest = rest.dropFirst()
            return
        }
        while rest.first == "[" {
            rest = rest.dropFirst()
            let id = rest.prefix { $0 != " " && $0 != "]" }
            guard !id.isEmpty else { throw SyslogParseError("structured data element without an id") }
            rest = rest.dropFirst(id.count)
            var parameters: [String: String] = [:]
            while true {
                rest = rest.drop { $0 == " " }
                guard let next = rest.first else { throw SyslogParseError("structured data element \(id) is not closed") }
                if next == "]" { rest = rest.dropFirst(); break }
                let name = rest.prefix { $0 != "=" && $0 != " " && $0 != "]" }
                rest = rest.dropFirst(name.count)
                guard !name.isEmpty, rest.hasPrefix("=\"") else { throw SyslogParseError("bad parameter in structured data element \(id)") }
                rest = rest.dropFirst(2)
                var value = ""
                var closed = false
                while let c = rest.first {
                    rest = rest.dropFirst()
                    if c == "\\", let escaped = rest.first, escaped == "\"" || escaped == "\\" || escaped == "]" {
                        value.append(escaped)
                        rest = rest.dropFirst()
                    } else if c == "\"" {
                        closed = true
                        break
                    } else {
                        value.append(c)
                    }
                }
                guard closed else { throw SyslogParseError("unterminated value of \(name) in structured data element \(id)") }
                if parameters.count < maximumParameters { parameters[String(name)] = value }
            }
            if elements.count < maximumElements { elements[String(id)] = parameters }
        }
    }
}
