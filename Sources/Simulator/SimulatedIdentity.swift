import Foundation
import XML

/// Who a simulated device says it is. Fleet devices share profiles, so each one rewrites the
/// host names and chassis serial number in its replies; otherwise every bundle of a fleet would be
/// named after the same capture (bundles are named hostname-serial-time).
public struct SimulatedIdentity: Sendable, Equatable {
    public var hostName: String
    public var serialNumber: String?

    public init(hostName: String, serialNumber: String? = nil) {
        self.hostName = hostName
        self.serialNumber = serialNumber
    }

    /// A serial number for device `number` shaped like the captured one: the captured serial's
    /// leading characters with the device number in the last four places.
    public static func serialNumber(from captured: String, device number: Int) -> String {
        let digits = String(format: "%04d", number % 10000)
        guard captured.count > 4 else { return captured + "-" + digits }
        return captured.prefix(captured.count - 4) + digits
    }
}

/// Replies larger than this are served as captured: rewriting them would only cost time, and
/// a capture that large is a configuration, which bundles are not named after.
private let rewriteLimit = 16 * 1024 * 1024

extension DeviceProfile {
    /// The chassis serial number of the inventory reply: the first `serial-number` in it, which
    /// belongs to the `chassis` element itself.
    public var chassisSerialNumber: String? {
        guard let bytes = replies["get-chassis-inventory"], bytes.count < rewriteLimit else { return nil }
        return XMLTextRewriter.values(of: ["serial-number"], in: bytes).first?.value
    }

    /// The host names of the software reply in order of appearance, each with the routing engine
    /// (`re-name`) it belongs to, when the reply has several.
    func softwareHostNames() -> [(hostName: String, routingEngine: String?)] {
        guard let bytes = replies["get-software-information"], bytes.count < rewriteLimit else { return [] }
        var result: [(String, String?)] = []
        var lastRE: String?
        for (element, value) in XMLTextRewriter.values(of: ["re-name", "host-name"], in: bytes) {
            if element == "re-name" { lastRE = value; continue }
            if !result.contains(where: { $0.0 == value }) { result.append((value, lastRE)) }
        }
        return result
    }

    /// The profile as the device `identity` serves it: every `host-name` (in every reply) and the
    /// chassis serial number replaced. A multi-RE reply keeps one name per routing engine: the
    /// first keeps the plain host name, the others get `-<re-name>` appended.
    ///
    /// The fleet personalizes a profile for every session it serves, so this is one byte scan per
    /// reply: a String-and-Character version of it was three quarters of the fleet process's CPU.
    public func personalized(for identity: SimulatedIdentity) -> DeviceProfile {
        var hostNames: [String: String] = [:]
        for (index, entry) in softwareHostNames().enumerated() {
            hostNames[entry.hostName] = index == 0 ? identity.hostName : "\(identity.hostName)-\(entry.routingEngine ?? String(index))"
        }
        let serials = chassisSerialNumber.flatMap { original in identity.serialNumber.map { (original, $0) } }
        let elements = serials == nil ? ["host-name"] : ["host-name", "serial-number", "member-serial-number"]
        var copy = self
        for (rpc, bytes) in replies where bytes.count < rewriteLimit {
            let rewritten = XMLTextRewriter.replacingValues(of: elements, in: bytes) { element, value in
                if element == "host-name" { return hostNames[value] ?? identity.hostName }
                return value == serials?.0 ? serials?.1 : nil
            }
            if let rewritten { copy.replies[rpc] = rewritten }
        }
        return copy
    }
}

/// Finds and replaces the text of simple elements (`<name>text</name>`, no child elements) in
/// captured XML without re-serialising it, so every other byte stays as captured. Works on the
/// UTF-8 bytes: element names and markup are ASCII, and a scan for `<` is all it takes.
enum XMLTextRewriter {
    static func values(of element: String, in text: String) -> [String] {
        values(of: [element], in: Array(text.utf8)).map(\.value)
    }

    /// `(element, trimmed text)` of every occurrence of the named elements, in document order.
    static func values(of elements: [String], in bytes: [UInt8]) -> [(element: String, value: String)] {
        var found: [(String, String)] = []
        _ = rewrite(elements, in: bytes) { element, value in
            found.append((element, value))
            return nil
        }
        return found
    }

    /// Replaces the text of the named elements where `replacement` returns a value.
    static func replacingValues(of elements: [String], in text: String, _ replacement: (String) -> String?) -> String {
        let bytes = Array(text.utf8)
        return rewrite(elements, in: bytes) { _, value in replacement(value) }.map { String(decoding: $0, as: UTF8.self) } ?? text
    }

    /// Replaces the text of the named elements where `replacement(element, value)` returns a
    /// value; nil when nothing was replaced.
    static func replacingValues(of elements: [String], in bytes: [UInt8], _ replacement: (String, String) -> String?) -> [UInt8]? {
        rewrite(elements, in: bytes, replacement)
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    /// Visits every `<element>text</element>` of the named elements; returns the bytes with the
    /// visitor's replacements (escaped), or nil when it replaced nothing.
    private static func rewrite(_ elements: [String], in bytes: [UInt8], _ visit: (String, String) -> String?) -> [UInt8]? {
        let names = elements.map { Array($0.utf8) }
        var output: [UInt8] = []
        var copied = 0  // bytes[..<copied] are in output (once something was replaced)
        var replaced = false
        let end = bytes.count
        var i = 0
        while i < end {
            guard bytes[i] == UInt8(ascii: "<") else { i += 1; continue }
            let nameStart = i + 1
            guard let name = names.first(where: { matches($0, at: nameStart, in: bytes) && nameStart + $0.count < end
                    && bytes[nameStart + $0.count] == UInt8(ascii: ">") }) else { i += 1; continue }
            let contentStart = nameStart + name.count + 1
            // The element is simple when the first `<` after its start tag is its end tag.
            var close = contentStart
            while close < end && bytes[close] != UInt8(ascii: "<") { close += 1 }
            guard close + 2 + name.count < end, bytes[close + 1] == UInt8(ascii: "/"),
                  matches(name, at: close + 2, in: bytes), bytes[close + 2 + name.count] == UInt8(ascii: ">")
            else { i = contentStart; continue }
            var lower = contentStart, upper = close
            while lower < upper && isSpace(bytes[lower]) { lower += 1 }
            while upper > lower && isSpace(bytes[upper - 1]) { upper -= 1 }
            let element = String(decoding: name, as: UTF8.self)
            if let replacement = visit(element, String(decoding: bytes[lower..<upper], as: UTF8.self)) {
                if !replaced { output.reserveCapacity(bytes.count + 64); replaced = true }
                output += bytes[copied..<contentStart]
                output += XMLEscaping.text(replacement).utf8
                copied = close
            }
            i = close + 3 + name.count
        }
        guard replaced else { return nil }
        output += bytes[copied...]
        return output
    }

    private static func matches(_ name: [UInt8], at offset: Int, in bytes: [UInt8]) -> Bool {
        guard offset + name.count <= bytes.count else { return false }
        for k in 0..<name.count where bytes[offset + k] != name[k] { return false }
        return true
    }
}
