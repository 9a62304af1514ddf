import XML

/// An error or warning a device put into a reply: NETCONF `<rpc-error>` or Junos `<xnm:error>` /
/// `<xnm:warning>`. Junos sends warnings next to data; they never make a reply fail.
public struct DeviceMessage: Codable, Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Codable, Sendable { case error, warning }
    public var severity: Severity
    /// `error-type` (transport, rpc, protocol, application), when given.
    public var type: String?
    /// `error-tag` (operation-failed, ...), when given.
    public var tag: String?
    public var path: String?
    public var message: String
    /// `bad-element` or `statement` from `error-info`/xnm, when given.
    public var badElement: String?
    /// The routing engine or member whose section carried it (`re0`, `node1`, `fpc2`).
    public var routingEngine: String?

    public init(severity: Severity, type: String? = nil, tag: String? = nil, path: String? = nil,
                message: String, badElement: String? = nil, routingEngine: String? = nil) {
        self.severity = severity
        self.type = type
        self.tag = tag
        self.path = path
        self.message = message
        self.badElement = badElement
        self.routingEngine = routingEngine
    }

    /// Reads `<rpc-error>`, `<xnm:error>` or `<xnm:warning>`.
    public init(element: XMLElement, routingEngine: String? = nil) {
        let isWarning = element.name == "warning" || element.value("error-severity") == "warning"
        self.severity = isWarning ? .warning : .error
        self.type = element.value("error-type")
        self.tag = element.value("error-tag")
        self.path = element.value("error-path") ?? element.value("edit-path")
        let info = element.child("error-info")
        self.badElement = info?.value("bad-element") ?? element.value("statement") ?? element.value("bad-element")
        // A bare `<error>text</error>` (no error-message child) carries its message as own text.
        let ownText = element.isLeaf ? element.value : nil
        let text = element.value("error-message") ?? element.value("message") ?? ownText ?? tag ?? "unspecified error"
        self.message = text.collapsingWhitespace
        self.routingEngine = routingEngine
    }

    public var description: String {
        var parts: [String] = []
        if let routingEngine { parts.append("\(routingEngine):") }
        parts.append(message)
        if let badElement { parts.append("(bad element: \(badElement))") }
        if let tag, tag != message { parts.append("[\(tag)]") }
        return parts.joined(separator: " ")
    }

    static func isMessageElement(_ e: XMLElement) -> Bool {
        e.name == "rpc-error" || ((e.name == "error" || e.name == "warning") && e.prefix == "xnm")
            || ((e.name == "error" || e.name == "warning") && (e.namespaceURI?.contains("/xnm") ?? false))
            || isBareError(e)
    }

    /// `<error>` without the xnm prefix or namespace, as some devices and tools write it
    /// (`<error>Some error message.</error>` in place of data). No Junos data element is named
    /// `error`, so at reply level it can only be an error.
    static func isBareError(_ e: XMLElement) -> Bool {
        e.name == "error" && (e.namespaceURI == nil || e.namespaceURI?.contains("netconf") == true)
    }
}

/// One section of a reply: the data element for one routing engine, VC member or cluster node.
public struct ReplySection: Sendable {
    /// `re-name` of the multi-routing-engine item (`re0`, `node1`, `member0-re0`, `fpc2`, `localre`),
    /// or nil when the reply was not wrapped or the item carried no name.
    public var routingEngine: String?
    /// The data element (for example `<software-information>`).
    public var element: XMLElement
}

/// A Junos RPC reply taken apart: the `rpc-reply` wrapper (plain, prefixed, or absent) removed,
/// multi-routing-engine wrappers unwrapped, and errors, warnings and `<output>` text set aside.
public struct JunosReply: Sendable {
    public let document: XMLDocument
    /// Top-level elements inside `rpc-reply` (or the root itself when there is no wrapper),
    /// without errors, `<output>`, `<cli>` banners and multi-RE wrappers.
    public private(set) var payload: [XMLElement] = []
    /// Data sections, one per routing engine / member / node where the reply was wrapped.
    public private(set) var sections: [ReplySection] = []
    /// Errors and warnings anywhere at the top or section level.
    public private(set) var messages: [DeviceMessage] = []
    /// `<output>` text (Junos puts CLI text there when it has no XML for a request).
    public private(set) var output: [String] = []

