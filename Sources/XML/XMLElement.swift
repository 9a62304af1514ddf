import CLibXML2

/// An element of an ``XMLDocument``. Lookups are by local name and ignore namespaces, because
/// Junos changes namespace URIs by release (`.../junos/15.1F5/junos-chassis`) and some captures
/// drop or prefix them.
public struct XMLElement: @unchecked Sendable {
    /// Keeps the libxml2 tree alive as long as any element of it is in use.
    public let document: XMLDocument
    let node: xmlNodePtr

    init(document: XMLDocument, node: xmlNodePtr) {
        self.document = document
        self.node = node
    }

    /// The local name, without any prefix.
    public var name: String { String(cString: node.pointee.name) }

    /// The namespace prefix as written, if any.
    public var prefix: String? {
        guard let ns = node.pointee.ns, let p = ns.pointee.prefix else { return nil }
        return String(cString: p)
    }

    /// The namespace URI the element is in, if any (declared on it or inherited).
    public var namespaceURI: String? {
        guard let ns = node.pointee.ns, let href = ns.pointee.href else { return nil }
        return String(cString: href)
    }

    /// The 1-based source line of the start tag.
    public var line: Int { Int(xmlGetLineNo(node)) }

    /// Child elements, in document order.
    public var children: [XMLElement] {
        var result: [XMLElement] = []
        var cursor = node.pointee.children
        while let current = cursor {
            if current.pointee.type == XML_ELEMENT_NODE {
                result.append(XMLElement(document: document, node: current))
            }
            cursor = current.pointee.next
        }
        return result
    }

    /// Calls `body` for each child element in order, without building an array.
    public func forEachChild(_ body: (XMLElement) throws -> Void) rethrows {
        var cursor = node.pointee.children
        while let current = cursor {
            if current.pointee.type == XML_ELEMENT_NODE { try body(XMLElement(document: document, node: current)) }
            cursor = current.pointee.next
        }
    }

    /// The first child element with this local name.
    public func child(_ name: String) -> XMLElement? {
        var cursor = node.pointee.children
        while let current = cursor {
            if current.pointee.type == XML_ELEMENT_NODE, XMLElement.hasName(current, name) {
                return XMLElement(document: document, node: current)
            }
            cursor = current.pointee.next
        }
        return nil
    }

    /// All child elements with this local name.
    public func children(_ name: String) -> [XMLElement] {
        var result: [XMLElement] = []
        var cursor = node.pointee.children
        while let current = cursor {
            if current.pointee.type == XML_ELEMENT_NODE, XMLElement.hasName(current, name) {
                result.append(XMLElement(document: document, node: current))
            }
            cursor = current.pointee.next
        }
        return result
    }

    /// Follows a slash-separated path of local names: `child(path: "chassis/serial-number")`.
    public func child(path: String) -> XMLElement? {
        var current: XMLElement? = self
        for part in path.split(separator: "/") {
            current = current?.child(String(part))
            if current == nil { return nil }
        }
        return current
    }

    /// The trimmed text of the child at `path`, or nil when it is absent or empty.
    public func value(_ path: String) -> String? {
        // Most lookups are one level deep: skip splitting the path.
        if !path.utf8.contains(0x2F) { return child(path)?.value }
        return child(path: path)?.value
    }

    /// Every element below this one (not itself), depth first, in document order.
    public var descendants: [XMLElement] {
        var result: [XMLElement] = []
        forEachDescendant { result.append($0) }
        return result
    }

    /// Every descendant element with this local name, depth first.
    public func descendants(_ name: String) -> [XMLElement] {
        var result: [XMLElement] = []
        forEachDescendant { if XMLElement.hasName($0.node, name) { result.append($0) } }
        return result
    }

    /// The first descendant element with this local name, depth first.
    public func firstDescendant(_ name: String) -> XMLElement? {
        var stack: [xmlNodePtr] = []
        var cursor = node.pointee.children
        while true {
            while let current = cursor {
                if current.pointee.type == XML_ELEMENT_NODE {
                    if XMLElement.hasName(current, name) { return XMLElement(document: document, node: current) }
                    if let next = current.pointee.next { stack.append(next) }
                    cursor = current.pointee.children
                } else {
                    cursor = current.pointee.next
                }
            }
            guard let next = stack.popLast() else { return nil }
            cursor = next
        }
    }

