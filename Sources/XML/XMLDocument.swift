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
    /// The document is not UTF-8 (a UTF-16 or UTF-32 byte order mark or layout). NETCONF
    /// messages are UTF-8 (RFC 6241 section 4.1): anything else is refused before parsing.
    case notUTF8(encoding: String)
    /// Elements are nested deeper than ``XMLLimits/maximumDepth`` (line of the element).
    case tooDeep(limit: Int, line: Int)
    /// The document is larger than ``XMLParseOptions/maximumSize``.
    case tooLarge(size: Int, limit: Int)
    /// One text node is larger than libxml2's 10 MB limit for a single text node.
    case textTooLarge(line: Int)
    /// One element carries more than ``XMLLimits/maximumAttributes`` attributes and namespace
    /// declarations (libxml2's duplicate check is quadratic in them).
    case tooManyAttributes(limit: Int, line: Int)
    /// More elements than ``XMLLimits/maximumElements(forSize:)`` allows for the document's size:
    /// a tree of that many nodes costs far more memory than the bytes suggest.
    case tooManyElements(limit: Int, size: Int)

    public var description: String {
        switch self {
        case let .malformed(line, column, message):
            return "not well-formed XML at line \(line), column \(column): \(message)"
        case .doctypeRefused:
            return "XML with a DOCTYPE declaration is refused (entity expansion and external entities are never loaded)"
        case .empty:
            return "empty document: no XML element found"
        case let .notUTF8(encoding):
            return "XML in \(encoding) is refused: NETCONF messages are UTF-8 (RFC 6241)"
        case let .tooDeep(limit, line):
            return "XML nested deeper than \(limit) elements (at line \(line)) is refused: no Junos reply comes near that depth"
        case let .tooLarge(size, limit):
            return "XML document of \(size) bytes is larger than the limit of \(limit) bytes"
        case let .textTooLarge(line):
            return "XML text node at line \(line) is larger than 10 MB (libxml2's limit for one text node); collect configurations in XML, not as text"
        case let .tooManyAttributes(limit, line):
            return "XML element at line \(line) has more than \(limit) attributes and namespace declarations: refused (no Junos reply comes near; parsing them costs time quadratic in their number)"
        case let .tooManyElements(limit, size):
            return "XML document of \(size) bytes holds more than \(limit) elements: refused (its tree would take many times its size in memory; real replies hold an element per 23 bytes or more)"
        }
    }
}

/// Limits every parse enforces. None comes near a real Junos reply: the largest real reply we
/// know is 133 KB and 20 elements deep; a 100 MB configuration in XML is well inside them.
public enum XMLLimits {
    /// Deepest element nesting accepted. Walks over parsed trees may recurse: this cap (checked
    /// by the parser before an element is created) bounds their depth. libxml2 itself refuses
    /// more than 256 without `XML_PARSE_HUGE`, with a less helpful message.
    public static let maximumDepth = 200
    /// Default largest document, for callers that do not set their own (NETCONF sets the
    /// message limit, which is lower).
    public static let defaultMaximumSize = 1 << 30
    /// Most attributes and namespace declarations on one element. Junos puts a handful on its
    /// roots (`xmlns`, `xmlns:junos`, `junos:changed-seconds`, `message-id`); the cap is checked
    /// on the bytes before libxml2 runs, since its duplicate check is quadratic in them.
    public static let maximumAttributes = 256
    /// Most elements a document of `size` bytes may hold: one per 12 bytes, and at least
    /// 100,000. Each element costs libxml2 over a hundred bytes (and its text node as many
    /// again): a document of bare `<x/>` elements built a tree 35 times its size. Real replies
    /// spend 23 bytes or more on an element even without indentation (the largest fixtures:
    /// 23-51 bytes compact, 43-76 as sent).
    public static func maximumElements(forSize size: Int) -> Int { max(100_000, size / 12) }
}

