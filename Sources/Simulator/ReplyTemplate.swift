import NETCONF

/// A captured reply ready to be served: the payload bytes and the namespace declarations of its
/// original `rpc-reply`, so that each answer can carry the request's message-id while the data
/// stays byte-for-byte as captured.
public struct ReplyTemplate: Sendable {
    /// Namespace declarations copied from the captured root (`xmlns:junos="..."`).
    public let namespaceDeclarations: String
    /// What goes inside `<rpc-reply>`.
    public let inner: [UInt8]

    /// Prepares `bytes`, which may be a whole `<rpc-reply>` (plain or prefixed) or bare data.
    public init(bytes: [UInt8]) {
        var i = ReplyTemplate.skipProlog(bytes, from: 0)
        guard i < bytes.count, let nameEnd = ReplyTemplate.nameEnd(bytes, from: i + 1) else {
            namespaceDeclarations = ""
            inner = Array(bytes[min(i, bytes.count)...])
            return
        }
        let qualifiedName = Array(bytes[(i + 1)..<nameEnd])
        let local = qualifiedName.split(separator: 0x3A).last.map(Array.init) ?? qualifiedName
        guard local == Array("rpc-reply".utf8), let tagEnd = ReplyTemplate.tagEnd(bytes, from: nameEnd) else {
            namespaceDeclarations = ""
            inner = Array(bytes[i...])
            return
        }
        let attributes = String(decoding: bytes[nameEnd..<tagEnd], as: UTF8.self)
        namespaceDeclarations = ReplyTemplate.namespaceDeclarations(in: attributes)
        let selfClosing = tagEnd > 0 && bytes[tagEnd - 1] == 0x2F
        if selfClosing {
            inner = []
            return
        }
        i = tagEnd + 1
        let closing = Array("</".utf8) + qualifiedName
        var end = bytes.count - closing.count
        while end >= i {
            if bytes[end] == 0x3C && Array(bytes[end..<end + closing.count]) == closing { break }
            end -= 1
        }
        inner = end >= i ? Array(bytes[i..<end]) : Array(bytes[i...])
    }

    /// The reply for one request.
    public func reply(messageID: String?) -> [UInt8] {
        var head = "<rpc-reply xmlns=\"\(NETCONFNamespace.base)\""
        if !namespaceDeclarations.isEmpty { head += " " + namespaceDeclarations }
        if !namespaceDeclarations.contains("xmlns:junos=") {
            head += " xmlns:junos=\"http://xml.juniper.net/junos/*/junos\""
        }
        if let messageID { head += " message-id=\"\(messageID)\"" }
        head += ">"
        return Array(head.utf8) + inner + Array("</rpc-reply>".utf8)
    }

    static func skipProlog(_ bytes: [UInt8], from start: Int) -> Int {
        var i = start
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { i = max(i, 3) }
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { i += 1; continue }
            if b == 0x3C, i + 1 < bytes.count, bytes[i + 1] == 0x3F || bytes[i + 1] == 0x21 {
                // <?...?> or <!-- ... -->
                let terminator: [UInt8] = bytes[i + 1] == 0x3F ? Array("?>".utf8) : Array("-->".utf8)
                var j = i + 2
                while j + terminator.count <= bytes.count, Array(bytes[j..<j + terminator.count]) != terminator { j += 1 }
                i = j + terminator.count
                continue
            }
            return i
        }
        return i
    }

    static func nameEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var i = start
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 || b == 0x3E || b == 0x2F { return i }
            i += 1
        }
        return nil
    }

    /// The `>` ending a start tag, skipping quoted attribute values.
    static func tagEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var quote: UInt8?
        var i = start
        while i < bytes.count {
            let b = bytes[i]
            if let q = quote { if b == q { quote = nil } }
            else if b == 0x22 || b == 0x27 { quote = b }
            else if b == 0x3E { return i }
            i += 1
        }
        return nil
    }

    /// `xmlns:p="..."` declarations from an attribute list (the default namespace is replaced).
    static func namespaceDeclarations(in attributes: String) -> String {
        var result: [String] = []
        var rest = Substring(attributes)
        while let range = rest.range(of: "xmlns:") {
            let start = range.lowerBound
            guard let eq = rest[start...].firstIndex(of: "=") else { break }
            let afterEq = rest.index(after: eq)
            guard afterEq < rest.endIndex else { break }
            let quote = rest[afterEq]
            guard quote == "\"" || quote == "'",
                  let close = rest[rest.index(after: afterEq)...].firstIndex(of: quote) else { break }
            result.append(String(rest[start...close]))
            rest = rest[rest.index(after: close)...]
        }
        return result.joined(separator: " ")
    }
}