    /// Calls `body` for every descendant element, depth first, without recursion.
    public func forEachDescendant(_ body: (XMLElement) throws -> Void) rethrows {
        var stack: [xmlNodePtr] = []
        var cursor = node.pointee.children
        while true {
            while let current = cursor {
                if current.pointee.type == XML_ELEMENT_NODE {
                    try body(XMLElement(document: document, node: current))
                    if let next = current.pointee.next { stack.append(next) }
                    cursor = current.pointee.children
                } else {
                    cursor = current.pointee.next
                }
            }
            guard let next = stack.popLast() else { return }
            cursor = next
        }
    }

    /// The element's own text (text and CDATA children, not comments or descendants), untrimmed.
    public var text: String {
        var result = ""
        var cursor = node.pointee.children
        while let current = cursor {
            let type = current.pointee.type
            if type == XML_TEXT_NODE || type == XML_CDATA_SECTION_NODE, let content = current.pointee.content {
                result += String(cString: content)
            }
            cursor = current.pointee.next
        }
        return result
    }

    /// The text of the element and all its descendants, untrimmed.
    public var textContent: String {
        var result = ""
        XMLElement.appendText(node, to: &result)
        return result
    }

    /// The own text with surrounding whitespace removed; nil when nothing is left.
    public var value: String? {
        // Fast path: one text child (the usual leaf), trimmed on its bytes without copying twice.
        if let only = node.pointee.children, only.pointee.next == nil,
           only.pointee.type == XML_TEXT_NODE || only.pointee.type == XML_CDATA_SECTION_NODE {
            guard let content = only.pointee.content else { return nil }
            return XMLElement.trimmedString(content)
        }
        let trimmed = text.trimmingCharacters(in: " \n\r\t")
        return trimmed.isEmpty ? nil : trimmed
    }

    /// A NUL-terminated libxml2 string without leading and trailing ASCII whitespace; nil if empty.
    static func trimmedString(_ content: UnsafePointer<xmlChar>) -> String? {
        var start = 0
        while content[start] == 0x20 || content[start] == 0x0A || content[start] == 0x0D || content[start] == 0x09 { start += 1 }
        if content[start] == 0 { return nil }
        var end = start
        var lastNonSpace = start
        while content[end] != 0 {
            let b = content[end]
            if b != 0x20 && b != 0x0A && b != 0x0D && b != 0x09 { lastNonSpace = end }
            end += 1
        }
        return String(decoding: UnsafeBufferPointer(start: content + start, count: lastNonSpace - start + 1), as: UTF8.self)
    }

    /// Whether the element's local name is `name`, without making a String of it.
    public func hasName(_ name: String) -> Bool {
        XMLElement.hasName(node, name)
    }

    /// True when the element has no child elements.
    public var isLeaf: Bool {
        var cursor = node.pointee.children
        while let current = cursor {
            if current.pointee.type == XML_ELEMENT_NODE { return false }
            cursor = current.pointee.next
        }
        return true
    }

    /// The attribute with this local name, whatever its prefix (`junos:style` and `style` alike).
    public func attribute(_ name: String) -> String? {
        var cursor = node.pointee.properties
        while let attr = cursor {
            if strcmpName(attr.pointee.name, name) { return XMLElement.attributeValue(attr) }
            cursor = attr.pointee.next
        }
        return nil
    }

    /// All attributes with their prefixes as written (namespace declarations are not attributes here).
    public var attributes: [XMLAttribute] {
        var result: [XMLAttribute] = []
        var cursor = node.pointee.properties
        while let attr = cursor {
            let prefix = attr.pointee.ns?.pointee.prefix.map { String(cString: $0) }
            result.append(XMLAttribute(name: String(cString: attr.pointee.name), prefix: prefix,
                                       value: XMLElement.attributeValue(attr)))
            cursor = attr.pointee.next
        }
        return result
    }

    /// Namespace declarations made on this element: (prefix or nil for the default, URI).
    public var namespaceDeclarations: [(prefix: String?, uri: String)] {
        var result: [(prefix: String?, uri: String)] = []
        var cursor = node.pointee.nsDef
        while let ns = cursor {
            result.append((ns.pointee.prefix.map { String(cString: $0) }, ns.pointee.href.map { String(cString: $0) } ?? ""))
            cursor = ns.pointee.next
        }
        return result
    }

