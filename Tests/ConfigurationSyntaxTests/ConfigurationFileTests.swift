import ConfigurationSyntax
import Testing

@Suite struct ConfigurationFileTests {
    let grammar = SectionGrammar(kinds: [.init("server"), .init("site", takesName: true, example: "[site paris]")],
                                 summary: "server or site NAME", firstSection: "[server]")

    @Test func sectionsAndEntriesKeepTheirPlace() throws {
        let file = try ConfigurationFile(path: "x.conf", text: """
            # comment
            [server]
            listen = 127.0.0.1:8443   # inline
            name = "a # b"
            [site paris]
            key=value
            """, grammar: grammar)
        #expect(file.sections.map(\.kind) == ["server", "site"])
        #expect(file.sections[1].name == "paris")
        #expect(file.sections[0].entries.map(\.value) == ["127.0.0.1:8443", "a # b"])
        #expect(file.sections[0].entries[0].line == 3 && file.sections[0].entries[0].valueColumn == 10)
    }

    @Test(arguments: [
        ("[agent]\n", "x.conf:1:2: expected server or site NAME, found \"agent\""),
        ("[server x]\n", "x.conf:1:9: expected \"]\": [server] takes no name"),
        ("[site]\n", "x.conf:1:7: expected one name after \"site\", as in [site paris]"),
        ("a = b\n", "x.conf:1:1: expected a section header such as [server] before the first key"),
    ])
    func errorsNameTheGrammarsSections(text: String, expected: String) {
        #expect(throws: ConfigurationError.self) { try ConfigurationFile(path: "x.conf", text: text, grammar: grammar) }
        do {
            _ = try ConfigurationFile(path: "x.conf", text: text, grammar: grammar)
        } catch {
            #expect(error.description == expected)
        }
    }
}
