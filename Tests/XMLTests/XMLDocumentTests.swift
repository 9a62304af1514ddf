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
}