    /// The parent element, if this is not the root.
    public var parent: XMLElement? {
        guard let p = node.pointee.parent, p.pointee.type == XML_ELEMENT_NODE else { return nil }
        return XMLElement(document: document, node: p)
    }

    /// Whether this element comes before `other` in document order (an ancestor comes before
    /// the elements inside it). Elements of different documents are never ordered.
    public func precedes(_ other: XMLElement) -> Bool {
        guard document === other.document, node != other.node else { return false }
        func chain(_ node: xmlNodePtr) -> [xmlNodePtr] {
            var result: [xmlNodePtr] = []
            var cursor: xmlNodePtr? = node
            while let current = cursor { result.append(current); cursor = current.pointee.parent }
            return result.reversed()
        }
        let mine = chain(node), theirs = chain(other.node)
        var depth = 0
        while depth < mine.count, depth < theirs.count, mine[depth] == theirs[depth] { depth += 1 }
        if depth == mine.count { return true }   // self is an ancestor of other
        if depth == theirs.count { return false } // other is an ancestor of self
        // Siblings under the common ancestor: is ours first?
        var cursor = mine[depth].pointee.next
        while let current = cursor {
            if current == theirs[depth] { return true }
            cursor = current.pointee.next
        }
        return false
    }

    /// Local names from the root down to this element, for messages: `rpc-reply/chassis-inventory/chassis`.
    public var path: String {
        var names: [String] = []
        var current: XMLElement? = self
        while let element = current {
            names.append(element.name)
            current = element.parent
        }
        return names.reversed().joined(separator: "/")
    }

    /// The element serialised as UTF-8, with the namespace declarations it needs from its ancestors.
    public func serialized() -> [UInt8] {
        guard let buffer = xmlBufferCreate() else { return [] }
        defer { xmlBufferFree(buffer) }
        // Copy into a scratch document so that inherited namespace declarations are emitted.
        guard let scratch = xmlNewDoc(nil) else { return [] }
        defer { xmlFreeDoc(scratch) }
        guard let copy = xmlDocCopyNode(node, scratch, 1) else { return [] }
        xmlDocSetRootElement(scratch, copy)
        xmlReconciliateNs(scratch, copy)
        let written = xmlNodeDump(buffer, scratch, copy, 0, 0)
        guard written >= 0, let content = xmlBufferContent(buffer) else { return [] }
        return Array(UnsafeBufferPointer(start: content, count: Int(xmlBufferLength(buffer))))
    }

    /// The serialised element as a String.
    public var xmlString: String { String(decoding: serialized(), as: UTF8.self) }

    static func hasName(_ node: xmlNodePtr, _ name: String) -> Bool {
        strcmpName(node.pointee.name, name)
    }

    static func attributeValue(_ attr: xmlAttrPtr) -> String {
        var result = ""
        var cursor = attr.pointee.children
        while let current = cursor {
            if let content = current.pointee.content { result += String(cString: content) }
            cursor = current.pointee.next
        }
        return result
    }

    static func appendText(_ node: xmlNodePtr, to result: inout String) {
        var cursor = node.pointee.children
        while let current = cursor {
            let type = current.pointee.type
            if type == XML_TEXT_NODE || type == XML_CDATA_SECTION_NODE, let content = current.pointee.content {
                result += String(cString: content)
            } else if type == XML_ELEMENT_NODE {
                appendText(current, to: &result)
            }
            cursor = current.pointee.next
        }
    }
}

/// Compares a libxml2 name with a Swift string without allocating.
@inline(__always)
func strcmpName(_ cName: UnsafePointer<xmlChar>?, _ name: String) -> Bool {
    guard let cName else { return false }
    var name = name
    return name.withUTF8 { utf8 in
        var i = 0
        while i < utf8.count {
            if cName[i] != utf8[i] { return false }
            i += 1
        }
        return cName[i] == 0
    }
}

/// An attribute as written on an element.
public struct XMLAttribute: Sendable, Equatable {
    public var name: String
    public var prefix: String?
    public var value: String
    public var qualifiedName: String { prefix.map { "\($0):\(name)" } ?? name }
}

extension XMLElement: CustomStringConvertible {
    public var description: String { "<\(prefix.map { "\($0):" } ?? "")\(name)> at line \(line)" }
}
