import Junos
import Testing

/// Reply-level shapes: where errors, warnings and CLI text can sit, and what each becomes.
@Suite struct JunosReplyTests {
    static func reply(_ xml: String) throws -> JunosReply { try JunosReply(bytes: Array(xml.utf8)) }

    @Test func errorDirectlyUnderMultiRoutingEngineResultsIsKept() throws {
        let xml = """
        <rpc-reply><multi-routing-engine-results>
          <xnm:error xmlns:xnm="http://xml.juniper.net/xnm/1.1/xnm"><message>could not connect to re1</message></xnm:error>
          <multi-routing-engine-item><re-name>re0</re-name><system-uptime-information/></multi-routing-engine-item>
        </multi-routing-engine-results></rpc-reply>
        """
        let r = try Self.reply(xml)
        #expect(r.errors.map(\.message) == ["could not connect to re1"])
        #expect(r.sections.map(\.routingEngine) == ["re0"])
        // With no item at all the reply is an error reply, not an empty one.
        let onlyError = xml.replacingOccurrences(of: "<multi-routing-engine-item><re-name>re0</re-name><system-uptime-information/></multi-routing-engine-item>", with: "")
        #expect(throws: JunosParseError.deviceError(rpc: "get-system-uptime-information", try Self.reply(onlyError).errors)) {
            try UptimeReport.parse(try Self.reply(onlyError), rpc: "get-system-uptime-information")
        }
    }

    @Test func commitErrorsNestedPerRoutingEngineNameTheirRE() throws {
        let r = try Self.reply("""
        <rpc-reply><commit-results>
          <routing-engine junos:style="show-name" xmlns:junos="urn:j"><name>re0</name>
            <rpc-error><error-severity>error</error-severity><error-message>configuration check-out failed</error-message></rpc-error>
          </routing-engine>
          <routing-engine><name>re1</name><commit-check-success/></routing-engine>
        </commit-results></rpc-reply>
        """)
        #expect(r.errors.count == 1)
        #expect(r.errors.first?.routingEngine == "re0")
        #expect(r.errors.first?.description == "re0: configuration check-out failed")
    }

    @Test func oneREAnsweringWithTextBesideAnothersDataIsAWarning() throws {
        let r = try Self.reply("""
        <rpc-reply><multi-routing-engine-results>
          <multi-routing-engine-item><re-name>re0</re-name><system-core-dumps/></multi-routing-engine-item>
          <multi-routing-engine-item><re-name>re1</re-name><output>
            This command can only be used on the master routing engine.
          </output></multi-routing-engine-item>
        </multi-routing-engine-results></rpc-reply>
        """)
        #expect(r.errors.isEmpty)
        #expect(r.warnings.map(\.description) == ["re1: This command can only be used on the master routing engine."])
        #expect(r.sections.map(\.routingEngine) == ["re0"])
    }

    @Test func aReplyOfOnlyWarningsSaysSo() throws {
        let reply = try Self.reply("""
        <rpc-reply><rpc-error><error-severity>warning</error-severity><error-message>statement not found</error-message></rpc-error></rpc-reply>
        """)
        do {
            _ = try UptimeReport.parse(reply, rpc: "get-system-uptime-information")
            Issue.record("a warning-only reply parsed")
        } catch {
            #expect(error.description == "get-system-uptime-information: device returned only warnings and no data: statement not found")
        }
    }
}
