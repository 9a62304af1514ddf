import CLibXML2
import Testing
import TestSupport
@testable import XML

@Suite struct XMLDocumentTests {
    @Test func namespaceAgnosticLookup() throws {
        let doc = try XMLDocument(string: """
        <nc:rpc-reply xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" xmlns:junos="http://xml.juniper.net/junos/15.1F5/junos">
          <chassis-inventory xmlns="http://xml.juniper.net/junos/15.1F5/junos-chassis">
            <chassis junos:style="inventory">
              <name>Chassis</name>
              <serial-number>
                JN11F00AAFRB
              </serial-number>
              <!-- a comment --><description>MX480</description>
            </chassis>
          </chassis-inventory>
        </nc:rpc-reply>
        """)
        #expect(doc.root.name == "rpc-reply")
        #expect(doc.root.prefix == "nc")
        let chassis = try #require(doc.root.child(path: "chassis-inventory/chassis"))
        #expect(chassis.namespaceURI == "http://xml.juniper.net/junos/15.1F5/junos-chassis")
        #expect(chassis.attribute("style") == "inventory")
        #expect(chassis.value("serial-number") == "JN11F00AAFRB")
        #expect(chassis.value("description") == "MX480")
        #expect(chassis.value("missing") == nil)
        #expect(chassis.path == "rpc-reply/chassis-inventory/chassis")
        #expect(doc.root.descendants("name").map(\.value) == ["Chassis"])
        #expect(doc.root.firstDescendant("description")?.line == 8)
    }

