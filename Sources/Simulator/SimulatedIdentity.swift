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
        let text = String(decoding: bytes, as: UTF8.self)
        return XMLTextRewriter.values(of: "serial-number", in: text).first
    }

    /// The host names of the software reply in order of appearance, each with the routing engine
    /// (`re-name`) it belongs to, when the reply has several.
    func softwareHostNames() -> [(hostName: String, routingEngine: String?)] {
        guard let bytes = replies["get-software-information"], bytes.count < rewriteLimit else { return [] }
        let text = String(decoding: bytes, as: UTF8.self)
        var result: [(String, String?)] = []
        var lastRE: String?
        for (element, value) in XMLTextRewriter.values(of: ["re-name", "host-name"], in: text) {
            if element == "re-name" { lastRE = value; continue }
            if !result.contains(where: { $0.0 == value }) { result.append((value, lastRE)) }
        }
        return result
    }

    /// The profile as the device `identity` serves it: every `host-name` (in every reply) and the
    /// chassis serial number replaced. A multi-RE reply keeps one name per routing engine: the
    /// first keeps the plain host name, the others get `-<re-name>` appended.
    public func personalized(for identity: SimulatedIdentity) -> DeviceProfile {
        var hostNames: [String: String] = [:]
        for (index, entry) in softwareHostNames().enumerated() {
            hostNames[entry.hostName] = index == 0 ? identity.hostName : "\(identity.hostName)-\(entry.routingEngine ?? String(index))"
        }
        let originalSerial = chassisSerialNumber
        var copy = self
        for (rpc, bytes) in replies where bytes.count < rewriteLimit {
            var text = String(decoding: bytes, as: UTF8.self)
            guard text.contains("host-name>") || (originalSerial != nil && text.contains(originalSerial!)) else { continue }
            text = XMLTextRewriter.replacingValues(of: ["host-name"], in: text) { hostNames[$0] ?? identity.hostName }
            if let originalSerial, let serial = identity.serialNumber {
                text = XMLTextRewriter.replacingValues(of: ["serial-number", "member-serial-number"], in: text) {
                    $0 == originalSerial ? serial : nil
                }
            }
            copy.replies[rpc] = Array(text.utf8)
        }
        return copy
    }
}

/// Finds and replaces the text of simple elements (`<name>text</name>`, no child elements) in
/// captured XML without re-serialising it, so every other byte stays as captured.
enum XMLTextRewriter {
    static func values(of element: String, in text: String) -> [String] {
        values(of: [element], in: text).map(\.value)
    }

    /// `(element, trimmed text)` of every occurrence of the named elements, in document order.
    static func values(of elements: [String], in text: String) -> [(element: String, value: String)] {
        var found: [(String, String)] = []
        _ = rewrite(elements, in: text) { element, value in
            found.append((element, value))
            return nil
        }
        return found
    }

    /// Replaces the text of the named elements where `replacement` returns a value.
    static func replacingValues(of elements: [String], in text: String, _ replacement: (String) -> String?) -> String {
        rewrite(elements, in: text) { _, value in replacement(value) }
    }

    private static func rewrite(_ elements: [String], in text: String, _ visit: (String, String) -> String?) -> String {
        var output = ""
        var rest = text[...]
        while let open = rest.firstRange(of: "<") {
            output += rest[..<open.lowerBound]
            let afterLT = rest[open.upperBound...]
            guard let element = elements.first(where: { afterLT.hasPrefix($0 + ">") }) else {
                output += "<"
                rest = afterLT
                continue
            }
            let contentStart = afterLT.index(afterLT.startIndex, offsetBy: element.count + 1)
            let content = afterLT[contentStart...]
            guard let close = content.firstRange(of: "</\(element)>"), !content[..<close.lowerBound].contains("<") else {
                output += "<"
                rest = afterLT
                continue
            }
            let raw = content[..<close.lowerBound]
            let value = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            output += "<\(element)>"
            if let replacement = visit(element, value) {
                output += XMLEscaping.text(replacement)
            } else {
                output += raw
            }
            output += "</\(element)>"
            rest = content[close.upperBound...]
        }
        output += rest
        return output
    }
}
