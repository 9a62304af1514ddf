import CLibXML2

/// A replacement decided by a rewrite pass.
public enum XMLReplacement: Sendable {
    /// Leave the node as it is.
    case keep
    /// Replace the element's text children (or the attribute's value) with this text.
    case replace(String)
}

extension XMLDocument {
    /// Returns a copy of the document in which text and attribute values were replaced as the
    /// closures decide. The closures see elements of the copy; this document is never mutated.
    /// Used by secret redaction, which must change the exact XML that leaves the machine.
    /// `text` decides a leaf's text; `mixedText` each text between the child elements of an
    /// element that has some (whitespace alone is not offered); `comment` what each comment and
    /// processing instruction says, anywhere in the document. A replacement a comment or
    /// processing instruction cannot hold (`--`, a final `-`, `?>`) removes it.
    public func rewriting(
        text: (XMLElement) -> XMLReplacement,
        attribute: (XMLElement, XMLAttribute) -> XMLReplacement = { _, _ in .keep },
        mixedText: (XMLElement, String) -> XMLReplacement = { _, _ in .keep },
        comment: (String) -> XMLReplacement = { _ in .keep }
    ) -> XMLDocument {
        let result = XMLDocument(owning: xmlCopyDoc(doc, 1)!)
        result.rewriteInPlace(text: text, attribute: attribute, mixedText: mixedText, comment: comment)
        return result
    }

    /// Parses `bytes`, rewrites the document as the closures decide (as ``rewriting(text:attribute:mixedText:comment:)``)
    /// and returns it serialised. The rewrite happens in the only copy of the tree, which never
    /// leaves this call: one tree in memory instead of the two `rewriting` needs (large
    /// configurations run to gigabytes).
    public static func rewrite(
        bytes: some Collection<UInt8>, options: XMLParseOptions = .init(),
        text: (XMLElement) -> XMLReplacement,
        attribute: (XMLElement, XMLAttribute) -> XMLReplacement = { _, _ in .keep },
        mixedText: (XMLElement, String) -> XMLReplacement = { _, _ in .keep },
        comment: (String) -> XMLReplacement = { _ in .keep }
    ) throws(XMLError) -> [UInt8] {
        let document = try XMLDocument(bytes: bytes, options: options)
        document.rewriteInPlace(text: text, attribute: attribute, mixedText: mixedText, comment: comment)
        return document.serialized()
    }

    /// Only for documents nobody else holds yet (a fresh copy or parse).
    private func rewriteInPlace(text: (XMLElement) -> XMLReplacement, attribute: (XMLElement, XMLAttribute) -> XMLReplacement,
                                mixedText: (XMLElement, String) -> XMLReplacement, comment: (String) -> XMLReplacement) {
        let root = self.root
        /// Offers the non-element nodes from `firstChild` on, one level only (the walk below reaches
        /// every element, so every such node is offered once); text only when `mixedParent` holds it.
        func rewriteOtherNodes(from firstChild: xmlNodePtr?, mixedParent: XMLElement?) {
            var cursor = firstChild
            while let current = cursor {
                cursor = current.pointee.next
                let type = current.pointee.type
                let decision: XMLReplacement
                switch type {
                case XML_COMMENT_NODE, XML_PI_NODE:
                    decision = comment(current.pointee.content.map { String(cString: $0) } ?? "")
                case XML_TEXT_NODE, XML_CDATA_SECTION_NODE:
                    // A leaf's text went to `text`.
                    guard let mixedParent, let content = current.pointee.content, !Self.isWhitespace(content) else { continue }
                    decision = mixedText(mixedParent, String(cString: content))
                default:
                    continue
                }
                guard case let .replace(newText) = decision else { continue }
                let unfit = type == XML_COMMENT_NODE ? newText.contains("--") || newText.hasSuffix("-")
                    : type == XML_PI_NODE ? newText.contains("?>") : false
                if unfit {
                    xmlUnlinkNode(current)
                    xmlFreeNode(current)
                    continue
                }
                let bytes = Array(newText.utf8)
                bytes.withUnsafeBufferPointer { xmlNodeSetContentLen(current, $0.baseAddress, Int32($0.count)) }
            }
        }
        // Replacing a leaf's text children inside the walk is safe: the walk only follows elements.
        func visit(_ element: XMLElement) {
            let isLeaf = element.isLeaf
            if isLeaf, case let .replace(newText) = text(element) {
                element.replaceChildren(withText: newText)
            }
            rewriteOtherNodes(from: element.node.pointee.children, mixedParent: isLeaf ? nil : element)
            var cursor = element.node.pointee.properties
            while let attr = cursor {
                let prefix = attr.pointee.ns?.pointee.prefix.map { String(cString: $0) }
                let view = XMLAttribute(name: String(cString: attr.pointee.name), prefix: prefix,
                                        value: XMLElement.attributeValue(attr))
                if case let .replace(newValue) = attribute(element, view) {
                    xmlSetNsProp(element.node, attr.pointee.ns, attr.pointee.name, newValue)
                }
                cursor = attr.pointee.next
            }
        }
        visit(root)
        root.forEachDescendant(visit)
        // Comments and processing instructions before and after the root.
        rewriteOtherNodes(from: doc.pointee.children, mixedParent: nil)
    }

    private static func isWhitespace(_ content: UnsafePointer<xmlChar>) -> Bool {
        var i = 0
        while content[i] == 0x20 || content[i] == 0x0A || content[i] == 0x0D || content[i] == 0x09 { i += 1 }
        return content[i] == 0
    }
}

extension XMLElement {
    /// Only for documents being rewritten, before they are shared.
    fileprivate func replaceChildren(withText newText: String) {
        var cursor = node.pointee.children
        while let current = cursor {
            cursor = current.pointee.next
            xmlUnlinkNode(current)
            xmlFreeNode(current)
        }
        // xmlNewDocTextLen copies the bytes verbatim (no entity parsing); escaping happens on output.
        let bytes = Array(newText.utf8)
        let textNode = bytes.withUnsafeBufferPointer {
            xmlNewDocTextLen(document.doc, $0.baseAddress, Int32($0.count))
        }
        if let textNode { xmlAddChild(node, textNode) }
    }
}

/// Escaping for text and attribute values written into XML by hand (RPC requests, wrappers).
public enum XMLEscaping {
    public static func text(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    public static func attribute(_ s: String) -> String {
        text(s).replacingAll("\"", with: "&quot;").replacingAll("'", with: "&apos;")
    }
}

extension String {
    /// Foundation-free replace, so that XML does not need Foundation.
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for ch in self { if ch == target { out += replacement } else { out.append(ch) } }
        return out
    }
}