    @Test func malformedReportsLineAndColumn() {
        #expect {
            _ = try XMLDocument(string: "<a>\n  <b>text</c>\n</a>")
        } throws: { error in
            guard case let XMLError.malformed(line, column, message) = error else { return false }
            return line == 2 && column > 0 && message.contains("mismatch")
        }
    }

    @Test func billionLaughsIsRefused() {
        let doc = """
        <?xml version="1.0"?>
        <!DOCTYPE lolz [
          <!ENTITY lol "lol">
          <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
          <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
          <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
        ]>
        <lolz>&lol4;</lolz>
        """
        #expect(throws: XMLError.doctypeRefused) { try XMLDocument(string: doc) }
    }

    @Test func externalEntityIsRefused() {
        let doc = """
        <!-- leading comment -->
        <!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
        <foo>&xxe;</foo>
        """
        #expect(throws: XMLError.doctypeRefused) { try XMLDocument(string: doc) }
    }

    @Test func undeclaredEntityIsAnError() {
        #expect(throws: XMLError.self) { try XMLDocument(string: "<foo>&xxe;</foo>") }
    }

    @Test func bomAndDeclarationAreAccepted() throws {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("<?xml version=\"1.0\"?>\n<a>x</a>".utf8)
        #expect(try XMLDocument(bytes: bytes).root.value == "x")
    }

    @Test func whitespaceBeforeTheDeclarationIsTolerated() throws {
        // scrapli-netconf sends "\n<?xml ...?><rpc>" after the previous delimiter; Junos accepts it.
        #expect(try XMLDocument(string: "\n  <?xml version=\"1.0\" encoding=\"UTF-8\"?><a>x</a>").root.value == "x")
        #expect(throws: XMLError.self) { try XMLDocument(string: "<b/>\n<?xml version=\"1.0\"?><a/>") }
    }

    @Test func emptyDocument() {
        #expect(throws: XMLError.empty) { try XMLDocument(string: "  \n ") }
    }

    @Test func rewritingReplacesTextAndAttributesInACopy() throws {
        let doc = try XMLDocument(string: #"<c xmlns:junos="j"><p junos:k="old">secret &amp; more</p><q>keep</q></c>"#)
        let rewritten = doc.rewriting(
            text: { $0.name == "p" ? .replace("<redacted>") : .keep },
            attribute: { _, attr in attr.name == "k" ? .replace("new") : .keep })
        #expect(doc.root.value("p") == "secret & more")
        #expect(rewritten.root.value("p") == "<redacted>")
        #expect(rewritten.root.child("p")?.attribute("k") == "new")
        let text = String(decoding: rewritten.serialized(), as: UTF8.self)
        #expect(text.contains("&lt;redacted&gt;"))
        #expect(text.contains("<q>keep</q>"))
    }

    @Test func rewriteInOneGoMatchesRewritingACopy() throws {
        let xml = "<?xml version=\"1.0\"?>\n<nc:rpc-reply xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\" xmlns:junos=\"j\">\n"
            + "  <c xmlns=\"urn:x\"><p junos:k=\"old\">secret &amp; more</p>\n    <q>keep</q><!-- note --></c>\n</nc:rpc-reply>"
        let text: (XMLElement) -> XMLReplacement = { $0.name == "p" ? .replace("<redacted>") : .keep }
        let attribute: (XMLElement, XMLAttribute) -> XMLReplacement = { _, attr in attr.name == "k" ? .replace("new") : .keep }
        let options = XMLParseOptions(preserveWhitespace: true)
        let copy = try XMLDocument(string: xml, options: options).rewriting(text: text, attribute: attribute).serialized()
        let inPlace = try XMLDocument.rewrite(bytes: Array(xml.utf8), options: options, text: text, attribute: attribute)
        #expect(inPlace == copy)
        let out = String(decoding: inPlace, as: UTF8.self)
        // Layout, prefixes, namespace declarations and comments are kept; only the decided values change.
        #expect(out == "<nc:rpc-reply xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\" xmlns:junos=\"j\">\n"
            + "  <c xmlns=\"urn:x\"><p junos:k=\"new\">&lt;redacted&gt;</p>\n    <q>keep</q><!-- note --></c>\n</nc:rpc-reply>")
        #expect(throws: XMLError.self) { try XMLDocument.rewrite(bytes: Array("<a><b></a>".utf8), text: text) }
    }

    /// Comments and processing instructions (inside the root and around it) and text beside child
    /// elements are offered too, once each; indentation and leaves' text are not offered there.
    @Test func rewritingOffersCommentsProcessingInstructionsAndMixedText() throws {
        let xml = "<!-- before S1 --><?top S2?><r>\n  <!-- S3 --><a>mixed S4<b>leaf S5<!-- S6 --></b>\n  <?pi S7?></a>\n</r><!-- after S8 -->"
        var offered: [String] = []
        func replacing(_ text: String) -> XMLReplacement {
            offered.append(text)
            return .replace(text.replacingAll("S", with: "X"))
        }
        let rewritten = try XMLDocument(string: xml, options: XMLParseOptions(preserveWhitespace: true)).rewriting(
            text: { _ in .keep },
            mixedText: { element, text in element.name == "a" ? replacing(text) : .keep },
            comment: replacing)
        #expect(offered.sorted() == [" S3 ", " S6 ", " after S8 ", " before S1 ", "S2", "S7", "mixed S4"])
        #expect(String(decoding: rewritten.serialized(), as: UTF8.self)
            == "<r>\n  <!-- X3 --><a>mixed X4<b>leaf S5<!-- X6 --></b>\n  <?pi X7?></a>\n</r>")
        // The document itself, not only the root, was rewritten.
        var memory: UnsafeMutablePointer<xmlChar>?
        var size: Int32 = 0
        xmlDocDumpMemory(rewritten.doc, &memory, &size)
        defer { care_xml_free(memory) }
        let whole = String(decoding: UnsafeBufferPointer(start: try #require(memory), count: Int(size)), as: UTF8.self)
        #expect(whole.contains("<!-- before X1 -->") && whole.contains("<?top X2?>") && whole.contains("<!-- after X8 -->"), "\(whole)")
    }

    /// What a comment or processing instruction cannot hold removes it rather than breaking the XML.
    @Test func unfitReplacementsRemoveTheNode() throws {
        let out = try XMLDocument.rewrite(bytes: Array("<r><!-- a --><?pi b?><c>keep</c></r>".utf8),
                                          text: { _ in .keep }, comment: { $0 == " a " ? .replace("x--y") : .replace("?>") })
        #expect(String(decoding: out, as: UTF8.self) == "<r><c>keep</c></r>")
        let trailingDash = try XMLDocument.rewrite(bytes: Array("<r><!-- a --></r>".utf8), text: { _ in .keep }, comment: { _ in .replace("x-") })
        #expect(String(decoding: trailingDash, as: UTF8.self) == "<r/>")
    }

    @Test func serializedChildCarriesInheritedNamespaces() throws {
        let doc = try XMLDocument(string: #"<r xmlns:junos="http://j"><x junos:style="a">1</x></r>"#)
        let x = try #require(doc.root.child("x"))
        let reparsed = try XMLDocument(bytes: x.serialized())
        #expect(reparsed.root.attribute("style") == "a")
        #expect(x.xmlString.contains("xmlns:junos=\"http://j\""))
    }

    @Test func everyFixtureParsesOrIsAKnownNonDocument() throws {
        // The NETCONF transcript is a byte stream of several messages, not one document.
        let catalog = try String(contentsOf: Fixtures.url("CATALOG.tsv"), encoding: .utf8)
        var parsed = 0
        for line in catalog.split(separator: "\n").dropFirst() {
            let file = String(line.split(separator: "\t")[0])
            if file.hasPrefix("netconf-session/") { continue }
            _ = try XMLDocument(bytes: Fixtures.bytes(file))
            parsed += 1
        }
        #expect(parsed >= 100)
    }

    // MARK: Limits (issue 10)

    static let laughs = """
    <?xml version="1.0" encoding="UTF-16"?>
    <!DOCTYPE lolz [
      <!ENTITY lol "lol">
      <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
      <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
      <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
      <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
      <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
      <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
      <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
      <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
    ]>
    <rpc-reply><lolz>&lol9;</lolz></rpc-reply>
    """

    static func utf16(_ text: String, bigEndian: Bool, bom: Bool) -> [UInt8] {
        var bytes: [UInt8] = bom ? (bigEndian ? [0xFE, 0xFF] : [0xFF, 0xFE]) : []
        for unit in text.utf16 {
            let hi = UInt8(unit >> 8), lo = UInt8(unit & 0xFF)
            bytes += bigEndian ? [hi, lo] : [lo, hi]
        }
        return bytes
    }

    @Test("UTF-16 entity bombs are refused before libxml2 sees them", arguments: [(true, true), (false, true), (true, false), (false, false)])
    func utf16BillionLaughs(bigEndian: Bool, bom: Bool) {
        let bytes = Self.utf16(Self.laughs, bigEndian: bigEndian, bom: bom)
        let clock = ContinuousClock()
        let start = clock.now
        #expect(throws: XMLError.self) { try XMLDocument(bytes: bytes) }
        do { _ = try XMLDocument(bytes: bytes) } catch {
            guard case .notUTF8 = error else { Issue.record("expected notUTF8, got \(error)"); return }
        }
        // The refusal comes before any expansion (the old parser took 11.7 s and 1.1 GB).
        #expect(clock.now - start < .seconds(1))
    }

    @Test func declaredEncodingsAreIgnoredTheBytesAreUTF8() throws {
        // libxml2 would switch to Latin-1 on the declaration and read "Ã©"; the bytes are UTF-8.
        let doc = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>é</a>"
        #expect(try XMLDocument(string: doc).root.value == "é")
    }

    @Test func doctypeBehindTheByteScanIsStoppedByTheParserHook() throws {
        // The hook alone: a DOCTYPE libxml2 reaches is refused before its subset is read.
        var state = ParseGuardProbe()
        #expect(throws: XMLError.doctypeRefused) { try state.parseSkippingPrologScan("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>") }
        #expect(throws: XMLError.doctypeRefused) { try state.parseSkippingPrologScan("<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><a/>") }
        // Stopped before the subset is read: a broken subset would otherwise be a parse error
        // (the check after parsing alone would never see this DOCTYPE as one).
        #expect(throws: XMLError.doctypeRefused) { try state.parseSkippingPrologScan("<!DOCTYPE a [ <!ENTITY broken ]><a/>") }
        try state.parseSkippingPrologScan("<a><b/></a>")
    }

    @Test func nestingPastTheLimitIsATypedError() throws {
        let depth = XMLLimits.maximumDepth
        let ok = String(repeating: "<a>", count: depth) + String(repeating: "</a>", count: depth)
        #expect(try XMLDocument(string: ok).root.name == "a")
        let deep = 300_000
        let bomb = String(repeating: "<a>", count: deep) + String(repeating: "</a>", count: deep)
        do {
            _ = try XMLDocument(string: bomb)
            Issue.record("a document \(deep) elements deep was accepted")
        } catch {
            #expect(error == .tooDeep(limit: depth, line: 1))
            #expect(error.description.contains("\(depth)"))
        }
    }

    @Test func sizeLimitIsChecked() {
        let doc = "<a>" + String(repeating: "x", count: 2000) + "</a>"
        #expect(throws: XMLError.tooLarge(size: 2007, limit: 1024)) {
            try XMLDocument(bytes: Array(doc.utf8), options: XMLParseOptions(maximumSize: 1024))
        }
    }

    @Test func hugeTextNodeIsATypedError() throws {
        // libxml2's 10 MB cap on one text node holds again without XML_PARSE_HUGE.
        let doc = "<a>" + String(repeating: "x", count: 10_000_001) + "</a>"
        #expect(throws: XMLError.textTooLarge(line: 1)) { try XMLDocument(string: doc) }
    }

    @Test func largeDocumentsOfManySmallElementsStillParse() throws {
        // 20 MB of configuration-like XML: no limit but the caller's size limit applies.
        var doc = "<configuration><interfaces>"
        let stanza = "<interface><name>ge-0/0/1</name><unit><name>0</name><family><inet><address><name>10.0.0.1/31</name></address></inet></family></unit></interface>"
        doc += String(repeating: stanza, count: 20_000_000 / stanza.utf8.count)
        doc += "</interfaces></configuration>"
        let parsed = try XMLDocument(string: doc)
        #expect(parsed.root.child("interfaces")?.children.count == 20_000_000 / stanza.utf8.count)
    }
}

