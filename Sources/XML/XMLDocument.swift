import CLibXML2

/// Why an XML document was refused.
public enum XMLError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The bytes are not well-formed XML; line and column are 1-based.
    case malformed(line: Int, column: Int, message: String)
    /// The document declares a DOCTYPE. NETCONF replies never need one, and refusing it
    /// closes the door on entity expansion (billion laughs) and external entities.
    case doctypeRefused
    /// There was nothing but whitespace.
    case empty

    public var description: String {
        switch self {
        case let .malformed(line, column, message):
            return "not well-formed XML at line \(line), column \(column): \(message)"
        case .doctypeRefused:
            return "XML with a DOCTYPE declaration is refused (entity expansion and external entities are never loaded)"
        case .empty:
            return "empty document: no XML element found"
        }
    }
}

/// Options for ``XMLDocument/init(bytes:options:)``.
public struct XMLParseOptions: Sendable {
    /// Keep whitespace-only text nodes (needed to re-serialise a document close to its original form).
    public var preserveWhitespace: Bool
    /// Store each distinct name once in the document's dictionary (libxml2's default). Off only
    /// in tests, to exercise the byte comparisons that edited trees need.
    var internNames = true
    public init(preserveWhitespace: Bool = false) {
        self.preserveWhitespace = preserveWhitespace
    }
}

private let libxml2Initialised: Void = {
    xmlInitParser()
}()

/// A parsed, immutable libxml2 document. It owns the `xmlDoc` and frees it in `deinit`;
/// ``XMLElement`` values keep it alive. Reading from several threads is safe because nothing mutates it.
public final class XMLDocument: @unchecked Sendable {
    let doc: xmlDocPtr

    /// Parses `bytes` with the network, DTD loading and entity substitution all off.
    public convenience init(bytes: some Collection<UInt8>, options: XMLParseOptions = .init()) throws(XMLError) {
        func attempt(_ buffer: UnsafeRawBufferPointer) -> Result<xmlDocPtr, XMLError> {
            do { return .success(try XMLDocument.parse(buffer, options: options)) } catch { return .failure(error) }
        }
        let result = bytes.withContiguousStorageIfAvailable { attempt(UnsafeRawBufferPointer($0)) }
            ?? Array(bytes).withUnsafeBytes { attempt($0) }
        self.init(owning: try result.get())
    }

    public convenience init(string: String, options: XMLParseOptions = .init()) throws(XMLError) {
        try self.init(bytes: Array(string.utf8), options: options)
    }

    init(owning doc: xmlDocPtr) {
        self.doc = doc
    }

    deinit {
        xmlFreeDoc(doc)
    }

    /// The root element.
    public var root: XMLElement {
        // parse() refuses documents without a root element.
        XMLElement(document: self, node: xmlDocGetRootElement(doc)!)
    }

    /// The whole document serialised as UTF-8 (without an XML declaration).
    public func serialized() -> [UInt8] {
        // The root has no ancestors whose namespace declarations it could need: dump it in place
        // rather than through the copy `XMLElement.serialized` makes (a second tree, for a large
        // configuration gigabytes).
        guard let buffer = xmlBufferCreate() else { return [] }
        defer { xmlBufferFree(buffer) }
        let root = xmlDocGetRootElement(doc)!
        let written = xmlNodeDump(buffer, doc, root, 0, 0)
        guard written >= 0, let content = xmlBufferContent(buffer) else { return [] }
        return Array(UnsafeBufferPointer(start: content, count: Int(xmlBufferLength(buffer))))
    }

    static func parse(_ buffer: UnsafeRawBufferPointer, options: XMLParseOptions) throws(XMLError) -> xmlDocPtr {
        _ = libxml2Initialised
        let prolog = Prolog.scan(buffer)
        if prolog == .doctype { throw .doctypeRefused }
        if prolog == .empty { throw .empty }
        guard let ctxt = xmlNewParserCtxt() else {
            throw .malformed(line: 0, column: 0, message: "libxml2 could not allocate a parser")
        }
        defer { xmlFreeParserCtxt(ctxt) }
        var flags = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOERROR.rawValue | XML_PARSE_NOWARNING.rawValue
            | XML_PARSE_NOCDATA.rawValue | XML_PARSE_HUGE.rawValue | XML_PARSE_COMPACT.rawValue)
        if !options.preserveWhitespace { flags |= Int32(XML_PARSE_NOBLANKS.rawValue) }
        if !options.internNames { flags |= Int32(XML_PARSE_NODICT.rawValue) }
        let base = buffer.baseAddress?.assumingMemoryBound(to: CChar.self)
        guard buffer.count <= Int(Int32.max) else {
            throw .malformed(line: 0, column: 0, message: "document larger than 2 GiB")
        }
        let doc = xmlCtxtReadMemory(ctxt, base, Int32(buffer.count), "reply.xml", nil, flags)
        let wellFormed = ctxt.pointee.wellFormed != 0
        if doc == nil || !wellFormed {
            if let doc { xmlFreeDoc(doc) }
            if let error = xmlCtxtGetLastError(ctxt), error.pointee.code != 0 {
                let message = error.pointee.message.map { String(cString: $0) }?
                    .trimmingCharacters(in: " \n\t") ?? "parse error"
                throw .malformed(line: Int(error.pointee.line), column: Int(error.pointee.int2), message: message)
            }
            throw .malformed(line: 0, column: 0, message: "parse error")
        }
        guard let doc else { throw .empty }
        if doc.pointee.intSubset != nil || doc.pointee.extSubset != nil {
            xmlFreeDoc(doc)
            throw .doctypeRefused
        }
        if xmlDocGetRootElement(doc) == nil {
            xmlFreeDoc(doc)
            throw .empty
        }
        return doc
    }
}

/// What precedes the root element: a DOCTYPE is refused before libxml2 sees it.
enum Prolog: Equatable {
    case element, doctype, empty

    static func scan(_ buffer: UnsafeRawBufferPointer) -> Prolog {
        var i = 0
        let n = buffer.count
        // UTF-8 byte order mark.
        if n >= 3, buffer[0] == 0xEF, buffer[1] == 0xBB, buffer[2] == 0xBF { i = 3 }
        func starts(_ s: StaticString, at j: Int) -> Bool {
            let count = s.utf8CodeUnitCount
            guard j + count <= n else { return false }
            for k in 0..<count where buffer[j + k] != s.utf8Start[k] { return false }
            return true
        }
        func skip(past terminator: StaticString, from j: Int) -> Int {
            var j = j
            while j < n {
                if starts(terminator, at: j) { return j + terminator.utf8CodeUnitCount }
                j += 1
            }
            return n
        }
        while i < n {
            let byte = buffer[i]
            if byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { i += 1; continue }
            if starts("<?", at: i) { i = skip(past: "?>", from: i + 2); continue }
            if starts("<!--", at: i) { i = skip(past: "-->", from: i + 4); continue }
            if starts("<!", at: i) { return .doctype }
            return .element
        }
        return .empty
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set.unicodeScalars)
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !chars.contains($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !chars.contains($0) })!
        return String(scalars[first...last])
    }
}