/// Options for ``XMLDocument/init(bytes:options:)``.
public struct XMLParseOptions: Sendable {
    /// Keep whitespace-only text nodes (needed to re-serialise a document close to its original form).
    public var preserveWhitespace: Bool
    /// Store each distinct name once in the document's dictionary (libxml2's default). Off only
    /// in tests, to exercise the byte comparisons that edited trees need.
    var internNames = true
    /// Largest document accepted, in bytes.
    public var maximumSize: Int
    public init(preserveWhitespace: Bool = false, maximumSize: Int = XMLLimits.defaultMaximumSize) {
        self.preserveWhitespace = preserveWhitespace
        self.maximumSize = maximumSize
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

    /// `scansProlog` is off only in tests of the parser hooks behind the byte scan.
    static func parse(_ buffer: UnsafeRawBufferPointer, options: XMLParseOptions, scansProlog: Bool = true) throws(XMLError) -> xmlDocPtr {
        _ = libxml2Initialised
        guard buffer.count <= options.maximumSize, buffer.count <= Int(Int32.max) else {
            throw .tooLarge(size: buffer.count, limit: min(options.maximumSize, Int(Int32.max)))
        }
        if let encoding = Prolog.nonUTF8Encoding(buffer) { throw .notUTF8(encoding: encoding) }
        let prolog = scansProlog ? Prolog.scan(buffer) : .element
        if prolog == .doctype { throw .doctypeRefused }
        if prolog == .empty { throw .empty }
        if let line = AttributeScan.firstElementOverLimit(buffer, limit: XMLLimits.maximumAttributes) {
            throw .tooManyAttributes(limit: XMLLimits.maximumAttributes, line: line)
        }
        // Whitespace before an XML declaration (a message that starts "\n<?xml", as scrapli and
        // some devices send after the previous delimiter) is not XML, but nobody means anything by it.
        let buffer = Prolog.trimmingWhitespaceBeforeDeclaration(buffer)
        guard let ctxt = xmlNewParserCtxt() else {
            throw .malformed(line: 0, column: 0, message: "libxml2 could not allocate a parser")
        }
        defer { xmlFreeParserCtxt(ctxt) }
        // No XML_PARSE_HUGE: it lifts libxml2's entity-amplification, depth and text-node limits.
        // The encoding is forced to UTF-8 and declarations of another are ignored, so the
        // checks above see the bytes libxml2 parses.
        var flags = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOERROR.rawValue | XML_PARSE_NOWARNING.rawValue
            | XML_PARSE_NOCDATA.rawValue | XML_PARSE_COMPACT.rawValue | XML_PARSE_IGNORE_ENC.rawValue)
        if !options.preserveWhitespace { flags |= Int32(XML_PARSE_NOBLANKS.rawValue) }
        if !options.internNames { flags |= Int32(XML_PARSE_NODICT.rawValue) }
        var guardState = ParseGuard(maximumElements: XMLLimits.maximumElements(forSize: buffer.count))
        let doc: xmlDocPtr? = withUnsafeMutablePointer(to: &guardState) { state in
            ParseGuard.install(on: ctxt, state: state)
            let base = buffer.baseAddress?.assumingMemoryBound(to: CChar.self)
            return xmlCtxtReadMemory(ctxt, base, Int32(buffer.count), "reply.xml", "UTF-8", flags)
        }
        let wellFormed = ctxt.pointee.wellFormed != 0
        if let violation = guardState.violation {
            if let doc { xmlFreeDoc(doc) }
            switch violation {
            case .doctype: throw .doctypeRefused
            case let .depth(line): throw .tooDeep(limit: XMLLimits.maximumDepth, line: line)
            case .elements: throw .tooManyElements(limit: guardState.maximumElements, size: buffer.count)
            }
        }
        if doc == nil || !wellFormed {
            if let doc { xmlFreeDoc(doc) }
            if let error = xmlCtxtGetLastError(ctxt), error.pointee.code != 0 {
                let message = error.pointee.message.map { String(cString: $0) }?
                    .trimmingCharacters(in: " \n\t") ?? "parse error"
                if message.contains("huge text node") || message.contains("Huge input lookup") { throw .textTooLarge(line: Int(error.pointee.line)) }
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

/// SAX hooks that stop libxml2 the moment a document goes past a limit, before it builds or
/// expands anything: a DOCTYPE (in whatever encoding or prolog the byte scan missed) and
/// nesting beyond ``XMLLimits/maximumDepth``. The state lives in the parser context's
/// `_private`, which libxml2 leaves to its user.
struct ParseGuard {
    enum Violation { case doctype, depth(line: Int), elements }
    var violation: Violation?
    /// Elements allowed, and seen so far.
    var maximumElements: Int
    var elements = 0

    init(maximumElements: Int = .max) { self.maximumElements = maximumElements }

    static func install(on ctxt: xmlParserCtxtPtr, state: UnsafeMutablePointer<ParseGuard>) {
        ctxt.pointee._private = UnsafeMutableRawPointer(state)
        guard let sax = ctxt.pointee.sax else { return }
        sax.pointee.internalSubset = { ctx, _, _, _ in ParseGuard.stop(ctx, .doctype) }
        sax.pointee.externalSubset = { ctx, _, _, _ in ParseGuard.stop(ctx, .doctype) }
        sax.pointee.entityDecl = { ctx, _, _, _, _, _ in ParseGuard.stop(ctx, .doctype) }
        sax.pointee.startElementNs = { ctx, localname, prefix, uri, nbNamespaces, namespaces, nbAttributes, nbDefaulted, attributes in
            guard let ctx else { return }
            let ctxt = ctx.assumingMemoryBound(to: xmlParserCtxt.self)
            if Int(ctxt.pointee.nodeNr) >= XMLLimits.maximumDepth {
                ParseGuard.stop(ctx, .depth(line: Int(ctxt.pointee.input?.pointee.line ?? 0)))
                return
            }
            if let state = ctxt.pointee._private?.assumingMemoryBound(to: ParseGuard.self) {
                state.pointee.elements += 1
                if state.pointee.elements > state.pointee.maximumElements {
                    ParseGuard.stop(ctx, .elements)
                    return
                }
            }
            xmlSAX2StartElementNs(ctx, localname, prefix, uri, nbNamespaces, namespaces, nbAttributes, nbDefaulted, attributes)
        }
    }

    private static func stop(_ ctx: UnsafeMutableRawPointer?, _ violation: Violation) {
        guard let ctx else { return }
        let ctxt = ctx.assumingMemoryBound(to: xmlParserCtxt.self)
        if let state = ctxt.pointee._private?.assumingMemoryBound(to: ParseGuard.self), state.pointee.violation == nil {
            state.pointee.violation = violation
        }
        xmlStopParser(ctxt)
    }
}

/// Counts the attributes and namespace declarations of each start tag on the bytes, before
/// libxml2 (whose duplicate-attribute check is quadratic: 100,000 on one element took 11 s).
/// One pass: `=` outside quotes inside `<name ...>`; comments, CDATA and processing
/// instructions are skipped whole.
enum AttributeScan {
    /// The line of the first element with more than `limit`; nil when none has.
    static func firstElementOverLimit(_ buffer: UnsafeRawBufferPointer, limit: Int) -> Int? {
        let n = buffer.count
        // Fewer `=` than the limit in the whole document: nothing to look at.
        var equals = 0
        for byte in buffer where byte == UInt8(ascii: "=") { equals += 1 }
        guard equals > limit else { return nil }
        let lt = UInt8(ascii: "<"), gt = UInt8(ascii: ">"), eq = UInt8(ascii: "="), nl = UInt8(ascii: "\n")
        var line = 1, i = 0
        func skip(to terminator: [UInt8], from start: Int) -> Int {
            var j = start
            while j + terminator.count <= n {
                if buffer[j] == nl { line += 1 }
                var match = true
                for k in 0 ..< terminator.count where buffer[j + k] != terminator[k] { match = false; break }
                if match { return j + terminator.count }
                j += 1
            }
            return n
        }
        while i < n {
            let byte = buffer[i]
            if byte == nl { line += 1 }
            guard byte == lt, i + 1 < n else { i += 1; continue }
            let next = buffer[i + 1]
            if next == UInt8(ascii: "!") {
                // From after the opening: `<!--->` is not a closed comment (libxml2 reads on).
                if i + 3 < n && buffer[i + 2] == UInt8(ascii: "-") {
                    i = skip(to: Array("-->".utf8), from: min(n, i + 4))
                } else if i + 2 < n && buffer[i + 2] == UInt8(ascii: "[") {
                    i = skip(to: Array("]]>".utf8), from: min(n, i + 9))
                } else {
                    i = skip(to: [gt], from: i + 2)
                }
                continue
            }
            if next == UInt8(ascii: "?") { i = skip(to: Array("?>".utf8), from: i + 2); continue }
            if next == UInt8(ascii: "/") { i += 2; continue }
            // A start tag: count `=` outside quoted values up to its `>`.
            let tagLine = line
            var count = 0, j = i + 1
            var quote: UInt8 = 0
            while j < n {
                let c = buffer[j]
                if c == nl { line += 1 }
                if quote != 0 {
                    if c == quote { quote = 0 }
                } else if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                    quote = c
                } else if c == eq {
                    count += 1
                    if count > limit { return tagLine }
                } else if c == gt {
                    break
                }
                j += 1
            }
            i = j + 1
        }
        return nil
    }
}

/// What precedes the root element: a DOCTYPE is refused before libxml2 sees it.
enum Prolog: Equatable {
    case element, doctype, empty

    /// `buffer` from its XML declaration when only ASCII whitespace precedes it; else unchanged.
    static func trimmingWhitespaceBeforeDeclaration(_ buffer: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var i = 0
        while i < buffer.count, buffer[i] == 0x20 || buffer[i] == 0x0A || buffer[i] == 0x0D || buffer[i] == 0x09 { i += 1 }
        guard i > 0, i + 5 <= buffer.count, buffer[i] == UInt8(ascii: "<"), buffer[i + 1] == UInt8(ascii: "?"),
              buffer[i + 2] == UInt8(ascii: "x"), buffer[i + 3] == UInt8(ascii: "m"), buffer[i + 4] == UInt8(ascii: "l") else { return buffer }
        return UnsafeRawBufferPointer(rebasing: buffer[i...])
    }

    /// The encoding a byte order mark or the layout of the first `<` shows, when it is not
    /// UTF-8 (XML 1.0 appendix F).
    static func nonUTF8Encoding(_ buffer: UnsafeRawBufferPointer) -> String? {
        let n = buffer.count
        func bytes(_ expected: [UInt8]) -> Bool {
            guard n >= expected.count else { return false }
            for (i, b) in expected.enumerated() where buffer[i] != b { return false }
            return true
        }
        if bytes([0x00, 0x00, 0xFE, 0xFF]) || bytes([0xFF, 0xFE, 0x00, 0x00]) || bytes([0x00, 0x00, 0x00, 0x3C])
            || bytes([0x3C, 0x00, 0x00, 0x00]) { return "UTF-32" }
        if bytes([0xFE, 0xFF]) || bytes([0xFF, 0xFE]) || bytes([0x00, 0x3C]) || bytes([0x3C, 0x00]) { return "UTF-16" }
        if bytes([0x4C, 0x6F, 0xA7, 0x94]) { return "EBCDIC" }
        // UTF-16 without a byte order mark after leading whitespace: a NUL among the first bytes.
        for i in 0..<min(n, 64) where buffer[i] == 0 { return "UTF-16 (no byte order mark)" }
        return nil
    }

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