/// Reaches the parser below the byte scan, to test the SAX hook on its own.
struct ParseGuardProbe {
    mutating func parseSkippingPrologScan(_ text: String) throws(XMLError) {
        let bytes = Array(text.utf8)
        let result: Result<xmlDocPtr, XMLError> = bytes.withUnsafeBytes { buffer in
            do throws(XMLError) { return .success(try XMLDocument.parse(buffer, options: XMLParseOptions(), scansProlog: false)) }
            catch { return .failure(error) }
        }
        _ = XMLDocument(owning: try result.get())
    }
}

/// Documents far under the size limit that would still cost libxml2 a great deal: many
/// attributes on one element (its duplicate check is quadratic: 100,000 took 11 s, blocking the
/// agent's threads past every timeout), and many tiny elements (a tree 35 times the bytes).
@Suite struct XMLCostLimitTests {
    func document(attributes: Int) -> String {
        "<rpc-reply message-id=\"1\"><software-information " + (0 ..< attributes).map { "a\($0)=\"\"" }.joined(separator: " ") + "/></rpc-reply>"
    }

    @Test func manyAttributesOnOneElementAreRefusedBeforeParsing() throws {
        _ = try XMLDocument(string: document(attributes: XMLLimits.maximumAttributes))
        #expect(throws: XMLError.tooManyAttributes(limit: XMLLimits.maximumAttributes, line: 1)) {
            _ = try XMLDocument(string: document(attributes: XMLLimits.maximumAttributes + 1))
        }
        // Namespace declarations count too; the line is the element's.
        let namespaces = "<a>\n<b " + (0 ..< 300).map { "xmlns:p\($0)=\"urn:x:\($0)\"" }.joined(separator: " ") + "/></a>"
        #expect(throws: XMLError.tooManyAttributes(limit: XMLLimits.maximumAttributes, line: 2)) { _ = try XMLDocument(string: namespaces) }
        // `=` in text, quoted values, comments and CDATA is not an attribute.
        let quiet = "<a x=\"" + String(repeating: "=", count: 1000) + "\"><!-- " + String(repeating: "k=v ", count: 1000) + " --><![CDATA["
            + String(repeating: "<b c=d>", count: 500) + "]]>" + String(repeating: "1=1 ", count: 1000) + "</a>"
        _ = try XMLDocument(string: quiet)
        #expect(XMLError.tooManyAttributes(limit: 256, line: 7).description.contains("more than 256 attributes"))
        // `<!--->` does not close the comment it opens (libxml2 reads on to the next `-->`): the
        // scan must not be put out of step by it and let the element through.
        let sly = "<r><!---><x '--><e " + (0 ..< 300).map { "a\($0)=\"v\"" }.joined(separator: " ") + "/></r>"
        #expect(throws: XMLError.tooManyAttributes(limit: XMLLimits.maximumAttributes, line: 1)) { _ = try XMLDocument(string: sly) }
    }

    @Test func documentsOfTinyElementsAreRefusedByCount() throws {
        let dense = "<a>" + String(repeating: "<x/>", count: 500_000) + "</a>"
        let size = dense.utf8.count
        #expect(throws: XMLError.tooManyElements(limit: XMLLimits.maximumElements(forSize: size), size: size)) { _ = try XMLDocument(string: dense) }
        // A reply as dense as real ones (compact configuration: over 20 bytes an element) passes.
        let real = "<configuration>" + String(repeating: "<interface><name>ge-0/0/0</name><unit><name>0</name></unit></interface>", count: 40_000) + "</configuration>"
        #expect(try XMLDocument(string: real).root.children("interface").count == 40_000)
    }
}
