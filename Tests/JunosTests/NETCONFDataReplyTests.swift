import Foundation
import Junos
import Testing
import TestSupport

/// A standard NETCONF `<get-config>` reply wraps the configuration in `<data>` (RFC 6241 7.1),
/// where Junos' `<get-configuration>` answers with `<configuration>` directly.
@Suite struct NETCONFDataReplyTests {
    static let reply = """
    <rpc-reply xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" xmlns:junos="http://xml.juniper.net/junos/21.4R0/junos" message-id="101">
    <data>
    <configuration xmlns="http://xml.juniper.net/xnm/1.1/xnm" junos:changed-seconds="1700000000" junos:changed-localtime="2023-11-14 22:13:20 UTC">
        <version>21.4R3.15</version>
        <system><host-name>edge-r1</host-name><services><netconf><ssh/></netconf></services></system>
    </configuration>
    </data>
    </rpc-reply>
    """

    @Test func getConfigReplyIsAConfiguration() throws {
        let reply = try JunosReply(bytes: Array(Self.reply.utf8))
        #expect(FactKind.detect(reply) == .configuration)
        var facts = DeviceFacts()
        try facts.absorb(reply, as: .configuration)
        #expect(facts.configuration?.hostName == "edge-r1")
        #expect(facts.configuration?.version == "21.4R3.15")
    }

    @Test func parseCommandReadsAGetConfigReply() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("get-config.xml")
        try Data(Self.reply.utf8).write(to: file)
        let out = dir.appendingPathComponent("out").path, err = dir.appendingPathComponent("err").path
        let status = try ChildProcess(try careAgentExecutable(), ["parse", "--json", file.path], stdout: out, stderr: err).wait()
        let stderr = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any]
        #expect(json?["fact"] as? String == "configuration")
    }
}