    public var errors: [DeviceMessage] { messages.filter { $0.severity == .error } }
    public var warnings: [DeviceMessage] { messages.filter { $0.severity == .warning } }

    public init(document: XMLDocument) {
        self.document = document
        var top = document.root
        if top.name == "rpc-reply" {
            take(children: top.children, routingEngine: nil)
        } else {
            // A capture without the wrapper: the root is the data (or the error) itself.
            top = document.root
            take(children: [top], routingEngine: nil)
        }
    }

    public init(bytes: some Collection<UInt8>) throws(XMLError) {
        self.init(document: try XMLDocument(bytes: bytes))
    }

    private mutating func take(children: [XMLElement], routingEngine: String?) {
        for child in children {
            if DeviceMessage.isMessageElement(child) {
                messages.append(DeviceMessage(element: child, routingEngine: routingEngine))
            } else if child.name == "output" {
                guard let text = child.value else { continue }
                output.append(text)
                // One RE answering with text while the others give data ("This command can only
                // be used on the master routing engine"): say so beside the data, do not drop it.
                if let routingEngine {
                    messages.append(DeviceMessage(severity: .warning, message: text.collapsingWhitespace,
                                                  routingEngine: routingEngine))
                }
            } else if child.name == "cli" || child.name == "re-name" {
                continue
            } else if child.name == "multi-routing-engine-results" {
                // Items, and anything a device put directly beside them (an error, stray data).
                take(children: child.children, routingEngine: routingEngine)
            } else if child.name == "multi-routing-engine-item" {
                take(children: child.children, routingEngine: child.value("re-name"))
            } else if child.name == "data", child.namespaceURI == nil || child.namespaceURI == "urn:ietf:params:xml:ns:netconf:base:1.0" {
                // A standard NETCONF <get-config> or <get> reply wraps the data (<configuration>) in <data>.
                take(children: child.children, routingEngine: routingEngine)
            } else {
                if child.name.hasSuffix("-results") { takeMessages(inResults: child, routingEngine: routingEngine) }
                if routingEngine == nil { payload.append(child) }
                sections.append(ReplySection(routingEngine: routingEngine, element: child))
            }
        }
    }

    /// Results elements (`<commit-results>`, `<load-configuration-results>`) carry their
    /// `<xnm:error>`s inside, directly or, on dual-RE and cluster commits, per
    /// `<routing-engine><name>re0</name>...`; a reply with only those is an error reply.
    private mutating func takeMessages(inResults results: XMLElement, routingEngine: String?) {
        for nested in results.children {
            if DeviceMessage.isMessageElement(nested) {
                messages.append(DeviceMessage(element: nested, routingEngine: routingEngine))
            } else if nested.name == "routing-engine" {
                let name = nested.value("name") ?? routingEngine
                for inner in nested.children where DeviceMessage.isMessageElement(inner) {
                    messages.append(DeviceMessage(element: inner, routingEngine: name))
                }
            }
        }
    }

    /// The sections whose data element has one of these names (the first name is the usual one).
    public func sections(named names: String...) -> [ReplySection] {
        sections.filter { names.contains($0.element.name) }
    }

    /// The root name of the first data section, used to detect which RPC a reply answers.
    public var dataRootName: String? { sections.first?.element.name }
}

extension String {
    /// Runs of whitespace (newlines, tabs) folded into one space, ends trimmed.
    public var collapsingWhitespace: String {
        // Most values have nothing to fold: check the bytes before splitting.
        var previousSpace = true
        var needsWork = false
        for b in utf8 {
            let isSpace = b == 0x20 || b == 0x0A || b == 0x09 || b == 0x0D
            if isSpace && (previousSpace || b != 0x20) { needsWork = true; break }
            previousSpace = isSpace
        }
        if !needsWork && !previousSpace { return self }
        return split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }).joined(separator: " ")
    }
}
