import XML

/// NETCONF namespace and capability URIs.
public enum NETCONFNamespace {
    public static let base = "urn:ietf:params:xml:ns:netconf:base:1.0"
    public static let base10 = "urn:ietf:params:netconf:base:1.0"
    public static let base11 = "urn:ietf:params:netconf:base:1.1"
}

/// A `<hello>` as received: capabilities and, from a server, the session id.
public struct Hello: Sendable, Equatable {
    public var capabilities: [String]
    public var sessionID: String?

    public init(capabilities: [String], sessionID: String? = nil) {
        self.capabilities = capabilities
        self.sessionID = sessionID
    }

    public init(document: XMLDocument) throws(NETCONFError) {
        let root = document.root
        guard root.name == "hello" else { throw .unexpectedMessage("expected <hello>, received <\(root.name)>") }
        capabilities = root.child("capabilities")?.children("capability").compactMap(\.value) ?? []
        sessionID = root.value("session-id")
        if capabilities.isEmpty { throw .unexpectedMessage("<hello> without capabilities") }
    }

    /// The framing both sides support: chunked when both offered base:1.1.
    public static func negotiatedFraming(local: [String], remote: [String]) -> FramingMode {
        local.contains(NETCONFNamespace.base11) && remote.contains(NETCONFNamespace.base11) ? .chunked : .endOfMessage
    }

    /// The hello this side sends.
    public func xml() -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<hello xmlns=\"\(NETCONFNamespace.base)\">\n  <capabilities>\n"
        for capability in capabilities {
            out += "    <capability>\(XMLEscaping.text(capability))</capability>\n"
        }
        out += "  </capabilities>\n"
        if let sessionID { out += "  <session-id>\(XMLEscaping.text(sessionID))</session-id>\n" }
        out += "</hello>\n"
        return out
    }
}

/// One RPC to send. `body` is the operation element; the session wraps it in `<rpc message-id>`.
public struct RPCRequest: Sendable, Equatable, CustomStringConvertible {
    /// A short name for logs and errors (`get-chassis-inventory`, `command "show version"`).
    public var name: String
    /// The operation element as XML text.
    public var body: String

    public init(name: String, body: String) {
        self.name = name
        self.body = body
    }

    /// A Junos RPC by name: `get-software-information` → `<get-software-information/>`.
    public static func junos(_ name: String) -> RPCRequest {
        RPCRequest(name: name, body: "<\(name)/>")
    }

    /// An operation given as an XML element, named after its root element.
    public static func element(_ xml: String) throws(NETCONFError) -> RPCRequest {
        let document: XMLDocument
        do { document = try XMLDocument(string: xml) } catch { throw .invalidRequest("\(xml): \(error)") }
        return RPCRequest(name: document.root.name, body: xml.trimmed)
    }

    /// A request given on the command line: an XML element if it starts with `<`, else an RPC name.
    public static func parse(_ text: String) throws(NETCONFError) -> RPCRequest {
        let t = text.trimmed
        if t.hasPrefix("<") { return try element(t) }
        guard !t.isEmpty, t.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw .invalidRequest("\"\(text)\" is neither an RPC name (such as get-software-information) nor an XML element")
        }
        return junos(t)
    }

    /// A Junos CLI command (`show chassis hardware`) with its output as XML (or `text`).
    public static func command(_ command: String, format: String = "xml") -> RPCRequest {
        RPCRequest(name: "command \"\(command)\"",
                   body: "<command format=\"\(XMLEscaping.attribute(format))\">\(XMLEscaping.text(command))</command>")
    }

    /// `<get-configuration>` in XML (or `text`, `set`) format, committed configuration.
    public static func junosConfiguration(format: String = "xml") -> RPCRequest {
        RPCRequest(name: "get-configuration",
                   body: "<get-configuration database=\"committed\" format=\"\(XMLEscaping.attribute(format))\"/>")
    }

    public static let closeSession = RPCRequest(name: "close-session", body: "<close-session/>")

    public var description: String { name }
}

/// An `<rpc-error>` as RFC 6241 section 4.3 defines it.
public struct RPCError: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }
    public var type: String?
    public var tag: String?
    public var severity: Severity
    public var path: String?
    public var message: String?
    /// `<error-info>` children as name → text (bad-element, session-id, ...).
    public var info: [String: String]

    public init(element: XMLElement) {
        type = element.value("error-type")
        tag = element.value("error-tag")
        severity = element.value("error-severity") == "warning" ? .warning : .error
        path = element.value("error-path")
        message = element.value("error-message").map(\.collapsedWhitespace)
        var info: [String: String] = [:]
        for child in element.child("error-info")?.children ?? [] {
            info[child.name] = child.value ?? ""
        }
        self.info = info
    }

    public var description: String {
        var text = message ?? tag ?? "unspecified error"
        if let bad = info["bad-element"] { text += " (bad element: \(bad))" }
        if let tag, message != nil { text += " [\(type.map { "\($0) " } ?? "")\(tag)]" }
        return text
    }
}

/// A reply to one RPC, matched by message-id. Warnings (Junos sends them as `rpc-error` with
/// severity `warning` next to data) are kept and do not make it fail.
public struct RPCReply: Sendable {
    public var messageID: String?
    /// The reply exactly as received (one framed message).
    public var raw: [UInt8]
    /// The parsed reply.
    public var document: XMLDocument
    /// `rpc-error` elements directly under `rpc-reply`.
    public var rpcErrors: [RPCError]
    /// The bytes of ``ReplyMemoryBudget`` this reply's tree holds (large replies only): released
    /// when the last copy of the reply goes, or kept longer by whoever takes it.
    public var memory: ReplyMemoryReservation?

    public var errors: [RPCError] { rpcErrors.filter { $0.severity == .error } }
    public var warnings: [RPCError] { rpcErrors.filter { $0.severity == .warning } }
    /// True for `<ok/>`.
    public var isOK: Bool { document.root.child("ok") != nil }
    /// Children of `rpc-reply` other than errors: the data.
    public var data: [XMLElement] { document.root.children.filter { $0.name != "rpc-error" && $0.name != "ok" } }

    public init(raw: [UInt8], document: XMLDocument) {
        self.raw = raw
        self.document = document
        messageID = document.root.attribute("message-id")
        rpcErrors = document.root.children("rpc-error").map(RPCError.init(element:))
    }
}

extension String {
    var trimmed: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }

    var collapsedWhitespace: String {
        split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }
}
