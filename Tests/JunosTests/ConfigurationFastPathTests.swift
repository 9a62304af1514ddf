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
        var appliedBelowTheTop = 0
        for url in try Fixtures.files(in: "get-configuration") {
            let reply = try JunosReply(bytes: Array(try Data(contentsOf: url)))
            guard let element = reply.sections.first(where: { $0.element.name == "configuration" })?.element else { continue }
            let full = ConfigurationFacts(tree: ConfigurationTree(element: element), format: .xml)
            // No capture has a group that applies groups itself, the one case the fast path declines.
            let fast = try #require(ConfigurationFacts(xml: element), "\(url.lastPathComponent)")
            #expect(fast == full, "\(url.lastPathComponent)")
            if element.descendants("apply-groups").contains(where: { $0.parent?.hasName("configuration") == false }) {
                appliedBelowTheTop += 1
            }
            compared += 1
        }
        #expect(compared >= 10)
        #expect(appliedBelowTheTop >= 1)
    }

    @Test func groupsAppliedAtTheTopAndBelowBothWork() throws {
        let xml = """
        <rpc-reply><configuration>
          <groups><name>node0</name><system><host-name>fw-a</host-name></system></groups>
          <groups><name>node1</name><system><host-name>fw-b</host-name></system></groups>
          <groups><name>svc</name><system><services><telnet/></services></system></groups>
          <groups><name>unused</name><protocols><bgp/></protocols></groups>
          <groups><name>ifs</name><interfaces><interface><name>&lt;*&gt;</name>
            <unit><name>0</name><family><inet6/></family></unit>
            <undocumented><aggregated-ether-options><lacp/></aggregated-ether-options></undocumented>
            <unit inactive="inactive"><name>1</name><family><mpls/></family></unit>
          </interface></interfaces>
          <protocols><ospf/></protocols></groups>
          <groups><name>sys</name><system><host-name>from-nested</host-name><domain-name>example.net</domain-name></system></groups>
          <interfaces>
            <interface><name>ge-0/0/0</name><apply-groups>ifs</apply-groups></interface>
            <interface><name>ge-0/0/1</name><apply-groups>ifs</apply-groups></interface>
          </interfaces>
          <apply-groups>${node}</apply-groups>
          <system><apply-groups>sys</apply-groups></system>
          <apply-groups>svc</apply-groups>
        </configuration></rpc-reply>
        """
        let reply = try JunosReply(bytes: Array(xml.utf8))
        let element = reply.sections[0].element
        let fast = try #require(ConfigurationFacts(xml: element))
        #expect(fast == ConfigurationFacts(tree: ConfigurationTree(element: element), format: .xml))
        #expect(fast.appliedGroups == ["ifs", "${node}", "sys", "svc"]) // document order
        // `system { apply-groups sys }` merges inside the configuration's own `system`, which Junos
        // reads before the top-level groups' contents.
        #expect(fast.hostName == "from-nested")
        #expect(fast.domainName == "example.net")
        #expect(fast.features.contains(.telnet) && fast.features.contains(.chassisCluster))
        // From the group applied on interfaces: its interface paths only, not its `protocols`.
        #expect(fast.features.contains(.ipv6) && fast.features.contains(.lacp))
        #expect(!fast.features.contains(.mpls) && !fast.features.contains(.ospf) && !fast.features.contains(.bgp))

        // Without the nested uses, the groups apply at the top only.
        let top = try JunosReply(bytes: Array(xml.replacingOccurrences(of: "<apply-groups>ifs</apply-groups>", with: "")
            .replacingOccurrences(of: "<apply-groups>sys</apply-groups>", with: "").utf8))
        let topFacts = ConfigurationFacts.parse(top)
        #expect(topFacts.hostName == "fw-a")
        #expect(topFacts.features.contains(.telnet) && topFacts.features.contains(.chassisCluster))
        #expect(!topFacts.features.contains(.ipv6) && !topFacts.features.contains(.bgp))
    }

    @Test func aGroupThatAppliesGroupsTakesTheStatementTree() throws {
        let xml = """
        <rpc-reply><configuration>
          <groups><name>svc</name><system><services><telnet/></services></system></groups>
          <groups><name>outer</name><apply-groups>svc</apply-groups><system><host-name>r1</host-name></system></groups>
          <apply-groups>outer</apply-groups>
        </configuration></rpc-reply>
        """
        let reply = try JunosReply(bytes: Array(xml.utf8))
        #expect(ConfigurationFacts(xml: reply.sections[0].element) == nil)
        let facts = ConfigurationFacts.parse(reply)
        #expect(facts.hostName == "r1")
        #expect(facts.appliedGroups == ["outer"])
    }

    /// The trie cannot take paths back out, so `apply-groups-except` takes the statement tree.
    @Test func applyGroupsExceptTakesTheStatementTree() throws {
        let xml = """
        <rpc-reply><configuration>
          <groups><name>G</name><protocols><bgp><group><name>g</name></group></bgp></protocols></groups>
          <apply-groups>G</apply-groups>
          <protocols><apply-groups-except>G</apply-groups-except><ospf/></protocols>
        </configuration></rpc-reply>
        """
        let reply = try JunosReply(bytes: Array(xml.utf8))
        #expect(ConfigurationFacts(xml: reply.sections[0].element) == nil)
        #expect(ConfigurationFacts.parse(reply).features.features == [.ospf])
    }

    /// Group wildcards decide where a group's statements land, and so what `apply-groups-except` removes.
    @Test func groupWildcards() {
        func match(_ pattern: String, _ name: String) -> Bool { Wildcard.matches(Array(pattern), Array(name)) }
        #expect(match("*", "ge-0/0/0") && match("ge-*", "ge-0/0/0") && !match("ge-*", "xe-0/0/0"))
        #expect(match("xe-0/0/[0-3]", "xe-0/0/2") && !match("xe-0/0/[0-3]", "xe-0/0/4"))
        #expect(match("xe-0/0/[!0-3]", "xe-0/0/4") && match("?e-*", "ge-1/0/0") && !match("?e-*", "e-1"))
        #expect(match("ae[12]", "ae1") && !match("ae[12]", "ae12") && match("a[b", "a[b"))
        let group = ConfigStatement(keyword: "interface", identifier: "<ge-*>")
        #expect(group.lands(on: ConfigStatement(keyword: "interface", identifier: "ge-0/0/0")))
        #expect(!group.lands(on: ConfigStatement(keyword: "interface", identifier: "ae0")))
        #expect(ConfigStatement(keyword: "\"<ge-*>\"").lands(on: ConfigStatement(keyword: "ge-0/0/0")))
    }
}
