import Foundation
@testable import Junos
import Testing
import TestSupport
import XML

/// `ConfigurationFacts.parse` reads XML straight into a shape when groups apply only at the top;
/// it must agree with the full statement-tree path on every real configuration.
@Suite struct ConfigurationFastPathTests {
    @Test func fastPathAgreesWithTheStatementTreeOnEveryFixture() throws {
        var compared = 0
        for url in try Fixtures.files(in: "get-configuration") {
            let reply = try JunosReply(bytes: Array(try Data(contentsOf: url)))
            guard let element = reply.sections.first(where: { $0.element.name == "configuration" })?.element else { continue }
            let full = ConfigurationFacts(tree: ConfigurationTree(element: element), format: .xml)
            // The fast path declines exactly the configurations that apply a group below the top.
            let nested = element.descendants("apply-groups").contains { $0.parent?.hasName("configuration") == false }
            let fast = ConfigurationFacts(xml: element)
            #expect((fast == nil) == nested, "\(url.lastPathComponent)")
            if let fast {
                #expect(fast == full, "\(url.lastPathComponent)")
                compared += 1
            }
        }
        #expect(compared >= 9)
    }

    @Test func groupsAppliedAtTheTopAndBelowBothWork() throws {
        let xml = """
        <rpc-reply><configuration>
          <groups><name>node0</name><system><host-name>fw-a</host-name></system></groups>
          <groups><name>node1</name><system><host-name>fw-b</host-name></system></groups>
          <groups><name>svc</name><system><services><telnet/></services></system></groups>
          <groups><name>unused</name><protocols><bgp/></protocols></groups>
          <groups><name>ifs</name><interfaces><interface><name>&lt;*&gt;</name><unit><name>0</name><family><inet6/></family></unit></interface></interfaces></groups>
          <apply-groups>${node}</apply-groups>
          <apply-groups>svc</apply-groups>
          <interfaces><interface><name>ge-0/0/0</name><apply-groups>ifs</apply-groups></interface></interfaces>
        </configuration></rpc-reply>
        """
        let reply = try JunosReply(bytes: Array(xml.utf8))
        #expect(ConfigurationFacts(xml: reply.sections[0].element) == nil) // `ifs` applies below the top
        let facts = ConfigurationFacts.parse(reply)
        #expect(facts.hostName == "fw-a")
        #expect(facts.features.contains(.telnet))
        #expect(facts.features.contains(.chassisCluster))
        #expect(facts.features.contains(.ipv6)) // from a group applied below the top (statement-tree path)
        #expect(!facts.features.contains(.bgp))
        // Same configuration without the nested apply-groups: the fast path, same answers.
        let top = try JunosReply(bytes: Array(xml.replacingOccurrences(of: "<apply-groups>ifs</apply-groups>", with: "").utf8))
        #expect(ConfigurationFacts(xml: top.sections[0].element) != nil)
        let topFacts = ConfigurationFacts.parse(top)
        #expect(topFacts.hostName == "fw-a")
        #expect(topFacts.features.contains(.telnet) && topFacts.features.contains(.chassisCluster))
        #expect(!topFacts.features.contains(.ipv6) && !topFacts.features.contains(.bgp))
    }
}
